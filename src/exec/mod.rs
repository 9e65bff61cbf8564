//! Executors run SQL. The default is DataFusion in-process over the fixtures and the user's tables;
//! other engines plug in behind the same trait, and the job engine never knows which one ran a query.

pub mod calcite_time;
pub mod catalog;
pub mod datafusion;
pub mod fixtures;
pub mod functions;
pub mod reshape;
pub mod testing_provider;

use ::datafusion::execution::SendableRecordBatchStream;
use futures::future::BoxFuture;

pub use catalog::Catalog;

pub use crate::query::classify_error;
use crate::query::{EngineError, Params};

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
