//! The pure domain of umlauf: bodies, circulations and the voting-rule engine.
//!
//! A command is decided against folded state and yields events ([`decide`]); state is a fold of
//! events ([`body::evolve`], [`circulation::evolve`]); read models are pure functions of state
//! ([`read_model`]).
//!
//! Architecture Invariant: nothing here performs IO, runs async code, reads a clock or draws
//! randomness. Time and identifiers are arguments, so replaying a history always gives the same
//! states and the same decisions.

pub mod body;
pub mod circulation;
pub mod command;
pub mod error;
pub mod event;
pub mod ids;
pub mod read_model;
pub mod record;
pub mod rule;
pub mod stream;
mod value_text;
pub mod weak_keys;

use chrono::{DateTime, Utc};

pub use body::{Body, authorize};
pub use circulation::Circulation;
pub use command::{Action, Command};
pub use error::DomainError;
pub use event::Event;
pub use record::Record;
pub use stream::StreamId;

/// The state a command is decided against: always its body, and for circulation commands the
/// circulation (default, i.e. not opened, if its stream is empty).
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    /// The body the command names.
    pub body: &'a Body,
    /// The circulation the command addresses, if it addresses one.
    pub circulation: Option<&'a Circulation>,
}

/// Decides a command: the events it causes, or why it is refused. `now` is the recording time.
pub fn decide(
    state: State<'_>,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    match (command.action.circulation(), state.circulation) {
        (None, _) => body::decide(state.body, command, now),
        (Some(_), Some(circulation)) => circulation::decide(state.body, circulation, command, now),
        (Some(_), None) => circulation::decide(state.body, &Circulation::default(), command, now),
    }
}
