//! The seam: everything a driver may do with a connection, and nothing more.
//!
//! A driver (the mio loop, a blocking thread) holds one [`Session`] per socket
//! and speaks to it in a few verbs:
//!
//! | the driver | the session |
//! |---|---|
//! | lends a buffer, reads into [`read_buffer`](Session::read_buffer) | [`received`](Session::received) `n` bytes, or [`received_eof`](Session::received_eof) |
//! | writes what [`front`](Session::front) shows (writev or sendfile) | [`written`](Session::written) `n` bytes |
//! | sleeps until [`deadline`](Session::deadline) | [`on_deadline`](Session::on_deadline) |
//! | shuts its sending side when [`take_shutdown_request`](Session::take_shutdown_request) says so; closes the socket when [`is_closed`](Session::is_closed) | |
//! | asks [`wants_read`](Session::wants_read), [`has_output`](Session::has_output), [`is_idle`](Session::is_idle) | |
//! | begins a graceful shutdown | [`drain`](Session::drain) |
//!
//! Inside every verb that can move the connection on, the session runs the
//! protocol core and hands what it yields to the application, with the time the
//! driver gave it; no driver can forget that step, or run it on a schedule of
//! its own. What the access log needs comes out through
//! [`take_log_entries`](Session::take_log_entries).
//!
//! If a bug panics while a driver works on a session, the driver catches it at
//! its boundary and calls [`recover_from_panic`](Session::recover_from_panic):
//! that connection answers `500` (when it still can) and closes.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::access_log::{Entry, Ledger};
use crate::app::{App, BodySink, Peer, Reply, SiteTag};
use crate::clients::{Admission, Clients, Hold};
use crate::h2;
use crate::http::{
    Connection, Delivered, Event, Failure, Front, Now, RequestHead, Response, Settings, State,
    StatusCode, WriteQueue,
};
use crate::stats::{DriverStats, Phase, SiteSlot};

/// What every session of a driver shares: the application, the protocol's
/// settings, whether anyone keeps an access log, the driver's counters, and
/// the per-client limits (one for the whole process).
pub(crate) struct Service {
    app: App,
    settings: Arc<Settings>,
    access_log: bool,
    stats: Arc<DriverStats>,
    clients: Option<Arc<Clients>>,
}

impl Service {
    /// A service without per-client limits (the harness's and the tests').
    #[cfg(any(test, feature = "harness"))]
    pub(crate) fn new(
        app: App,
        settings: Settings,
        access_log: bool,
        stats: Arc<DriverStats>,
    ) -> Arc<Service> {
        Service::limited(app, settings, access_log, stats, None)
    }

    /// A service whose clients are held to `clients`' limits.
    pub(crate) fn limited(
        app: App,
        settings: Settings,
        access_log: bool,
        stats: Arc<DriverStats>,
        clients: Option<Arc<Clients>>,
    ) -> Arc<Service> {
        Arc::new(Service {
            app,
            settings: Arc::new(settings),
            access_log,
            stats,
            clients,
        })
    }

    /// Whether `client` may connect at all (`--allow`, `--deny`): a driver
    /// asks at accept, before reading a byte, and closes the connection if
    /// not.
    pub(crate) fn allows(&self, client: IpAddr) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|clients| clients.allows(client))
    }

    /// See [`App::watch_fd`]: a driver that waits on it takes changes in as
    /// they happen, and stale entries (and the descriptors they keep) go at
    /// once rather than at the next read.
    pub(crate) fn watch_fd(&self) -> Option<std::os::fd::RawFd> {
        self.app.watch_fd()
    }

    /// See [`App::files_changed`].
    pub(crate) fn files_changed(&self) {
        self.app.files_changed();
    }
}

