//! The job state machine. Every state change goes through [`JobState::apply`]; nothing else writes a
//! job's state, so an illegal transition cannot happen.

use serde::{Deserialize, Serialize};

/// Where a job is in its life. Expiry is not a state: an expired job is gone (unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

/// What can happen to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// A worker picked it up.
    Start,
    /// Its result is complete.
    Finish,
    /// It failed (planning, execution, or interrupted by a restart).
    Fail,
    /// A client cancelled it.
    Cancel,
    /// It ran past its timeout.
    TimeOut,
}

/// A transition the state machine refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from:?} job cannot take the event {event:?}")]
pub struct IllegalTransition {
    pub from: JobState,
    pub event: JobEvent,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::TimedOut,
    ];

    /// The one transition function: queued → running → succeeded | failed | cancelled | timed out,
    /// and a queued job may also fail or be cancelled before it starts.
    pub fn apply(self, event: JobEvent) -> Result<JobState, IllegalTransition> {
        use JobEvent::*;
        use JobState::*;
        match (self, event) {
            (Queued, Start) => Ok(Running),
            (Running, Finish) => Ok(Succeeded),
            (Queued | Running, Fail) => Ok(Failed),
            (Queued | Running, Cancel) => Ok(Cancelled),
            (Running, TimeOut) => Ok(TimedOut),
            (from, event) => Err(IllegalTransition { from, event }),
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::TimedOut => "timed_out",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [JobEvent; 5] = [
        JobEvent::Start,
        JobEvent::Finish,
        JobEvent::Fail,
        JobEvent::Cancel,
        JobEvent::TimeOut,
    ];

    #[test]
    fn every_pair_of_state_and_event_is_decided() {
        use JobEvent::*;
        use JobState::*;
        let legal = [
            (Queued, Start, Running),
            (Queued, Fail, Failed),
            (Queued, Cancel, Cancelled),
            (Running, Finish, Succeeded),
            (Running, Fail, Failed),
            (Running, Cancel, Cancelled),
            (Running, TimeOut, TimedOut),
        ];
        for from in JobState::ALL {
            for event in EVENTS {
                let expected = legal
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|t| t.2);
                assert_eq!(from.apply(event).ok(), expected, "{from:?} + {event:?}");
            }
        }
    }

    #[test]
    fn terminal_states_take_no_event() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                assert!(from.apply(event).is_err());
            }
        }
    }
}
