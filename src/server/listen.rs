//! Where the server listens, and what each listener serves: sockets bound here
//! from `--bind`, `--port` and `--redirect-http` (with a real backlog, and
//! `SO_REUSEPORT` for worker loops), or passed by systemd (socket activation),
//! in which case they replace those flags.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;
use crate::system::{self, PassedSocket};

/// Connections the kernel may queue before we accept them. It caps this at
/// `net.core.somaxconn` (4096 on current kernels); std's default of 128 drops
/// connections under a burst of a few hundred clients.
const BACKLOG: i32 = 4096;

/// The name a systemd socket is given (`FileDescriptorName=redirect`) to be
/// the plaintext listener that sends clients to HTTPS.
const REDIRECT_NAME: &str = "redirect";

/// What one listening port serves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    pub number: u16,
    pub tls: bool,
    /// A plaintext port whose whole job is to send clients to HTTPS.
    pub redirect: bool,
}

/// Every listener of the server.
pub(crate) struct Listening {
    /// What each port serves; a listener names its port by index.
    pub ports: Vec<Port>,
    /// For each loop, its listeners, each with the index of its port.
    pub per_loop: Vec<Vec<(TcpListener, usize)>>,
    /// Passed by systemd rather than bound here.
    pub activated: bool,
}

impl Listening {
    /// The sockets systemd passed, if any, else those the flags ask for; one
    /// set per loop. `tls` says whether the main port speaks HTTPS.
    pub(crate) fn open(config: &Config, tls: bool, loops: usize) -> io::Result<Listening> {
        match system::passed_sockets().map_err(io::Error::other)? {
            Some(passed) => adopt(passed, config, tls, loops),
            None => bind_flags(config, tls, loops),
        }
    }

    /// The port a redirect sends clients to.
    pub(crate) fn https_port(&self) -> u16 {
        self.ports
            .iter()
            .find(|port| !port.redirect)
            .map_or(443, |port| port.number)
    }

    /// Whether any listener takes connections from beyond this machine.
    pub(crate) fn is_public(&self) -> bool {
        let first = self.per_loop.first().map(Vec::as_slice).unwrap_or_default();
        first.iter().any(|(listener, _)| {
            listener
                .local_addr()
                .is_ok_and(|addr| !addr.ip().is_loopback())
        })
    }

    /// `https://127.0.0.1:8443 and http://127.0.0.1:8080 (redirect to HTTPS)`.
    pub(crate) fn describe(&self) -> String {
        let first = self.per_loop.first().map(Vec::as_slice).unwrap_or_default();
        let mut urls = Vec::new();
        for (listener, index) in first {
            let (Ok(addr), Some(port)) = (listener.local_addr(), self.ports.get(*index)) else {
                continue;
            };
            let scheme = if port.tls { "https" } else { "http" };
            let note = if port.redirect {
                " (redirect to HTTPS)"
            } else {
                ""
            };
            urls.push(format!("{scheme}://{addr}{note}"));
        }
        let mut text = urls.join(" and ");
        if self.activated {
            text.push_str(" (sockets from systemd)");
        }
        text
    }
}

/// Binds `--port` (and `--redirect-http`) on every `--bind` address, for
/// each loop.
fn bind_flags(config: &Config, tls: bool, loops: usize) -> io::Result<Listening> {
    let mut ports = vec![Port {
        number: config.port,
        tls,
        redirect: false,
    }];
    if let Some(number) = config.redirect_http {
        ports.push(Port {
            number,
            tls: false,
            redirect: true,
        });
    }
    let per_loop = bind_all(&config.bind, &mut ports, loops)?;
    Ok(Listening {
        ports,
        per_loop,
        activated: false,
    })
}

/// For each of `loops`, one listener per port and address, in the order of
/// `ports`. With several loops they share each address through
/// `SO_REUSEPORT`, once it is known that nobody else listens there. A port of
/// 0 is chosen by the first address and joined by every other listener;
/// `ports` learns the numbers given.
fn bind_all(
    addresses: &[IpAddr],
    ports: &mut [Port],
    loops: usize,
) -> io::Result<Vec<Vec<(TcpListener, usize)>>> {
    let options = BindOptions {
        reuse_port: loops > 1 && KERNEL_SPREADS_CONNECTIONS,
        // `::` alone takes IPv4 too; beside other addresses it must not.
        v6_only: addresses.len() > 1,
    };
    let mut first_loop = Vec::new();
    for (index, port) in ports.iter_mut().enumerate() {
        for &ip in addresses {
            let addr = SocketAddr::new(ip, port.number);
            let refused =
                |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
            let free = match options.reuse_port {
                true => probe(addr, options).map_err(refused)?,
                false => addr,
            };
            let bound = bind(free, options).map_err(refused)?;
            port.number = bound.local_addr()?.port();
            first_loop.push((bound, index));
        }
    }
    let mut all = Vec::with_capacity(loops);
    for _ in 1..loops {
        let other = first_loop
            .iter()
            .map(|(listener, index)| Ok((another_listener(listener, options)?, *index)))
            .collect::<io::Result<_>>()?;
        all.push(other);
    }
    all.insert(0, first_loop);
    Ok(all)
}

