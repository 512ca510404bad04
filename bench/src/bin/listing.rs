//! What a large directory listing costs everyone else: how long a small
//! request waits while the listing is built, and how much memory ten clients
//! hold that ask for it and never read it.
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p oneloop-bench --bin listing -- --entries 10000
//! cargo run --release -p oneloop-bench --bin listing -- --entries 100000 \
//!     --binary /path/to/an/older/oneloop
//! ```
//!
//! A directory of `--entries` files is made under a temporary ROOT and dated an
//! hour back (an old directory, as on a real host). The server is started with
//! `--listing`. A probe client asks for a 13-byte file on a keep-alive
//! connection, one request after another, while the listing is requested five
//! times; the probe's longest wait is the stall the listing caused. Then ten
//! clients ask for the listing and never read, and the server's RSS is read
//! from /proc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Measure what a large directory listing costs other clients")]
struct Args {
    /// Files in the listed directory.
    #[arg(long, default_value_t = 10_000)]
    entries: usize,
    /// The server binary (default: this checkout's release build).
    #[arg(long, default_value = "target/release/oneloop")]
    binary: PathBuf,
    /// Pass --listing-max-entries N (by default the server's own default
    /// applies; builds that predate the flag have no cap at all).
    #[arg(long)]
    cap: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("oneloop-listing-{}", std::process::id()));
    let root = dir.join("www");
    let many = root.join("many");
    std::fs::create_dir_all(&many).expect("a scratch folder");
    std::fs::write(root.join("small.txt"), b"hello, world\n").expect("small.txt");
    for i in 0..args.entries {
        let name = many.join(format!("entry-{i:07}-with-a-realistic-name.jpg"));
        std::fs::write(name, vec![b'x'; i % 4096]).expect("a listed file");
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&many)
        .and_then(|d| d.set_modified(an_hour_ago))
        .expect("date the directory");

    let mut command = Command::new(&args.binary);
    command
        .arg(&root)
        .args(["--listing", "--port", "0", "--max-connections", "64"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(cap) = args.cap {
        command.args(["--listing-max-entries", &cap.to_string()]);
    }
    let mut server = command.spawn().expect("start the server");
    let addr = listening_address(&mut server);
    let pid = server.id();
    println!(
        "{} with {} entries ({})",
        args.binary.display(),
        args.entries,
        args.cap
            .map_or("the server's default cap".to_owned(), |cap| format!(
                "--listing-max-entries {cap}"
            ))
    );
    let idle_rss = rss_kib(pid);

    // The stall: a probe keeps asking for a small file while the listing is
    // built, five times over.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || probe_waits(addr, &stop))
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut listing_times = Vec::new();
    let mut page_bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        page_bytes = fetch(addr, "/many/").len();
        listing_times.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let (longest_wait, probes) = probe.join().expect("the probe thread");
    println!("listing page: {page_bytes} bytes");
    println!(
        "listing requests (first is cold): {}",
        listing_times
            .iter()
            .map(|t| format!("{:.1} ms", t.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "longest wait of a 13-byte request meanwhile: {:.1} ms (over {probes} requests)",
        longest_wait.as_secs_f64() * 1e3
    );

    // The memory: ten clients that ask for the listing and never read it.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /many/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        stalled.push(stream);
    }
    std::thread::sleep(Duration::from_secs(2));
    let held_rss = rss_kib(pid);
    println!(
        "RSS: {idle_rss} KiB idle, {held_rss} KiB with ten clients not reading \
         (+{} KiB)",
        held_rss.saturating_sub(idle_rss)
    );

    drop(stalled);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(dir);
}

fn listening_address(server: &mut Child) -> SocketAddr {
    let stderr = server.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split("listening on http://").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .expect("the server says where it listens");
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    addr
}

/// Requests `path` on a new connection and reads the whole response.
fn fetch(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read");
    all
}

/// Asks for the small file again and again on one connection until `stop`;
/// returns the longest single wait and the number of requests.
fn probe_waits(addr: SocketAddr, stop: &AtomicBool) -> (Duration, usize) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buffer = vec![0; 4096];
    let mut longest = Duration::ZERO;
    let mut count = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        stream.write_all(request).expect("probe send");
        let mut got = 0;
        // The response is one small segment: read until its 13-byte body is in.
        while !buffer[..got].ends_with(b"hello, world\n") {
            got += stream.read(&mut buffer[got..]).expect("probe read");
        }
        longest = longest.max(started.elapsed());
        count += 1;
    }
    (longest, count)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
