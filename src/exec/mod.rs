//! Executors run SQL. The default is DataFusion in-process over the fixtures and the user's tables;
//! other engines plug in behind the same trait, and the job engine never knows which one ran a query.

pub mod calcite_time;
pub mod catalog;
pub mod datafusion;
pub mod fixtures;
pub mod functions;
pub mod in_order;
pub mod sqlite_functions;
pub mod sqlpp_functions;
pub mod testing_provider;
mod yielding;

use std::path::PathBuf;
use std::sync::Arc;

use ::datafusion::arrow::datatypes::SchemaRef;
use ::datafusion::arrow::record_batch::RecordBatch;
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

    /// Runs `sql` over one stored result, which it sees as the table `table` and nothing else (a
    /// reshape of a finished job: a client's select, filter, sort and page).
    fn execute_over<'a>(
        &'a self,
        sql: &'a str,
        table: &'a str,
        source: StoredResult,
    ) -> BoxFuture<'a, Result<SendableRecordBatchStream, EngineError>>;

    /// What `sql` (with `params` bound) is once planned, without running it.
    fn describe<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> BoxFuture<'a, Result<Described, EngineError>>;

    /// The tables this executor serves.
    fn catalog(&self) -> &Catalog;
}

/// A statement as planned.
#[derive(Clone, Debug)]
pub struct Described {
    /// The tables it reads (names as registered; CTEs, aliases and subqueries resolved away):
    /// what a wire that scopes tables checks.
    pub tables: Vec<String>,
    /// The columns of its result.
    pub schema: SchemaRef,
}

/// A stored result as a query can read it: batches held in memory, or its Arrow IPC file.
pub enum StoredResult {
    Memory {
        schema: SchemaRef,
        batches: Arc<Vec<RecordBatch>>,
    },
    ArrowFile {
        schema: SchemaRef,
        path: PathBuf,
    },
}
