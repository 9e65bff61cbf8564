//! Placeholder until the encoders land (the API other modules build against).

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// Output formats polyquery can write from Arrow batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    NdJson,
    Xml,
    Parquet,
    ArrowIpc,
    Xlsx,
    Sqlite,
    Html,
    Markdown,
    Text,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" => Format::NdJson,
            _ => return None,
        })
    }
}

/// Encoder knobs.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(String);

pub trait Encoder: Send {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError>;
    fn finish(self: Box<Self>) -> Result<(), EncodeError>;
}

pub fn encoder(
    _format: Format,
    _options: &EncodeOptions,
    _schema: SchemaRef,
    _sink: Box<dyn Write + Send>,
) -> Result<Box<dyn Encoder>, EncodeError> {
    Err(EncodeError("encoders are not built yet".into()))
}
