//! What every subject serves: one file per size the workloads ask for, and a
//! certificate for HTTPS (ECDSA P-256, self-signed for 127.0.0.1; wrk does not
//! verify it).

use std::io::Write;
use std::path::Path;

use crate::subjects::Fixture;

/// (name, size in bytes)
pub const FILES: [(&str, usize); 5] = [
    ("13.txt", 13),
    ("4k.bin", 4 << 10),
    ("100k.bin", 100 << 10),
    ("1m.bin", 1 << 20),
    ("16m.bin", 16 << 20),
];

/// Writes the site (deterministic content) and a certificate under `dir`.
pub fn prepare(dir: &Path) -> std::io::Result<Fixture> {
    let root = dir.join("site");
    std::fs::create_dir_all(&root)?;
    for (name, size) in FILES {
        let path = root.join(name);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size as u64) {
            continue;
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        if name == "13.txt" {
            file.write_all(b"Hello, world!")?;
        } else {
            let mut state = 0x2545_f491u32;
            let mut block = vec![0u8; 64 << 10];
            let mut left = size;
            while left > 0 {
                for byte in block.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    *byte = state as u8;
                }
                let n = left.min(block.len());
                file.write_all(&block[..n])?;
                left -= n;
            }
        }
        file.flush()?;
    }
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .map_err(std::io::Error::other)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    Ok(Fixture {
        site: root,
        cert,
        key,
    })
}
