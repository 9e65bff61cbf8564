//! Runs a reshaping query over a stored result, in a small session of its own.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;

use super::classify_error;
use crate::engine::{EngineError, ResultReader};
use crate::sql::reshape::{RESULT_TABLE, Reshape};

/// Runs `reshape` over a finished result: from memory when it is cached there, else straight from its
/// Arrow IPC file, so a large result is never loaded whole.
pub async fn run(
    reader: ResultReader,
    path: PathBuf,
    reshape: &Reshape,
) -> Result<SendableRecordBatchStream, EngineError> {
    let schema = reader.schema();
    let sql = reshape.to_sql(&schema)?;
    let ctx = SessionContext::new_with_config(super::datafusion::session_config(1));
    match reader {
        ResultReader::Memory { batches, .. } => {
            let table = MemTable::try_new(schema, vec![batches.as_ref().clone()])
                .map_err(classify_error)?;
            ctx.register_table(RESULT_TABLE, Arc::new(table))
                .map_err(classify_error)?;
        }
        ResultReader::File(_) => {
            let path = path.to_string_lossy().to_string();
            ctx.register_arrow(RESULT_TABLE, &path, ArrowReadOptions::default())
                .await
                .map_err(classify_error)?;
        }
    }
    let frame = ctx.sql(&sql).await.map_err(classify_error)?;
    frame.execute_stream().await.map_err(classify_error)
}
