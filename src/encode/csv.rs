//! CSV (and, with `delimiter = b'|'`, Luminesce's pipe format) through Arrow's CSV writer.
//!
//! Cells are first turned into their display text by [`super::value`], so CSV prints exactly
//! what every other text format prints (nested values as JSON, `datetime_format`); Arrow's writer
//! then does the quoting, escaping, header and line endings.

use arrow::csv::writer::{Terminator, Writer, WriterBuilder};
use arrow::datatypes::SchemaRef;
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;

use super::value::{empty_text_batch, json_encoder_options, text_batch};
use super::{EncodeError, EncodeOptions, Encoder, LineEnding, Sink};

/// Writes rows as delimited text, one batch at a time.
pub struct CsvEncoder {
    writer: Writer<Sink>,
    options: EncodeOptions,
    json_options: EncoderOptions,
    schema: SchemaRef,
    wrote_batch: bool,
}

impl CsvEncoder {
    pub fn new(options: &EncodeOptions, schema: SchemaRef, sink: Sink) -> Self {
        let builder = WriterBuilder::new()
            .with_delimiter(options.delimiter)
            .with_quote(options.quote)
            .with_header(options.header)
            .with_null(options.null_text.clone())
            .with_line_terminator(match options.line_ending {
                LineEnding::Lf => Terminator::Any(b'\n'),
                LineEnding::CrLf => Terminator::CRLF,
            });
        let builder = match options.escape {
            None => builder.with_double_quote(true),
            Some(escape) => builder.with_escape(escape).with_double_quote(false),
        };
        CsvEncoder {
            writer: builder.build(sink),
            options: options.clone(),
            json_options: json_encoder_options(options),
            schema,
            wrote_batch: false,
        }
    }
}

impl Encoder for CsvEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let text = text_batch(batch, &self.options, &self.json_options)?;
        // Arrow's writer flushes the sink after every batch.
        self.writer.write(&text)?;
        self.wrote_batch = true;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        if !self.wrote_batch {
            // A result without rows still gets its header line.
            self.writer.write(&empty_text_batch(&self.schema))?;
        }
        // Every write above flushed; dropping the writer releases the sink without the panic
        // `Writer::into_inner` has on a failing flush.
        Ok(())
    }
}
