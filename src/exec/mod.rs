//! Executors run SQL. The default is DataFusion in-process over the fixtures and the user's tables;
//! other engines plug in behind the same trait, and the job engine never knows which one ran a query.

pub mod catalog;
pub mod datafusion;
pub mod fixtures;
pub mod functions;
pub mod reshape;
pub mod testing_provider;

use ::datafusion::error::DataFusionError;
use ::datafusion::execution::SendableRecordBatchStream;
use futures::future::BoxFuture;

pub use catalog::Catalog;

use crate::engine::{EngineError, ErrorKind, Params};

/// Something that runs SQL and streams back Arrow batches.
pub trait Executor: Send + Sync + 'static {
    /// Checks that `sql` is one read-only query this executor can parse, without running it.
    fn check(&self, sql: &str) -> Result<(), EngineError>;

    /// Plans and starts `sql` with `params` bound, and answers its batch stream.
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> BoxFuture<'a, Result<SendableRecordBatchStream, EngineError>>;

    /// The tables this executor serves.
    fn catalog(&self) -> &Catalog;
}

/// Maps a DataFusion error to the engine's kinds, unwrapping the layers DataFusion adds so that the
/// message is the one that matters (for `pq_fail('boom')`, exactly `boom`).
pub fn classify_error(e: DataFusionError) -> EngineError {
    classify(&e)
}

fn classify(e: &DataFusionError) -> EngineError {
    use DataFusionError as D;
    match e {
        D::SQL(p, _) => EngineError::new(
            ErrorKind::Syntax,
            crate::sql::syntax_message(&p.to_string()),
        ),
        D::Plan(m) => EngineError::new(ErrorKind::Plan, m.clone()),
        D::SchemaError(..) => EngineError::new(ErrorKind::Plan, strip(&e.to_string())),
        D::Execution(m) => EngineError::new(ErrorKind::Execution, m.clone()),
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
            None => EngineError::new(ErrorKind::Execution, inner.to_string()),
        },
        D::ArrowError(inner, _) => match inner.as_ref() {
            ::datafusion::arrow::error::ArrowError::ExternalError(x) => {
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
