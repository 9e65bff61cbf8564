//! Arrow IPC in the *stream* format (schema message, one message per batch, end marker), which a
//! reader can consume as it arrives; the file format would need a seekable sink.

use std::io::BufWriter;

use arrow::datatypes::Schema;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use super::{EncodeError, Encoder, Sink};

/// Writes an Arrow IPC stream, each batch flushed to the sink as it is written.
pub struct ArrowIpcEncoder {
    writer: StreamWriter<BufWriter<Sink>>,
}

impl ArrowIpcEncoder {
    pub fn new(schema: &Schema, sink: Sink) -> Result<Self, EncodeError> {
        Ok(ArrowIpcEncoder {
            writer: StreamWriter::try_new_buffered(sink, schema)?,
        })
    }
}

impl Encoder for ArrowIpcEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.writer.write(batch)?;
        self.writer.flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        // `finish` writes the end-of-stream marker and flushes.
        self.writer.finish()?;
        Ok(())
    }
}