pub(crate) struct Session {
    /// The protocol core: HTTP/1.1 until the connection shows it is HTTP/2.
    proto: Protocol,
    /// Cleartext, nothing read yet: the first bytes may be HTTP/2's preface.
    sniffing: bool,
    service: Arc<Service>,
    /// Who the requests come from: the peer, or the client a trusted proxy
    /// named (the PROXY protocol).
    client: IpAddr,
    /// The request being answered, from its head until its response is queued.
    /// Boxed: an idle connection holds a pointer, not a head's worth of room.
    current: Option<Box<InHand>>,
    /// Where the body of the current request goes, when the application wanted it.
    sink: Option<Box<dyn BodySink>>,
    /// Kept only while there is an access log.
    ledger: Option<Box<Ledger>>,
    /// The client's slot in the per-client limits, held while the
    /// connection is open (none without limits).
    hold: Option<Hold>,
    /// Over TLS, once the handshake is done: what it agreed. Boxed: a
    /// plaintext connection holds a null pointer.
    tls: Option<Box<Secured>>,
    /// The site of each response answered and not yet delivered, in the
    /// order the core delivers them: for the bytes each site sent. As
    /// bounded as the core's queue of responses; made at the first answer
    /// and kept for the connection's life (boxed: a pointer in the session,
    /// one allocation per connection, none per request).
    in_flight: Option<Box<InFlight>>,
}

/// The core a connection speaks.
enum Protocol {
    H1(Connection),
    /// Boxed: most connections are HTTP/1.1, and HTTP/2's core is larger.
    H2(Box<H2>),
}

/// An HTTP/2 connection's core, and the bodies the application is reading
/// on its streams (several at once, unlike HTTP/1.1's one).
struct H2 {
    conn: h2::Connection,
    uploads: Vec<Upload>,
}

/// A request whose body the application reads, on an HTTP/2 stream.
struct Upload {
    stream: u32,
    in_hand: Box<InHand>,
    sink: Box<dyn BodySink>,
}

/// The request being answered: its exchange, its head, and when its head
/// began to be read (for the access log's duration).
struct InHand {
    exchange: u64,
    /// Its HTTP/2 stream (none over HTTP/1.1).
    stream: Option<u32>,
    head: RequestHead,
    began: Instant,
    /// The site the application chose for it, once it has seen it.
    site: Option<SiteTag>,
}

/// What a finished TLS handshake told the session.
struct Secured {
    /// The name the client asked for (SNI).
    server_name: Option<Box<str>>,
}

impl Session {
    /// A session for the connection the driver calls `id` (its token), from
    /// `client`.
    pub(crate) fn new(id: usize, service: Arc<Service>, client: IpAddr, now: Instant) -> Session {
        Session {
            proto: Protocol::H1(Connection::new(id, Arc::clone(&service.settings), now)),
            sniffing: service.settings.http2,
            ledger: service.access_log.then(Box::default),
            service,
            client,
            current: None,
            sink: None,
            hold: None,
            tls: None,
            in_flight: None,
        }
    }

    /// The connection is TLS, its handshake done, for `server_name` (SNI):
    /// its requests are answered by that name's site, or refused when they
    /// name a site with another certificate.
    /// `version` is the protocol it agreed, as the access log writes it
    /// (`TLSv1.3`).
    /// `http2`: ALPN agreed on `h2`, so the connection speaks it from its
    /// first byte.
    pub(crate) fn secured(
        &mut self,
        server_name: Option<&str>,
        version: &'static str,
        http2: bool,
    ) {
        self.tls = Some(Box::new(Secured {
            server_name: server_name.map(Box::from),
        }));
        // Under TLS the protocol is what ALPN said, never a guess.
        self.sniffing = false;
        if http2 {
            self.speak_http2(Instant::now());
        }
        if let Some(ledger) = self.ledger.as_deref_mut() {
            ledger.secured(version);
        }
    }

    /// Who the requests come from.
    pub(crate) fn client(&self) -> IpAddr {
        self.client
    }

    /// The client is someone else than the peer: a trusted proxy said so.
    pub(crate) fn set_client(&mut self, client: IpAddr) {
        self.client = client;
    }

