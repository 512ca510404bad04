//! The seam: one connection's protocol core joined to the application.
//!
//! Every driver (the mio loop, thread-per-connection, the pool) owns one `Session`
//! per socket, moves bytes between the socket and [`Session::conn_mut`], and calls
//! [`Session::process`] whenever input arrived, output drained or a timer fired.
//! `process` is the only place where requests meet the application, so the models
//! differ in how they wait for sockets and in nothing else.

use std::time::Instant;

use crate::app::{App, BodySink, Reply};
use crate::http::{Connection, Event, Now, Response, Settings, StatusCode};

pub struct Session {
    conn: Connection,
    /// Where the body of the current request goes, when the application wanted it.
    sink: Option<Box<dyn BodySink>>,
}

impl Session {
    pub fn new(id: usize, settings: Settings, now: Instant) -> Session {
        Session {
            conn: Connection::new(id, settings, now),
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
                Event::Request(head) => match app.handle(&head) {
                    Reply::Respond(response) => self.conn.respond(response, now),
                    Reply::ReadBody(sink) => {
                        self.sink = Some(sink);
                        self.conn.read_body();
                    }
                },
                Event::Body(data) => {
                    let refused = match self.sink.as_mut() {
                        Some(sink) => sink.write(data).err(),
                        None => Some(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
                    };
                    if let Some(response) = refused {
                        // Dropping the sink abandons what it had written.
                        self.sink = None;
                        self.conn.respond(response, now);
                    }
                }
                Event::BodyEnd => {
                    let response = match self.sink.take() {
                        Some(sink) => sink.finish(),
                        None => Response::error(StatusCode::INTERNAL_SERVER_ERROR),
                    };
                    self.conn.respond(response, now);
                }
                Event::Failed(_) => self.sink = None,
                Event::Pending => break,
            }
        }
        if self.conn.is_closed() {
            // The client went away mid-body, or the body was malformed.
            self.sink = None;
        }
    }

    /// Closes without ceremony (a reset, a write error, the end of a grace period),
    /// abandoning any request in progress.
    pub fn abort(&mut self) {
        self.sink = None;
        self.conn.abort();
    }
}
