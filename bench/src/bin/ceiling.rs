//! The ceiling: a mio loop that answers every request head with one canned
//! response of a 13-byte body, with no parsing, no routing and no files.
//!
//! It is not a server: it only counts blank lines (`\r\n\r\n`). It tells a
//! reader how many requests per second this machine's loopback, kernel and
//! load generator allow at all, so every real server can be shown as a
//! fraction of it.
//!
//! Usage: `ceiling --port PORT`

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";
const LISTENER: Token = Token(usize::MAX);

struct Client {
    socket: TcpStream,
    /// The last bytes of the previous read, in case a `\r\n\r\n` spans two reads.
    tail: [u8; 3],
    tail_len: usize,
    /// Responses owed but not yet accepted by the socket.
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
    }
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut clients: Slab<Client> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut socket, _)) => {
                            let _ = socket.set_nodelay(true);
                            let entry = clients.vacant_entry();
                            poll.registry().register(
                                &mut socket,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(Client {
                                socket,
                                tail: [0; 3],
                                tail_len: 0,
                                pending: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(client) = clients.get_mut(key) else {
                continue;
            };
            if serve(client, &mut buffer).is_err() {
                clients.remove(key);
            }
        }
    }
}

/// Reads until WouldBlock, owing one response per blank line, then writes
/// until WouldBlock. Err means the connection is over.
fn serve(client: &mut Client, buffer: &mut [u8]) -> io::Result<()> {
    loop {
        match client.socket.read(buffer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                let heads = count_heads(client, &buffer[..n]);
                for _ in 0..heads {
                    client.pending.extend_from_slice(RESPONSE);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    while !client.pending.is_empty() {
        match client.socket.write(&client.pending) {
            Ok(n) => {
                client.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Counts `\r\n\r\n` in the previous read's tail followed by `data`.
fn count_heads(client: &mut Client, data: &[u8]) -> usize {
    let mut joined = Vec::with_capacity(client.tail_len + data.len());
    joined.extend_from_slice(&client.tail[..client.tail_len]);
    joined.extend_from_slice(data);
    let count = joined.windows(4).filter(|w| *w == b"\r\n\r\n").count();
    let keep = joined.len().min(3);
    client.tail[..keep].copy_from_slice(&joined[joined.len() - keep..]);
    client.tail_len = keep;
    count
}
