//! Faults injected into jobs by the control plane's rules (see `crate::control`). The engine only
//! applies them, so every wire sees a delayed, failed, held or early-expiring job the same way.

use std::time::Duration;

use crate::query::{EngineError, JobSpec};

/// What happens to one job, decided once when it is submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFault {
    /// The rule that decided it, for the job's log.
    pub rule: String,
    /// Time the job spends running before its query starts (cancel and its timeout still apply).
    pub latency: Option<Duration>,
    /// The job fails with this error (after the latency) instead of running its query.
    pub fail: Option<EngineError>,
    /// Status polls that still see the job running after its result is complete.
    pub not_ready_polls: u32,
    /// The job expires this long after it ends, whatever its wire asked for.
    pub expire_after: Option<Duration>,
}

impl JobFault {
    /// One line for the job's log.
    pub fn describe(&self) -> String {
        let mut acts = Vec::new();
        if let Some(l) = self.latency {
            acts.push(format!("latency {} ms", l.as_millis()));
        }
        if let Some(e) = &self.fail {
            acts.push(format!("fail ({:?}: {})", e.kind, e.message));
        }
        if self.not_ready_polls > 0 {
            acts.push(format!("not ready for {} polls", self.not_ready_polls));
        }
        if let Some(e) = self.expire_after {
            acts.push(format!("expire {} ms after it ends", e.as_millis()));
        }
        format!("Fault rule {}: {}", self.rule, acts.join(", "))
    }
}

/// Decides a job's fault when it is submitted; the control plane's rule set implements it.
pub trait FaultSource: Send + Sync + 'static {
    fn job_fault(&self, spec: &JobSpec) -> Option<JobFault>;
}

/// A job held back by `not_ready_polls`: polls seen, and the finish waiting for the last one.
#[derive(Default)]
pub(super) struct Hold {
    pub needed: u32,
    pub seen: u32,
    /// Set once the result is complete: its row count and the log line of its finish.
    pub parked: Option<(u64, String)>,
}
