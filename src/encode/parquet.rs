//! Apache Parquet through the parquet crate's Arrow writer, Snappy-compressed. Each batch
//! becomes one row group written out at once, so memory holds one batch, not the result.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{EncodeError, Encoder, Sink};

/// Writes a Parquet file: one row group per non-empty batch, the footer at `finish`.
pub struct ParquetEncoder {
    writer: ArrowWriter<Sink>,
}

impl ParquetEncoder {
    pub fn new(schema: SchemaRef, sink: Sink) -> Result<Self, EncodeError> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        Ok(ParquetEncoder {
            writer: ArrowWriter::try_new(sink, schema, Some(properties))?,
        })
    }
}

impl Encoder for ParquetEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.writer.write(batch)?;
        // Close the row group now rather than buffering rows towards the default group size.
        self.writer.flush()?;
        self.writer.sync()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), EncodeError> {
        let mut sink = self.writer.into_inner()?;
        sink.flush()?;
        Ok(())
    }
}
