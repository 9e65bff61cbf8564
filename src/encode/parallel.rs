//! Order-preserving parallel encoding of the formats whose batches encode independently (CSV,
//! NDJSON, JSON): each batch after the first is encoded into bytes of its own on a blocking thread
//! of the runtime, a few at once, and the bytes are written to the sink in batch order. The output
//! is byte for byte what the one-thread encoder writes.
//!
//! Memory stays bounded: at most [`in_flight`] batches and their encodings are held at a time;
//! past that, `write_batch` waits for the oldest. The first batch is encoded on the caller's
//! thread, so a one-batch result (a `SELECT 1`) costs no thread hand-off.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{EncodeError, EncodeOptions, Encoder, Format, Sink, csv, json};

/// Whether `format`'s batches encode independently of each other.
pub fn splits(format: Format) -> bool {
    matches!(format, Format::Csv | Format::NdJson | Format::Json)
}

/// Batches encoded at once: one per core, and one more so a core never waits for the writer.
pub fn in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() + 1)
}

/// Encodes batches of a [`splits`] format on the runtime's blocking threads, writing in order.
pub struct ParallelEncoder {
    format: Format,
    /// The options of the first batch, and of the rest (no CSV header).
    first: Arc<EncodeOptions>,
    rest: Arc<EncodeOptions>,
    schema: SchemaRef,
    sink: Sink,
    runtime: tokio::runtime::Handle,
    pending: VecDeque<mpsc::Receiver<Result<Vec<u8>, EncodeError>>>,
    batches: u64,
    /// JSON only: whether the array's `[` and a first row were written.
    opened: bool,
}

impl ParallelEncoder {
    /// A parallel encoder when `format` splits and a runtime is at hand; else the sink back.
    pub fn new(
        format: Format,
        options: &EncodeOptions,
        schema: SchemaRef,
        sink: Sink,
    ) -> Result<ParallelEncoder, Sink> {
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if splits(format) => runtime,
            _ => return Err(sink),
        };
        let rest = EncodeOptions {
            header: false,
            ..options.clone()
        };
        Ok(ParallelEncoder {
            format,
            first: Arc::new(options.clone()),
            rest: Arc::new(rest),
            schema,
            sink,
            runtime,
            pending: VecDeque::new(),
            batches: 0,
            opened: false,
        })
    }

    /// Writes the oldest encoding in flight.
    fn write_oldest(&mut self) -> Result<(), EncodeError> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let part = rx.recv().map_err(|_| {
            EncodeError::Unsupported("encoding a batch failed on its thread".to_string())
        })??;
        self.write_part(&part)
    }

    /// Writes one batch's bytes: as they are, or (JSON) as array elements.
    fn write_part(&mut self, part: &[u8]) -> Result<(), EncodeError> {
        if self.format == Format::Json {
            let Some(rows) = part.strip_suffix(b"\n") else {
                return Ok(()); // a batch without rows
            };
            self.sink.write_all(if self.opened { b"," } else { b"[" })?;
            self.opened = true;
            // NDJSON escapes line breaks inside values, so every raw `\n` ends a row.
            let elements: Vec<u8> = rows
                .iter()
                .map(|&b| if b == b'\n' { b',' } else { b })
                .collect();
            self.sink.write_all(&elements)?;
        } else {
            self.sink.write_all(part)?;
        }
        // The one-thread encoders flush after every batch; so does this, for streamed bodies.
        self.sink.flush()?;
        Ok(())
    }
}

/// One batch's bytes: CSV rows (after the header when `options` asks for one), or NDJSON lines
/// (which JSON arrays are made of).
fn encode_part(
    format: Format,
    options: &EncodeOptions,
    schema: SchemaRef,
    batch: &RecordBatch,
) -> Result<Vec<u8>, EncodeError> {
    let buffer = SharedBuffer::default();
    let sink: Sink = Box::new(buffer.clone());
    let mut encoder: Box<dyn Encoder> = match format {
        Format::Csv => Box::new(csv::CsvEncoder::new(options, schema, sink)),
        _ => Box::new(json::JsonEncoder::lines(options, sink)),
    };
    encoder.write_batch(batch)?;
    encoder.finish()?;
    Ok(buffer.take())
}

impl Encoder for ParallelEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.batches += 1;
        if self.batches == 1 {
            let part = encode_part(self.format, &self.first, self.schema.clone(), batch)?;
            return self.write_part(&part);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let (format, options, schema, batch) = (
            self.format,
            self.rest.clone(),
            self.schema.clone(),
            batch.clone(),
        );
        self.runtime.spawn_blocking(move || {
            let _ = tx.send(encode_part(format, &options, schema, &batch));
        });
        self.pending.push_back(rx);
        while self.pending.len() >= in_flight() {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        match self.format {
            Format::Json => {
                self.sink
                    .write_all(if self.opened { b"]" } else { b"[]" })?;
            }
            Format::Csv if self.batches == 0 => {
                // A result without rows: the one-thread encoder writes its header line.
                let sink = std::mem::replace(&mut self.sink, Box::new(std::io::sink()));
                Box::new(csv::CsvEncoder::new(&self.first, self.schema.clone(), sink)).finish()?;
            }
            _ => {}
        }
        self.sink.flush()?;
        Ok(())
    }
}

/// A byte buffer the encoders write into and the caller takes back.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