    /// Asks the per-client limits to serve this connection, once its client
    /// is known (at accept, or once a PROXY header named it). False: the
    /// client is denied, and the driver closes the socket unread. A client
    /// over its connection cap is answered `503` with `Retry-After`, and the
    /// session closes once that is sent.
    pub(crate) fn admit(&mut self, now: Now<'_>) -> bool {
        let Some(clients) = &self.service.clients else {
            return true;
        };
        match clients.admit(self.client, now.instant) {
            Admission::Admitted(hold) => {
                self.hold = hold;
                true
            }
            Admission::Denied => {
                self.abort();
                false
            }
            Admission::TooManyConnections { retry_after } => {
                let status = StatusCode::SERVICE_UNAVAILABLE;
                let refusal =
                    Response::error(status).with_header("Retry-After", retry_after.to_string());
                let Protocol::H1(conn) = &mut self.proto else {
                    // Admission comes before a byte is read, so before HTTP/2.
                    self.abort();
                    return true;
                };
                self.sniffing = false;
                if let Some(exchange) = conn.refuse(refusal, now) {
                    // No request was read: logged as `"-"`, as nginx logs one.
                    let unseen = Some("-".to_owned());
                    let site = self.service.app.default_site();
                    self.note_answer(exchange, None, unseen, status, now.instant, site);
                }
                true
            }
        }
    }

    // ----- reading -----------------------------------------------------------

    /// Whether the driver should read from the socket now.
    pub(crate) fn wants_read(&self) -> bool {
        match &self.proto {
            Protocol::H1(conn) => conn.wants_read(),
            Protocol::H2(h2) => h2.conn.wants_read(),
        }
    }

    /// Whether the session has no read buffer (an idle connection keeps none);
    /// the driver lends one from its pool with [`lend_buffer`](Self::lend_buffer).
    pub(crate) fn needs_buffer(&self) -> bool {
        match &self.proto {
            Protocol::H1(conn) => !conn.has_buffer(),
            Protocol::H2(h2) => !h2.conn.has_buffer(),
        }
    }

    pub(crate) fn lend_buffer(&mut self, buffer: Vec<u8>) {
        match &mut self.proto {
            Protocol::H1(conn) => conn.attach_buffer(buffer),
            Protocol::H2(h2) => h2.conn.attach_buffer(buffer),
        }
    }

    /// The lent buffer back, once nothing is buffered in it.
    pub(crate) fn reclaim_buffer(&mut self) -> Option<Vec<u8>> {
        match &mut self.proto {
            Protocol::H1(conn) => conn.detach_idle_buffer(),
            Protocol::H2(h2) => h2.conn.detach_idle_buffer(),
        }
    }

    /// Room to read into (empty when the input is full).
    pub(crate) fn read_buffer(&mut self) -> &mut [u8] {
        match &mut self.proto {
            Protocol::H1(conn) => conn.read_buffer(),
            Protocol::H2(h2) => h2.conn.read_buffer(),
        }
    }

    /// `n` bytes were read into [`read_buffer`](Self::read_buffer).
    pub(crate) fn received(&mut self, n: usize, now: Now<'_>) {
        // These bytes may hold a request sent after a file was edited: the
        // application takes in every change queued so far before it reads
        // them. A readiness event cannot promise that, since a loop may read
        // bytes that arrived after its poll returned (one `read` saying
        // `EAGAIN` where nothing changed).
        self.service.files_changed();
        match &mut self.proto {
            Protocol::H1(conn) => conn.received(n, now.instant),
            Protocol::H2(h2) => h2.conn.received(n, now.instant),
        }
        if self.sniffing && !self.sniff(now.instant) {
            // Part of the preface, perhaps: wait for the rest before HTTP/1.1
            // reads it as a request line.
            return;
        }
        self.advance(now);
    }

    /// On cleartext, before any request: whether the first bytes decide the
    /// protocol yet. Those of HTTP/2's preface (RFC 9113 section 3.4) hand
    /// the connection to the HTTP/2 core; any other byte leaves it to
    /// HTTP/1.1, whose request line cannot begin with the preface. What it
    /// costs an HTTP/1.1 client: one comparison of its first bytes.
    fn sniff(&mut self, now: Instant) -> bool {
        let Protocol::H1(conn) = &self.proto else {
            self.sniffing = false;
            return true;
        };
        if !conn.untouched() {
            self.sniffing = false;
            return true;
        }
        let data = conn.received_data();
        let preface = &h2::PREFACE[..];
        if data.len() < preface.len() && preface.starts_with(data) {
            return data.is_empty();
        }
        self.sniffing = false;
        if data.starts_with(preface) {
            self.speak_http2(now);
        }
        true
    }

