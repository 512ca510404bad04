//! A bug costs one connection, never the server.
//!
//! Every driver runs a connection's work inside [`catch`]. A panic there (a
//! bug: nothing a peer sends is meant to reach one) unwinds to the driver's
//! boundary instead of the process's: the driver logs it with the connection's
//! token and request line, lets the session answer `500` if it still can, and
//! closes that connection. Every other connection carries on.
//!
//! This is why the release profile unwinds instead of aborting.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// Runs `work`; a panic inside it comes back as its message.
///
/// `AssertUnwindSafe` is the honest claim here: after a panic the driver
/// touches the connection only to answer and close it, and the shared state
/// a panic could interrupt (the caches) recovers from poisoned locks.
pub(crate) fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(work)).map_err(|payload| message(payload.as_ref()))
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Logs a contained panic, once per connection.
pub(crate) fn report(id: usize, request_line: Option<&str>, message: &str) {
    match request_line {
        Some(line) => log::error!(
            "#{id}: bug while serving {line:?}: {message}; answering 500 if nothing of the \
             response has left, and closing this connection only"
        ),
        None => log::error!("#{id}: bug: {message}; closing this connection only"),
    }
}

/// Sends panic reports to the log (with where it happened), instead of the
/// default hook's bare stderr line: a contained panic is an error worth
/// reading next to the lines around it.
pub fn log_panics() {
    panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => log::error!("{info}\n{backtrace}"),
            _ => log::error!("{info}"),
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_as_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(
            catch(|| panic!("static")),
            Err::<(), _>("static".to_owned())
        );
        let n = 3;
        assert_eq!(
            catch(|| panic!("formatted {n}")),
            Err::<(), _>("formatted 3".to_owned())
        );
    }
}
