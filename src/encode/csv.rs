//! CSV (and, with `delimiter = b'|'`, Luminesce's pipe format) through Arrow's CSV writer.
//!
//! Columns whose text is not Arrow's display of them (nested values as JSON, dates under
//! `datetime_format`) are first turned into text by [`super::value`], so CSV prints exactly what
//! every other text format prints; the rest go to Arrow's writer as they are, which formats them
//! with the same display formatter without building strings first. Arrow's writer then does the
//! quoting, escaping, header and line endings.

use arrow::csv::writer::{Terminator, Writer, WriterBuilder};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;

use super::value::{empty_text_batch, is_display_text, json_encoder_options, text_batch};
use super::{EncodeError, EncodeOptions, Encoder, LineEnding, Sink};

/// One field of a record written by hand (AsterixDB's records, Kylin's result files): quoted when
/// it holds the separator, a quote, CR or LF, with its quotes doubled; otherwise as it is.
pub fn quoted_field<'a>(text: &'a str, separator: &str) -> std::borrow::Cow<'a, str> {
    let needs_quotes =
        text.contains(['"', '\r', '\n']) || (!separator.is_empty() && text.contains(separator));
    if needs_quotes {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

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

impl CsvEncoder {
    /// `batch` with only the columns Arrow would print differently turned into text.
    fn printable(&self, batch: &RecordBatch) -> Result<RecordBatch, EncodeError> {
        let schema = batch.schema_ref();
        let to_text: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| !is_display_text(schema.field(i).data_type(), &self.options))
            .collect();
        if to_text.is_empty() {
            return Ok(batch.clone());
        }
        let text = text_batch(&batch.project(&to_text)?, &self.options, &self.json_options)?;
        let mut texts = text.columns().iter();
        let mut fields = Vec::with_capacity(batch.num_columns());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (i, field) in schema.fields().iter().enumerate() {
            if to_text.contains(&i) {
                fields.push(Arc::new(Field::new(field.name(), DataType::Utf8, true)));
                columns.extend(texts.next().cloned());
            } else {
                fields.push(field.clone());
                columns.push(batch.column(i).clone());
            }
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }
}

impl Encoder for CsvEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let text = self.printable(batch)?;
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