    /// From here on the connection is HTTP/2's: its core takes over the
    /// input (and what it holds) and says its SETTINGS.
    fn speak_http2(&mut self, now: Instant) {
        let Protocol::H1(conn) = &mut self.proto else {
            return;
        };
        let input = conn.take_input();
        let id = conn.id();
        let settings = Arc::clone(&self.service.settings);
        let conn = h2::Connection::new(id, settings, input, now);
        self.proto = Protocol::H2(Box::new(H2 {
            conn,
            uploads: Vec::new(),
        }));
    }

    /// The client closed its sending side.
    pub(crate) fn received_eof(&mut self, now: Now<'_>) {
        self.sniffing = false;
        match &mut self.proto {
            Protocol::H1(conn) => conn.received_eof(now.instant),
            Protocol::H2(h2) => h2.conn.received_eof(now.instant),
        }
        self.advance(now);
    }

    // ----- writing -----------------------------------------------------------

    fn output(&self) -> &WriteQueue {
        match &self.proto {
            Protocol::H1(conn) => conn.output(),
            Protocol::H2(h2) => h2.conn.output(),
        }
    }

    /// Whether anything waits to be written.
    pub(crate) fn has_output(&self) -> bool {
        match &self.proto {
            Protocol::H1(conn) => conn.has_output(),
            Protocol::H2(h2) => h2.conn.has_output(),
        }
    }

