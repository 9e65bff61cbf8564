//! Runs a reshaping query over a stored result, in a small session of its own.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;

use super::classify_error;
use crate::query::EngineError;
use crate::sql::reshape::{RESULT_TABLE, Reshape};

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

impl StoredResult {
    pub fn schema(&self) -> SchemaRef {
        match self {
            StoredResult::Memory { schema, .. } | StoredResult::ArrowFile { schema, .. } => {
                schema.clone()
            }
        }
    }
}

/// Runs `reshape` over a finished result: from memory when it is cached there, else straight from its
/// Arrow IPC file, so a large result is never loaded whole.
pub async fn run(
    source: StoredResult,
    reshape: &Reshape,
) -> Result<SendableRecordBatchStream, EngineError> {
    let schema = source.schema();
    let sql = reshape.to_sql(&schema)?;
    let ctx = SessionContext::new_with_config(super::datafusion::session_config(1));
    match source {
        StoredResult::Memory { batches, .. } => {
            let table = MemTable::try_new(schema, vec![batches.as_ref().clone()])
                .map_err(classify_error)?;
            ctx.register_table(RESULT_TABLE, Arc::new(table))
                .map_err(classify_error)?;
        }
        StoredResult::ArrowFile { path, .. } => {
            let path = path.to_string_lossy().to_string();
            ctx.register_arrow(RESULT_TABLE, &path, ArrowReadOptions::default())
                .await
                .map_err(classify_error)?;
        }
    }
    let frame = ctx.sql(&sql).await.map_err(classify_error)?;
    frame.execute_stream().await.map_err(classify_error)
}
