//! What a job is: the request that made it (`JobSpec`) and what has happened to it since (`JobRecord`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use super::id::JobId;
use super::state::JobState;
use crate::query::{EngineError, JobSpec};

/// One line of a job's human-readable progress log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(with = "crate::query::rfc3339")]
    pub at: DateTime<Utc>,
    pub message: String,
}

/// Everything that has happened to a job. Persisted as JSON in the data directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub spec: JobSpec,
    pub state: JobState,
    #[serde(with = "crate::query::rfc3339")]
    pub created: DateTime<Utc>,
    #[serde(with = "crate::query::rfc3339::option")]
    pub started: Option<DateTime<Utc>>,
    #[serde(with = "crate::query::rfc3339::option")]
    pub finished: Option<DateTime<Utc>>,
    /// Rows produced so far (the final count once succeeded).
    pub rows: u64,
    /// Set when the job succeeded: the result's row count.
    pub row_count: Option<u64>,
    /// Set when the job failed, was cancelled or timed out.
    pub error: Option<EngineError>,
    pub log: Vec<LogEntry>,
    /// Per reader, how many log entries it has already been given (incremental feedback).
    #[serde(default)]
    pub feedback_seen: HashMap<String, usize>,
    /// Which run of the job this is: 0, then one more each time a survivor re-runs the job of an
    /// instance that died (cluster mode).
    #[serde(default)]
    pub attempt: u32,
    /// The instance running it (cluster mode), so that survivors can tell when its owner is gone.
    #[serde(default)]
    pub instance: Option<String>,
    /// The result's schema once known (not persisted: re-read from the result file).
    #[serde(skip)]
    pub schema: Option<SchemaRef>,
}

impl JobRecord {
    pub fn new(id: JobId, spec: JobSpec, now: DateTime<Utc>) -> Self {
        JobRecord {
            id,
            spec,
            state: JobState::Queued,
            created: now,
            started: None,
            finished: None,
            rows: 0,
            row_count: None,
            error: None,
            log: vec![LogEntry {
                at: now,
                message: "Query queued".into(),
            }],
            feedback_seen: HashMap::new(),
            attempt: 0,
            instance: None,
            schema: None,
        }
    }

    pub fn note(&mut self, message: impl Into<String>) {
        self.log.push(LogEntry {
            at: Utc::now(),
            message: message.into(),
        });
    }

    /// When a finished job expires; `None` while it is not finished.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        let keep =
            chrono::Duration::from_std(self.spec.limits.keep_for).unwrap_or(chrono::Duration::MAX);
        self.finished.and_then(|f| {
            f.checked_add_signed(keep)
                .or(Some(DateTime::<Utc>::MAX_UTC))
        })
    }

    /// The error a job that did not succeed ended with (a record always carries one; this never
    /// leaves a caller without an answer if it does not).
    pub fn end_error(&self) -> EngineError {
        self.error
            .clone()
            .unwrap_or_else(|| EngineError::internal("the job ended without a result"))
    }

    /// The whole log as text, one timestamped line per entry.
    pub fn log_text(&self) -> String {
        self.log
            .iter()
            .map(|e| format!("{} {}", e.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"), e.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// chrono's serde feature would rebuild all of Arrow and DataFusion with it; two small adapters do.