    /// What to write next: in-memory bytes (filling `slices` for `writev`) or a
    /// file range (for `sendfile`).
    pub(crate) fn front<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> Front<'a> {
        self.output().front(slices)
    }

    /// `n` bytes from the front were written.
    pub(crate) fn written(&mut self, n: usize, now: Now<'_>) {
        let (ledger, stats) = (&mut self.ledger, &self.service.stats);
        let in_flight = &mut self.in_flight;
        let mut delivered = |delivery| record_delivery(ledger, stats, in_flight, delivery);
        match &mut self.proto {
            Protocol::H1(conn) => conn.written(n, now.instant, &mut delivered),
            Protocol::H2(h2) => h2.conn.written(n, now.instant, &mut delivered),
        }
        // Room in the queue may let pipelined requests in.
        self.advance(now);
    }

    /// True once, when the driver should shut down the sending side of the
    /// socket (`shutdown(SHUT_WR)`) and keep reading: the lingering close.
    pub(crate) fn take_shutdown_request(&mut self) -> bool {
        match &mut self.proto {
            Protocol::H1(conn) => conn.take_shutdown_request(),
            Protocol::H2(h2) => h2.conn.take_shutdown_request(),
        }
    }

    // ----- time and life -----------------------------------------------------

    /// When [`on_deadline`](Self::on_deadline) must next be called, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.proto {
            Protocol::H1(conn) => conn.deadline(),
            Protocol::H2(h2) => h2.conn.deadline(),
        }
    }

    /// Time has reached (or passed) the deadline.
    pub(crate) fn on_deadline(&mut self, now: Now<'_>) {
        match &mut self.proto {
            Protocol::H1(conn) => conn.on_deadline(now),
            Protocol::H2(h2) => h2.conn.on_deadline(now),
        }
        self.advance(now);
    }

    /// What the connection is doing, for the status page (the driver knows
    /// when it is in a TLS handshake).
    pub(crate) fn phase(&self) -> Phase {
        if self.has_output() {
            return Phase::Writing;
        }
        match self.state() {
            State::Idle => Phase::Waiting,
            State::ReadingHead | State::ReadingBody | State::DiscardingBody => Phase::Reading,
            State::AwaitingAnswer => Phase::Writing,
            State::Closing | State::Lingering | State::Closed => Phase::Closing,
        }
    }

    /// Its HTTP/2 streams open now, for the status page (`None`: HTTP/1.1).
    pub(crate) fn streams(&self) -> Option<usize> {
        match &self.proto {
            Protocol::H1(_) => None,
            Protocol::H2(h2) => Some(h2.conn.open_streams()),
        }
    }

    /// Waiting for a request, none begun.
    pub(crate) fn is_idle(&self) -> bool {
        self.state() == State::Idle
    }

    /// The driver should close the socket.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.proto {
            Protocol::H1(conn) => conn.is_closed(),
            Protocol::H2(h2) => h2.conn.is_closed(),
        }
    }

    /// Graceful shutdown: finish the exchange in hand (over HTTP/2, the
    /// streams begun: GOAWAY tells the client which), start no other.
    pub(crate) fn drain(&mut self, now: Now<'_>) {
        match &mut self.proto {
            Protocol::H1(conn) => conn.drain(),
            Protocol::H2(h2) => h2.conn.drain(),
        }
        self.advance(now);
    }

    /// Closes without ceremony (a reset, a write error, the end of a grace
    /// period), abandoning any request in progress.
    pub(crate) fn abort(&mut self) {
        self.sink = None;
        self.current = None;
        match &mut self.proto {
            Protocol::H1(conn) => conn.abort(),
            Protocol::H2(h2) => {
                h2.uploads.clear();
                h2.conn.abort();
            }
        }
        self.account_for_the_close();
    }

    /// Response bytes queued and not yet written, for the status page.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.output().buffered_bytes()
    }

    /// Requests answered completely on this connection.
    pub(crate) fn served(&self) -> u64 {
        match &self.proto {
            Protocol::H1(conn) => conn.served(),
            Protocol::H2(h2) => h2.conn.served(),
        }
    }

    /// The request line of the request in hand, for the error log.
    pub(crate) fn request_line(&self) -> Option<String> {
        self.current
            .as_deref()
            .map(|in_hand| in_hand.head.request_line())
    }

    /// The access log's entries for the responses gone since the last call
    /// (none without an access log).
    pub(crate) fn take_log_entries(&mut self) -> Vec<Entry> {
        self.ledger
            .as_deref_mut()
            .map(Ledger::take)
            .unwrap_or_default()
    }

    /// After a panic in this session's work: the application's hold on the
    /// request is dropped (an upload in progress is abandoned and removed), the
    /// request gets `500` if it has no answer yet, and the connection closes.
    pub(crate) fn recover_from_panic(&mut self, now: Now<'_>) {
        self.sink = None;
        let current = self.current.take();
        let answered = match &mut self.proto {
            Protocol::H1(conn) => conn.recover_from_bug(now),
            Protocol::H2(h2) => {
                h2.uploads.clear();
                let stream = current.as_deref().and_then(|in_hand| in_hand.stream);
                let exchange = current.as_deref().map(|in_hand| in_hand.exchange);
                exchange.filter(|_| h2.conn.recover_from_bug(stream, now))
            }
        };
        if let Some(exchange) = answered {
            let head = current.as_deref().map(|in_hand| &in_hand.head);
            let began = current
                .as_deref()
                .map_or(now.instant, |in_hand| in_hand.began);
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            let site = self.site_of(current.as_deref());
            self.note_answer(exchange, head, None, status, began, site);
        }
        self.account_for_the_close();
    }

    // ----- inside ------------------------------------------------------------

    /// Runs the core's events through the application until the connection has
    /// to wait for the socket or the clock.
    fn advance(&mut self, now: Now<'_>) {
        if matches!(self.proto, Protocol::H2(_)) {
            self.advance_h2(now);
        } else {
            self.advance_h1(now);
        }
        self.account_for_the_close();
    }

    fn advance_h1(&mut self, now: Now<'_>) {
        loop {
            let Protocol::H1(conn) = &mut self.proto else {
                return;
            };
            match conn.next_event(now) {
                Event::Request {
                    exchange,
                    head,
                    began,
                } => {
                    // Kept before the application sees it, so that a panic in
                    // the application can still be told apart by its request line.
                    let in_hand = InHand {
                        exchange,
                        stream: None,
                        head,
                        began,
                        site: None,
                    };
                    match self.handle(in_hand, now) {
                        Reply::Respond(response) => self.respond(response, now),
                        Reply::ReadBody(sink) => {
                            self.sink = Some(sink);
                            if let Protocol::H1(conn) = &mut self.proto {
                                conn.read_body();
                            }
                        }
                    }
                }
                Event::Body(data) => {
                    let refused = match self.sink.as_mut() {
                        Some(sink) => sink.write(data).err(),
                        None => Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
                    };
                    if let Some(response) = refused {
                        // Dropping the sink abandons what it had written.
                        self.sink = None;
                        self.respond(response, now);
                    }
                }
                Event::BodyEnd => {
                    let response = match self.sink.take() {
                        Some(sink) => sink.finish(),
                        None => Response::error(StatusCode::INTERNAL_SERVER_ERROR),
                    };
                    self.respond(response, now);
                }
                Event::Failed(failure) => self.failed(failure, now.instant),
                Event::Pending => break,
            }
        }
    }

    /// Hands a request to the application, unless its client is over its
    /// rate. It is kept in hand while the application works, so that a
    /// panic there can still be told apart by its request line.
    fn handle(&mut self, in_hand: InHand, now: Now<'_>) -> Reply {
        let in_hand = self.current.insert(Box::new(in_hand));
        let rate = match (&self.service.clients, self.hold) {
            (Some(clients), Some(hold)) => clients.take_request(hold, now.instant),
            _ => Ok(()),
        };
        match rate {
            // Not shown to the application: filed under the default site,
            // as a request it could not read.
            Err(wait) => Reply::Respond(too_many_requests(wait)),
            Ok(()) => {
                let peer = Peer {
                    client: self.client,
                    tls: self.tls.as_ref().map(|t| t.server_name.as_deref()),
                };
                let (reply, site) = self.service.app.handle(&in_hand.head, peer, now);
                in_hand.site = Some(site);
                reply
            }
        }
    }

    /// HTTP/2's events: the same requests, bodies and answers as
    /// HTTP/1.1's, each on its stream, several bodies at once.
    fn advance_h2(&mut self, now: Now<'_>) {
        loop {
            let Protocol::H2(h2) = &mut self.proto else {
                return;
            };
            match h2.conn.next_event(now) {
                h2::Event::Request {
                    stream,
                    exchange,
                    head,
                    began,
                } => {
                    let in_hand = InHand {
                        exchange,
                        stream: Some(stream),
                        head,
                        began,
                        site: None,
                    };
                    let reply = self.handle(in_hand, now);
                    let Some(in_hand) = self.current.take() else {
                        continue;
                    };
                    match reply {
                        Reply::Respond(response) => self.respond_h2(in_hand, response, now),
                        Reply::ReadBody(sink) => {
                            if let Protocol::H2(h2) = &mut self.proto {
                                h2.uploads.push(Upload {
                                    stream,
                                    in_hand,
                                    sink,
                                });
                                h2.conn.read_body(stream);
                            }
                        }
                    }
                }
                h2::Event::Body { stream, data } => {
                    let upload = h2.uploads.iter_mut().find(|u| u.stream == stream);
                    let refused = match upload {
                        Some(upload) => upload.sink.write(data).err(),
                        None => Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
                    };
                    if let Some(response) = refused
                        && let Some(upload) = self.take_upload(stream)
                    {
                        // Dropping the sink abandons what it had written.
                        self.respond_h2(upload.in_hand, response, now);
                    }
                }
                h2::Event::BodyEnd { stream } => {
                    if let Some(upload) = self.take_upload(stream) {
                        let response = upload.sink.finish();
                        self.respond_h2(upload.in_hand, response, now);
                    }
                }
                h2::Event::BodyFailed { stream, error } => {
                    if let Some(upload) = self.take_upload(stream) {
                        let status = error.status().unwrap_or(StatusCode::BAD_REQUEST);
                        self.respond_h2(upload.in_hand, Response::error(status), now);
                    }
                }
                h2::Event::Cancelled { stream } => {
                    self.take_upload(stream);
                }
                h2::Event::Refused {
                    exchange,
                    request_line,
                    status,
                    began,
                } => {
                    let site = self.service.app.default_site();
                    let line = Some(request_line);
                    self.note_answer(exchange, None, line, status, began, site);
                }
                h2::Event::Pending => break,
            }
        }
        if let Protocol::H2(h2) = &mut self.proto {
            let (ledger, stats) = (&mut self.ledger, &self.service.stats);
            let in_flight = &mut self.in_flight;
            h2.conn.take_cut_short(&mut |delivery| {
                record_delivery(ledger, stats, in_flight, delivery);
            });
        }
    }

    fn take_upload(&mut self, stream: u32) -> Option<Upload> {
        let Protocol::H2(h2) = &mut self.proto else {
            return None;
        };
        let at = h2.uploads.iter().position(|u| u.stream == stream)?;
        Some(h2.uploads.swap_remove(at))
    }

    fn respond_h2(&mut self, in_hand: Box<InHand>, response: Response, now: Now<'_>) {
        let site = self.site_of(Some(&in_hand));
        let InHand {
            exchange,
            stream,
            head,
            began,
            ..
        } = *in_hand;
        self.note_answer(exchange, Some(&head), None, response.status(), began, site);
        if let (Protocol::H2(h2), Some(stream)) = (&mut self.proto, stream) {
            h2.conn.respond(stream, exchange, response, now);
        }
    }

    fn respond(&mut self, response: Response, now: Now<'_>) {
        if let Some(in_hand) = self.current.take() {
            let site = self.site_of(Some(&in_hand));
            let InHand {
                exchange,
                head,
                began,
                ..
            } = *in_hand;
            self.note_answer(exchange, Some(&head), None, response.status(), began, site);
        }
        if let Protocol::H1(conn) = &mut self.proto {
            conn.respond(response, now);
        }
    }

    /// The core could not read a request, and answered it if it still could.
    fn failed(&mut self, failure: Failure, now: Instant) {
        self.sink = None;
        let current = self.current.take();
        if let (Some(exchange), Some(status)) = (failure.answered_as, failure.error.status()) {
            let head = current.as_deref().map(|in_hand| &in_hand.head);
            let began = current
                .as_deref()
                .map(|in_hand| in_hand.began)
                .or(failure.head_began)
                .unwrap_or(now);
            let site = self.site_of(current.as_deref());
            let unseen = failure.unseen_request;
            self.note_answer(exchange, head, unseen, status, began, site);
        }
    }

    /// The site a request is filed under: the one the application chose,
    /// or, for one it never saw, the default site.
    fn site_of(&self, in_hand: Option<&InHand>) -> SiteTag {
        match in_hand.and_then(|in_hand| in_hand.site.clone()) {
            Some(site) => site,
            None => self.service.app.default_site(),
        }
    }

    fn note_answer(
        &mut self,
        exchange: u64,
        head: Option<&RequestHead>,
        unseen_request: Option<String>,
        status: StatusCode,
        began: Instant,
        site: SiteTag,
    ) {
        self.service.stats.answered(status.as_u16(), site.slot);
        let in_flight = self.in_flight.get_or_insert_with(Box::default);
        in_flight.0.push_back((exchange, site.slot));
        if let Some(ledger) = self.ledger.as_deref_mut() {
            ledger.answered(exchange, head, unseen_request, status, began, site.name);
        }
    }

    /// Once closed, what was still queued is dropped: the responses it cut
    /// short go to the ledger with the bytes that did leave.
    fn account_for_the_close(&mut self) {
        if self.is_closed() {
            self.sink = None;
            self.current = None;
            let (ledger, stats) = (&mut self.ledger, &self.service.stats);
            let in_flight = &mut self.in_flight;
            let mut delivered = |delivery| record_delivery(ledger, stats, in_flight, delivery);
            match &mut self.proto {
                Protocol::H1(conn) => conn.abandon_output(&mut delivered),
                Protocol::H2(h2) => {
                    h2.uploads.clear();
                    h2.conn.abandon_output(&mut delivered);
                }
            }
            // Answers the core never queued (none is expected) have no
            // delivery to wait for.
            if let Some(in_flight) = self.in_flight.as_deref_mut() {
                in_flight.0.clear();
            }
        }
    }

    /// Bytes buffered in and out, for the bounds the harness checks.
    #[cfg(any(test, feature = "harness"))]
    pub(crate) fn buffered(&self) -> (usize, usize) {
        let input = match &self.proto {
            Protocol::H1(conn) => conn.buffered_input(),
            Protocol::H2(h2) => h2.conn.buffered_input(),
        };
        (input, self.output().buffered_bytes())
    }

    /// The core's state: for the status page's live view, and the harness's
    /// transcripts.
    pub(crate) fn state(&self) -> crate::http::State {
        match &self.proto {
            Protocol::H1(conn) => conn.state(),
            Protocol::H2(h2) => h2.conn.state(),
        }
    }
}