/// Whether the kernel spreads the connections of one address across several
/// sockets bound to it with `SO_REUSEPORT` (or FreeBSD's `SO_REUSEPORT_LB`).
/// Where it does not, the loops share one socket instead, and none is bound
/// with the option, which would only let another server in beside them.
const KERNEL_SPREADS_CONNECTIONS: bool = cfg!(any(target_os = "linux", target_os = "freebsd"));

/// The listener of one more loop on the address `first` listens on: a socket
/// of its own where the kernel spreads connections across the sockets of one
/// address (Linux's `SO_REUSEPORT`, FreeBSD's `SO_REUSEPORT_LB`); elsewhere
/// (macOS, whose `SO_REUSEPORT` hands every connection to one socket) a
/// duplicate of `first`, so every loop is woken for a newcomer and one of
/// them accepts it, as with systemd's sockets.
fn another_listener(first: &TcpListener, options: BindOptions) -> io::Result<TcpListener> {
    if KERNEL_SPREADS_CONNECTIONS {
        bind(first.local_addr()?, options)
    } else {
        first.try_clone()
    }
}

/// Takes the sockets systemd passed: each serves the site (over HTTPS when a
/// certificate is given), but one named `redirect`, which sends to HTTPS.
/// Several loops share each socket (a duplicate descriptor each): every loop
/// is woken for a newcomer, and one of them gets it.
fn adopt(
    passed: Vec<PassedSocket>,
    config: &Config,
    tls: bool,
    loops: usize,
) -> io::Result<Listening> {
    let refuse = |message: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    if config.redirect_http.is_some() {
        return refuse(
            "with sockets from systemd, name the plaintext one `redirect` \
             (FileDescriptorName=redirect) instead of giving --redirect-http",
        );
    }
    let mut ports = Vec::new();
    let mut first_loop = Vec::new();
    for (index, socket) in passed.into_iter().enumerate() {
        let redirect = socket.name.as_deref() == Some(REDIRECT_NAME);
        if redirect && !tls {
            return refuse("a socket named `redirect` sends clients to HTTPS: it needs --tls-cert");
        }
        ports.push(Port {
            number: socket.listener.local_addr()?.port(),
            tls: tls && !redirect,
            redirect,
        });
        first_loop.push((socket.listener, index));
    }
    let mut all = Vec::with_capacity(loops);
    for _ in 1..loops {
        let other = first_loop
            .iter()
            .map(|(listener, index)| Ok((listener.try_clone()?, *index)))
            .collect::<io::Result<_>>()?;
        all.push(other);
    }
    all.insert(0, first_loop);
    Ok(Listening {
        ports,
        per_loop: all,
        activated: true,
    })
}

/// How a listening socket is set up.
#[derive(Clone, Copy, Debug, Default)]
struct BindOptions {
    /// Several listeners (one per worker loop) share the address, and the
    /// kernel spreads connections across them.
    reuse_port: bool,
    /// An IPv6 listener takes IPv6 only (so `::` can sit beside `0.0.0.0`).
    v6_only: bool,
}

/// Whether `addr` is free for a new server, asked before several listeners
/// share it through `SO_REUSEPORT`: sharing would otherwise also let them in
/// beside another server's listeners there (of the same user), and the kernel
/// would split the clients between two different sites. A socket without
/// `SO_REUSEPORT` cannot bind where anyone listens. Returns the address with
/// the port the system chose, when asked for port 0.
fn probe(addr: SocketAddr, options: BindOptions) -> io::Result<SocketAddr> {
    let exclusive = BindOptions {
        reuse_port: false,
        ..options
    };
    let socket = bind(addr, exclusive)?;
    socket.local_addr()
}

/// Binds a non-blocking listener.
fn bind(addr: SocketAddr, options: BindOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
        // FreeBSD spreads connections only with its own option (12.0 on).
        #[cfg(target_os = "freebsd")]
        socket.set_reuse_port_lb(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(options.v6_only)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
