//! JSON (one array of row objects) and NDJSON (one row object per line) through Arrow's JSON
//! writer: numbers stay numbers, decimals keep their exact digits, nested values become objects
//! and arrays, nulls are written as `null`.

use std::io::Write;

use arrow::json::writer::{JsonArray, JsonFormat, LineDelimited, Writer, WriterBuilder};
use arrow::record_batch::RecordBatch;

use super::value::temporal_json_factory;
use super::{EncodeError, EncodeOptions, Encoder, Sink};

/// Writes rows as JSON objects, framed as an array (`F = JsonArray`) or as lines
/// (`F = LineDelimited`).
pub struct JsonEncoder<F: JsonFormat> {
    writer: Writer<Sink, F>,
}

impl JsonEncoder<JsonArray> {
    /// `[{"a":1},{"a":2}]`; a result without rows is `[]`.
    pub fn array(options: &EncodeOptions, sink: Sink) -> Self {
        JsonEncoder {
            writer: builder(options).build(sink),
        }
    }
}

impl JsonEncoder<LineDelimited> {
    /// `{"a":1}\n{"a":2}\n`; a result without rows is empty.
    pub fn lines(options: &EncodeOptions, sink: Sink) -> Self {
        JsonEncoder {
            writer: builder(options).build(sink),
        }
    }
}

fn builder(options: &EncodeOptions) -> WriterBuilder {
    let builder = WriterBuilder::new().with_explicit_nulls(true);
    match temporal_json_factory(options) {
        Some(factory) => builder.with_encoder_factory(factory),
        None => builder,
    }
}

impl<F: JsonFormat + Send> Encoder for JsonEncoder<F> {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.writer.write(batch)?;
        self.writer.get_mut().flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        self.writer.finish()?;
        self.writer.get_mut().flush()?;
        Ok(())
    }
}
