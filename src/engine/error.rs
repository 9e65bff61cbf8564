//! The engine's one error type. Each dialect maps it to its own wire error in one function.

use std::fmt;

/// What went wrong, in terms every wire can map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The SQL does not parse.
    Syntax,
    /// The SQL parses but does not plan: unknown table, column or function, type mismatch.
    Plan,
    /// The query failed while running.
    Execution,
    /// A statement polyquery does not run (DDL, DML, several statements).
    Unsupported,
    /// The queue is full; try again later.
    Busy,
    /// No such job (never existed, expired, or belongs to someone else).
    NotFound,
    /// The job has not finished yet.
    NotReady,
    /// The job was cancelled.
    Cancelled,
    /// The job ran past its timeout.
    TimedOut,
    /// A configured limit (result budget, row limit) was exceeded.
    Limit,
    /// The job was running when the server stopped.
    Interrupted,
    /// A fault in polyquery itself (I/O on the data directory and the like).
    Internal,
}

/// An engine error: its kind plus a message meant for the client.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
        }
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        EngineError::new(ErrorKind::Internal, message.to_string())
    }

    pub fn not_found() -> Self {
        EngineError::new(ErrorKind::NotFound, "no such job")
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::internal(e)
    }
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        crate::exec::classify_error(e)
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError::new(ErrorKind::Execution, e.to_string())
    }
}
