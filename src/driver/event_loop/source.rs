//! What a readiness event is about, from its token. Connections are their
//! slab keys, counting up from 0; the loop's other sources take the top of
//! the token space, counting down, each kind with a limit of its own so that
//! they never meet.
//!
//! ```text
//! usize::MAX                 the signal pipe
//! usize::MAX - 1 - i         the file watch i         (i < MAX_WATCHES)
//! FIRST_LISTENER - i         the listener i           (i < MAX_LISTENERS)
//! 0, 1, 2, ...               connections, by slab key (below MAX_CONNECTIONS)
//! ```

use std::io;

use mio::Token;

/// File watches a loop can register (one per application it serves).
pub(super) const MAX_WATCHES: usize = 64;
/// Listening sockets a loop can register (one per port and address).
pub(super) const MAX_LISTENERS: usize = 1024;

const SIGNALS: usize = usize::MAX;
const FIRST_WATCH: usize = SIGNALS - 1;
const FIRST_LISTENER: usize = FIRST_WATCH - MAX_WATCHES;
/// Slab keys stay below every other source's token.
pub(super) const MAX_CONNECTIONS: usize = FIRST_LISTENER - MAX_LISTENERS + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Signals,
    Watch(usize),
    Listener(usize),
    Conn(usize),
}

impl Source {
    /// The source a token stands for.
    pub(super) fn of(token: Token) -> Source {
        match token.0 {
            SIGNALS => Source::Signals,
            t if t > FIRST_LISTENER => Source::Watch(FIRST_WATCH - t),
            t if t >= MAX_CONNECTIONS => Source::Listener(FIRST_LISTENER - t),
            key => Source::Conn(key),
        }
    }

    /// The token to register the source under; an error past its kind's
    /// limit.
    pub(super) fn token(self) -> io::Result<Token> {
        let over = |what: &str, limit: usize| {
            Err(io::Error::other(format!(
                "more than {limit} {what} in one event loop"
            )))
        };
        Ok(Token(match self {
            Source::Signals => SIGNALS,
            Source::Watch(i) if i < MAX_WATCHES => FIRST_WATCH - i,
            Source::Watch(_) => return over("file watches", MAX_WATCHES),
            Source::Listener(i) if i < MAX_LISTENERS => FIRST_LISTENER - i,
            Source::Listener(_) => return over("listening sockets", MAX_LISTENERS),
            Source::Conn(key) if key < MAX_CONNECTIONS => key,
            Source::Conn(_) => return over("connections", MAX_CONNECTIONS),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_comes_back_from_its_token() {
        let sources = [
            Source::Signals,
            Source::Watch(0),
            Source::Watch(MAX_WATCHES - 1),
            Source::Listener(0),
            Source::Listener(MAX_LISTENERS - 1),
            Source::Conn(0),
            Source::Conn(123_456),
            Source::Conn(MAX_CONNECTIONS - 1),
        ];
        for source in sources {
            let token = source.token().unwrap();
            assert_eq!(Source::of(token), source, "{token:?}");
        }
    }

    #[test]
    fn each_kind_stops_at_its_limit() {
        assert!(Source::Watch(MAX_WATCHES).token().is_err());
        assert!(Source::Listener(MAX_LISTENERS).token().is_err());
        assert!(Source::Conn(MAX_CONNECTIONS).token().is_err());
    }
}