impl Drop for Session {
    /// However the connection ended, its client's slot in the limits is
    /// given back.
    fn drop(&mut self) {
        if let (Some(clients), Some(hold)) = (&self.service.clients, self.hold.take()) {
            clients.release(hold);
        }
    }
}

/// The answer to a request over its client's rate: try again in `wait`
/// seconds. The connection stays open.
fn too_many_requests(wait: u32) -> Response {
    Response::error(StatusCode::TOO_MANY_REQUESTS).with_header("Retry-After", wait.to_string())
}

/// A response has gone (or was cut short): the access log and the counters
/// (its site's too) hear of it.
fn record_delivery(
    ledger: &mut Option<Box<Ledger>>,
    stats: &DriverStats,
    in_flight: &mut Option<Box<InFlight>>,
    delivery: Delivered,
) {
    let site = in_flight
        .as_deref_mut()
        .map_or(SiteSlot::OTHER, |in_flight| {
            in_flight.site_of(delivery.exchange)
        });
    stats.delivered(delivery.body_bytes, site);
    if let Some(ledger) = ledger.as_deref_mut() {
        ledger.delivered(delivery, Instant::now());
    }
}

/// The sites of a connection's responses answered and not yet delivered,
/// by exchange, in the order answered.
#[derive(Debug, Default)]
struct InFlight(VecDeque<(u64, SiteSlot)>);

