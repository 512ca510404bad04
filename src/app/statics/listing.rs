//! The HTML index of a directory (with `--listing`).
//!
//! A file name is data from whoever can write to ROOT, so it is never trusted:
//! every name is HTML-escaped where it is shown and percent-encoded where it is
//! linked, and the page is sent with a Content-Security-Policy that forbids
//! scripts, so even a bug here could not become an XSS.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::resolve::{Visibility, visible};
use crate::timefmt::Civil;

/// Bytes left as they are in a link: RFC 3986 unreserved characters.
const LINK_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The policy sent with every listing: styles inline, nothing else, no scripts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

struct Entry {
    name: Vec<u8>,
    is_dir: bool,
    metadata: Metadata,
}

/// Renders the listing of `dir` (under `root`), shown at `url_path` (which ends
/// in `/`, percent-encoded as received).
pub fn render(
    root: &Path,
    dir: &Path,
    url_path: &str,
    visibility: Visibility,
) -> std::io::Result<String> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().as_bytes().to_vec();
        if name.starts_with(b".") && !visibility.hidden {
            continue;
        }
        // Follow symlinks to show what they lead to, but not if they lead
        // somewhere we would refuse to serve.
        let path = item.path();
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !visible(root, &real, visibility) {
            continue;
        }
        let Ok(metadata) = std::fs::metadata(&real) else {
            continue;
        };
        if !metadata.is_dir() && !metadata.is_file() {
            continue;
        }
        entries.push(Entry {
            name,
            is_dir: metadata.is_dir(),
            metadata,
        });
    }
    // Directories first, then by name.
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));

    let shown_path = String::from_utf8_lossy(
        &percent_encoding::percent_decode_str(url_path).collect::<Vec<u8>>(),
    )
    .into_owned();
    let title = format!("Index of {}", escape_html(&shown_path));

    let mut rows = String::new();
    if url_path != "/" {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in &entries {
        let display = String::from_utf8_lossy(&entry.name);
        let mut href = encode_segment(&entry.name);
        let (suffix, size) = if entry.is_dir {
            href.push('/');
            ("/", "-".to_string())
        } else {
            ("", human_size(entry.metadata.len()))
        };
        let modified = entry
            .metadata
            .modified()
            .map(|t| Civil::from_system_time(t).short())
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td><a href=\"{}\">{}{suffix}</a></td><td>{size}</td><td>{modified}</td></tr>\n",
            escape_html(&href),
            escape_html(&display)
        ));
    }

    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n"
    ))
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:1rem auto;max-width:52rem;padding:0 1rem}\n\
h1{font-size:1.3rem;word-break:break-all}\n\
table{border-collapse:collapse;width:100%}\n\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}\n\
td:first-child{word-break:break-all}\n\
td:nth-child(2),th:nth-child(2){text-align:right;white-space:nowrap}\n\
@media (max-width:32rem){td:nth-child(3),th:nth-child(3){display:none}}\n";

/// Escapes the five characters that matter in HTML text and attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Percent-encodes one URL path segment (for links and `Location`).
pub fn encode_segment(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, LINK_SAFE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped_and_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let hostile = "<img src=x onerror=alert('x')>&\"";
        std::fs::write(root.join(hostile), b"x").unwrap();
        std::fs::write(root.join("a b.txt"), b"hello").unwrap();
        std::fs::create_dir(root.join("zdir")).unwrap();
        std::fs::write(root.join(".hidden"), b"x").unwrap();
        let html = render(&root, &root, "/", Visibility::default()).unwrap();
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains(">&lt;img src=x onerror=alert(&#39;x&#39;)&gt;&amp;&quot;</a>"));
        assert!(html.contains("href=\"%3Cimg%20src%3Dx%20onerror%3Dalert%28%27x%27%29%3E%26%22\""));
        assert!(html.contains("href=\"a%20b.txt\">a b.txt</a></td><td>5 B</td>"));
        assert!(!html.contains(".hidden"));
        assert!(!html.contains("href=\"../\""), "no parent link at the root");
        let zdir = html.find("zdir/").unwrap();
        let afile = html.find("a b.txt").unwrap();
        assert!(zdir < afile, "directories come first");
    }

    #[test]
    fn subdirectories_link_to_their_parent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let html = render(&root, &root.join("sub"), "/sub/", Visibility::default()).unwrap();
        assert!(html.contains("<a href=\"../\">../</a>"));
        assert!(html.contains("<title>Index of /sub/</title>"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
