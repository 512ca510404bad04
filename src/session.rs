//! The seam: one connection's protocol core joined to the application.
//!
//! Every driver (the mio loop, thread-per-connection, the pool) owns one `Session`
//! per socket, moves bytes between the socket and [`Session::conn_mut`], and calls
//! [`Session::process`] whenever input arrived, output drained or a timer fired.
//! `process` is the only place where requests meet the application, so the models
//! differ in how they wait for sockets and in nothing else.
//!
//! If a bug panics while a driver works on a session, the driver catches it at
//! its boundary and calls [`Session::recover_from_panic`]: that connection
//! answers `500` (when it still can) and closes; every other one goes on.

use std::time::Instant;

use crate::app::{App, BodySink, Reply};
use crate::http::{Connection, Event, Now, RequestHead, Response, Settings, StatusCode};

pub struct Session {
    conn: Connection,
    /// The request being answered, from its head until its response is queued.
    current: Option<RequestHead>,
    /// Where the body of the current request goes, when the application wanted it.
    sink: Option<Box<dyn BodySink>>,
}

impl Session {
    pub fn new(id: usize, settings: Settings, now: Instant) -> Session {
        Session {
            conn: Connection::new(id, settings, now),
            current: None,
            sink: None,
        }
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs the connection's events through the application until it has to wait
    /// for the socket (or the clock).
    pub fn process(&mut self, app: &App, now: Now<'_>) {
        loop {
            match self.conn.next_event(now) {
                Event::Request(head) => {
                    // Kept before the application sees it, so that a panic in the
                    // application can still be told apart by its request line.
                    let head = self.current.insert(head);
                    match app.handle(head) {
                        Reply::Respond(response) => self.respond(response, now),
                        Reply::ReadBody(sink) => {
                            self.sink = Some(sink);
                            self.conn.read_body();
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
                Event::Failed(_) => {
                    self.sink = None;
                    self.current = None;
                }
                Event::Pending => break,
            }
        }
        if self.conn.is_closed() {
            // The client went away mid-body, or the body was malformed.
            self.sink = None;
            self.current = None;
        }
    }

    fn respond(&mut self, response: Response, now: Now<'_>) {
        self.current = None;
        self.conn.respond(response, now);
    }

    /// The request line of the request in hand, for the error log.
    pub fn request_line(&self) -> Option<String> {
        self.current.as_ref().map(RequestHead::request_line)
    }

    /// After a panic in this session's work: the application's hold on the
    /// request is dropped (an upload in progress is abandoned and removed), the
    /// request gets `500` if it has no answer yet, and the connection closes.
    pub fn recover_from_panic(&mut self, now: Now<'_>) {
        self.sink = None;
        self.current = None;
        self.conn.fail_internal(now);
    }

    /// Closes without ceremony (a reset, a write error, the end of a grace period),
    /// abandoning any request in progress.
    pub fn abort(&mut self) {
        self.sink = None;
        self.current = None;
        self.conn.abort();
    }
}
