//! What each event loop is doing right now, for the status page's live view:
//! its last turns, its connections, and how many are in each state of the
//! core. A loop publishes a view of itself at the start of a turn when the
//! page has asked for one since it last did (and at its first turn): a loop
//! nobody looks at spends nothing on it, and the page's next request, which
//! wakes an idle loop, is answered with the view that loop took as it woke.
//! The page (served by whichever loop or thread takes the request) reads the
//! views of all.
//!
//! Bounded: a view holds the last [`TURNS`] turns and the first
//! [`SHOWN_CONNECTIONS`] connections (and a count of all), whatever the loop
//! holds.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::http::State;

/// Turns a view remembers.
pub(crate) const TURNS: usize = 16;
/// Connections a view lists (the rest are counted).
pub(crate) const SHOWN_CONNECTIONS: usize = 100;

/// Every state of the core, in the order the page draws them.
pub(crate) const STATES: [State; 8] = [
    State::Idle,
    State::ReadingHead,
    State::AwaitingAnswer,
    State::ReadingBody,
    State::DiscardingBody,
    State::Closing,
    State::Lingering,
    State::Closed,
];

/// One turn of a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TurnView {
    pub(crate) number: u64,
    pub(crate) events: usize,
    pub(crate) deadlines_due: usize,
    pub(crate) took: Duration,
}

/// One connection of a loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnView {
    /// Its slab key and mio token: `#N` in the trace.
    pub(crate) token: usize,
    pub(crate) client: IpAddr,
    pub(crate) state: State,
    /// Still in its TLS handshake.
    pub(crate) handshaking: bool,
    /// Over HTTP/2, its streams open now (`None`: HTTP/1.1).
    pub(crate) streams: Option<usize>,
    /// The readiness registered with the poll: `R`, or `RW` while the
    /// socket has refused bytes the connection still holds.
    pub(crate) interest: &'static str,
    /// Response bytes queued, not yet written.
    pub(crate) queued: usize,
    /// How long until its deadline, if it has one.
    pub(crate) deadline_in: Option<Duration>,
    /// Requests answered completely on it.
    pub(crate) served: u64,
}

/// One loop, as it last published itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoopView {
    pub(crate) published: Instant,
    /// The last turns, oldest first.
    pub(crate) turns: Vec<TurnView>,
    /// Connections in each of [`STATES`].
    pub(crate) states: [usize; STATES.len()],
    /// All its connections.
    pub(crate) connections: usize,
    /// The first [`SHOWN_CONNECTIONS`] of them, by token.
    pub(crate) shown: Vec<ConnView>,
}

/// The index of `state` in [`STATES`].
pub(crate) fn state_index(state: State) -> usize {
    STATES.iter().position(|s| *s == state).unwrap_or(0)
}

/// A loop's memory of its last turns.
#[derive(Debug, Default)]
pub(crate) struct RecentTurns {
    turns: VecDeque<TurnView>,
}

impl RecentTurns {
    pub(crate) fn record(&mut self, turn: TurnView) {
        if self.turns.len() == TURNS {
            self.turns.pop_front();
        }
        self.turns.push_back(turn);
    }

    pub(crate) fn to_vec(&self) -> Vec<TurnView> {
        self.turns.iter().copied().collect()
    }
}

/// Builds a loop's view from its connections (any number; only the first
/// [`SHOWN_CONNECTIONS`] are listed).
pub(crate) fn view_of(
    published: Instant,
    turns: &RecentTurns,
    connections: impl Iterator<Item = ConnView>,
) -> LoopView {
    let mut view = LoopView {
        published,
        turns: turns.to_vec(),
        states: [0; STATES.len()],
        connections: 0,
        shown: Vec::with_capacity(SHOWN_CONNECTIONS),
    };
    for conn in connections {
        view.connections += 1;
        view.states[state_index(conn.state)] += 1;
        if view.shown.len() < SHOWN_CONNECTIONS {
            view.shown.push(conn);
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(token: usize, state: State) -> ConnView {
        ConnView {
            streams: None,
            token,
            client: IpAddr::from([127, 0, 0, 1]),
            state,
            handshaking: false,
            interest: "R",
            queued: 0,
            deadline_in: None,
            served: 0,
        }
    }

    #[test]
    fn a_view_lists_so_many_and_counts_them_all() {
        let mut turns = RecentTurns::default();
        for number in 0..40 {
            turns.record(TurnView {
                number,
                events: 1,
                deadlines_due: 0,
                took: Duration::from_micros(5),
            });
        }
        let states = [State::Idle, State::ReadingHead, State::Idle];
        let conns = (0..1000).map(|n| conn(n, states[n % 3]));
        let view = view_of(Instant::now(), &turns, conns);
        assert_eq!(view.turns.len(), TURNS);
        assert_eq!(
            view.turns.first().map(|t| t.number),
            Some(40 - TURNS as u64)
        );
        assert_eq!(view.connections, 1000);
        assert_eq!(view.shown.len(), SHOWN_CONNECTIONS);
        assert_eq!(view.states[state_index(State::Idle)], 667);
        assert_eq!(view.states[state_index(State::ReadingHead)], 333);
    }
}
