//! Memory held for idle keep-alive connections: on a freshly started server,
//! open N connections, send one request on each and read its answer, then leave
//! them all open and read the server's resident memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::procs;
use crate::subjects::Running;

#[derive(Clone, Debug)]
pub struct IdleResult {
    pub connections: usize,
    /// Connections that got their answer (a pool of N threads answers only N).
    pub answered: usize,
    pub rss_before_kib: u64,
    pub rss_with_idle_kib: u64,
}

impl IdleResult {
    /// Bytes of server memory per idle connection.
    pub fn bytes_per_connection(&self) -> f64 {
        let delta = self.rss_with_idle_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0;
        delta / self.connections.max(1) as f64
    }
}

/// Measures a freshly started server: one request first (so the code that
/// serves it is in memory), then its memory, then N idle connections. The
/// server is checked (alive, holding its port, resident) at each reading.
pub fn measure(server: &mut Running, connections: usize) -> std::io::Result<IdleResult> {
    let port = server.port;
    let request = b"GET /13.txt HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut warm = TcpStream::connect(("127.0.0.1", port))?;
    warm.write_all(request)?;
    let _ = warm.read_to_end(&mut Vec::new());
    std::thread::sleep(Duration::from_millis(200));
    let rss_before_kib = procs::rss_kib(&server.verified()?);
    let request = b"GET /13.txt HTTP/1.1\r\nHost: bench\r\n\r\n";
    let mut open = Vec::with_capacity(connections);
    let mut answered = 0;
    // Once one connection goes unanswered (every pool thread is held), the rest
    // will be too: stop waiting for answers, just hold the connections.
    let mut expect_answers = true;
    for _ in 0..connections {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(request)?;
        if expect_answers {
            // The answer is small: a head and 13 bytes, in one read.
            let mut buf = [0u8; 1024];
            if matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                answered += 1;
            } else {
                expect_answers = false;
            }
        }
        open.push(stream);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_with_idle_kib = procs::rss_kib(&server.verified()?);
    if answered == 0 {
        return Err(std::io::Error::other("no connection was answered"));
    }
    drop(open);
    std::thread::sleep(Duration::from_millis(500));
    Ok(IdleResult {
        connections,
        answered,
        rss_before_kib,
        rss_with_idle_kib,
    })
}
