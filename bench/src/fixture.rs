//! The site every subject serves: one file per size the workloads ask for.

use std::io::Write;
use std::path::{Path, PathBuf};

/// (name, size in bytes)
pub const FILES: [(&str, usize); 5] = [
    ("13.txt", 13),
    ("4k.bin", 4 << 10),
    ("100k.bin", 100 << 10),
    ("1m.bin", 1 << 20),
    ("16m.bin", 16 << 20),
];

/// Writes the site under `dir` (deterministic content) and returns its path.
pub fn prepare(dir: &Path) -> std::io::Result<PathBuf> {
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
    Ok(root)
}