impl InFlight {
    /// The site of `exchange`, delivered. HTTP/1.1 delivers responses in
    /// the order they were answered, so it is the front one; HTTP/2's
    /// streams end in any order, among at most its hundred streams.
    fn site_of(&mut self, exchange: u64) -> SiteSlot {
        match self.0.iter().position(|(e, _)| *e == exchange) {
            Some(at) => self.0.remove(at).map_or(SiteSlot::OTHER, |(_, site)| site),
            None => SiteSlot::OTHER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppConfig;
    use crate::stats::{DriverKind, Registry};

    /// A client that pipelines and never reads: what the session keeps for
    /// the access log is bounded by what the core lets be in flight, not by
    /// what the client sends.
    #[test]
    fn the_ledger_holds_no_more_than_the_responses_in_flight() {
        let registry = Registry::new();
        let config = AppConfig {
            builtins: true,
            ..AppConfig::default()
        };
        let settings = Settings::default();
        let service = Service::new(
            App::new(&config, &registry),
            settings,
            true,
            registry.driver(DriverKind::Loop),
        );
        let now = crate::app::tests::now();
        let mut session = Session::new(0, service, crate::app::tests::client(), now.instant);
        let request = b"GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n".repeat(1000);
        let mut sent = 0;
        while sent < request.len() && session.wants_read() {
            if session.needs_buffer() {
                session.lend_buffer(vec![0; crate::http::READ_SIZE]);
            }
            let room = session.read_buffer();
            let n = room.len().min(request.len() - sent);
            room[..n].copy_from_slice(&request[sent..sent + n]);
            session.received(n, now);
            sent += n;
        }
        assert!(sent < request.len(), "backpressure stopped the reading");
        let held = session.ledger.as_deref().map_or(0, Ledger::held);
        assert!(
            held <= settings.limits.max_queued_responses + 1,
            "{held} entries held"
        );
        assert!(held > 0);
    }
}
