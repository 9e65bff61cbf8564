//! The one error type of every layer. Each dialect maps it to its own wire error in one function.

use std::fmt;

use datafusion::error::DataFusionError;

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

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        classify_error(e)
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError::new(ErrorKind::Execution, e.to_string())
    }
}

/// Maps a DataFusion error to the engine's kinds, unwrapping the layers DataFusion adds so that the
/// message is the one that matters (for `pq_fail('boom')`, exactly `boom`).
pub fn classify_error(e: DataFusionError) -> EngineError {
    classify(&e)
}

fn classify(e: &DataFusionError) -> EngineError {
    use DataFusionError as D;
    match e {
        D::SQL(p, _) => EngineError::new(ErrorKind::Syntax, syntax_message(&p.to_string())),
        D::Plan(m) => EngineError::new(ErrorKind::Plan, m.clone()),
        D::SchemaError(..) => EngineError::new(ErrorKind::Plan, strip(&e.to_string())),
        D::Execution(m) => EngineError::new(ErrorKind::Execution, m.clone()),
        // A correlated subquery (an APPLY, a LATERAL join) the optimizer could not turn into a
        // join reaches the physical planner with its outer reference still in it.
        D::NotImplemented(m) if m.contains("OuterReferenceColumn") => EngineError::new(
            ErrorKind::Unsupported,
            "a correlated subquery (APPLY or LATERAL) is run here only when it is correlated by equalities in its WHERE",
        ),
        D::NotImplemented(m) => EngineError::new(ErrorKind::Unsupported, m.clone()),
        D::ResourcesExhausted(m) => EngineError::new(ErrorKind::Limit, m.clone()),
        D::Context(_, inner) => classify(inner),
        D::Shared(inner) => classify(inner),
        D::Diagnostic(_, inner) => classify(inner),
        D::Collection(all) => all
            .first()
            .map(classify)
            .unwrap_or_else(|| EngineError::internal("unknown error")),
        D::External(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(d) => classify(d),
            None => match inner.downcast_ref::<EngineError>() {
                Some(e) => e.clone(),
                None => EngineError::new(ErrorKind::Execution, inner.to_string()),
            },
        },
        D::ArrowError(inner, _) => match inner.as_ref() {
            datafusion::arrow::error::ArrowError::ExternalError(x) => {
                match x.downcast_ref::<DataFusionError>() {
                    Some(d) => classify(d),
                    None => EngineError::new(ErrorKind::Execution, x.to_string()),
                }
            }
            other => EngineError::new(ErrorKind::Execution, other.to_string()),
        },
        other => EngineError::new(ErrorKind::Internal, strip(&other.to_string())),
    }
}

/// Drops DataFusion's "Schema error: "-style prefixes and any backtrace.
fn strip(message: &str) -> String {
    let message = message.split("\n\nbacktrace").next().unwrap_or(message);
    match message.split_once(": ") {
        Some((prefix, rest)) if prefix.ends_with("error") || prefix.ends_with("Error") => {
            rest.to_string()
        }
        _ => message.to_string(),
    }
}

/// sqlparser prefixes its messages; clients want the message itself.
pub fn syntax_message(raw: &str) -> String {
    raw.trim_start_matches("sql parser error: ").to_string()
}

/// The text a panic was raised with, when it has one (for the error that reports it).
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
