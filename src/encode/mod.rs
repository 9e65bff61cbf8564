//! Result encoders: Arrow record batches in, one output format's bytes out.
//!
//! Every format is an [`Encoder`] made by [`encoder`]: the caller feeds it the result's batches in
//! order with [`Encoder::write_batch`] and ends with [`Encoder::finish`]. Formats that can stream
//! (CSV, JSON, NDJSON, XML, HTML, Markdown, text, Arrow IPC, Parquet) write each batch's bytes to the
//! sink as it arrives; XLSX and SQLite build their file on disk and copy it to the sink at `finish`.
//! Inside a Tokio runtime, CSV, NDJSON and JSON encode several batches at once and write them in
//! order ([`parallel`]).
//!
//! Cell formatting lives in one place, [`value`]: [`cell_text`] and [`cell_json`] are what every
//! text and JSON format writes, and what a dialect uses for layouts of its own.
//!
//! Rendering rules shared by all formats:
//! - integers stay integers, floats stay floats, decimals keep their exact digits;
//! - dates print `2024-01-02`, timestamps `2024-01-02T03:04:05` (a fraction only when nonzero),
//!   timestamps with a time zone in that zone with its offset (`Z` for UTC), unless
//!   [`EncodeOptions::datetime_format`] asks otherwise in a text or JSON format;
//! - nested values (struct, list, map) are JSON objects/arrays in JSON and JSON text elsewhere;
//! - a null is JSON `null`, an absent XML element, an empty XLSX cell, SQLite `NULL`, and
//!   [`EncodeOptions::null_text`] in CSV, HTML, Markdown and text.

pub mod arrow_ipc;
pub mod csv;
pub mod json;
pub mod parallel;
pub mod parquet;
pub mod sqlite;
pub mod text;
pub mod value;
pub mod xlsx;
pub mod xml;

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

pub use value::{cell_json, cell_text};

/// Output formats polyquery can write from Arrow batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// RFC 4180 CSV; any single-byte delimiter, so also Luminesce's pipe format.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// Newline-delimited JSON: one row object per line.
    NdJson,
    /// An XML document: a root element holding one `<row>` element per row.
    Xml,
    /// An Apache Parquet file.
    Parquet,
    /// An Arrow IPC stream (the streaming format, not the file format).
    ArrowIpc,
    /// An Excel workbook with one sheet.
    Xlsx,
    /// An SQLite database file with one table.
    Sqlite,
    /// An HTML `<table>`.
    Html,
    /// A Markdown (GitHub-flavoured) table.
    Markdown,
    /// Tab-separated text with a header line.
    Text,
}

impl Format {
    /// Every format, in the order the names are listed by [`Format::name`].
    pub const ALL: [Format; 11] = [
        Format::Csv,
        Format::Json,
        Format::NdJson,
        Format::Xml,
        Format::Parquet,
        Format::ArrowIpc,
        Format::Xlsx,
        Format::Sqlite,
        Format::Html,
        Format::Markdown,
        Format::Text,
    ];

    /// The format with this lowercase name (`csv json ndjson xml parquet arrow xlsx sqlite html md txt`).
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The format's lowercase name, the one [`Format::parse`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::NdJson => "ndjson",
            Format::Xml => "xml",
            Format::Parquet => "parquet",
            Format::ArrowIpc => "arrow",
            Format::Xlsx => "xlsx",
            Format::Sqlite => "sqlite",
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Text => "txt",
        }
    }

    /// The media type of the encoded bytes; `text/*` types name their UTF-8 charset.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::NdJson => "application/x-ndjson",
            Format::Xml => "application/xml",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::ArrowIpc => "application/vnd.apache.arrow.stream",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Sqlite => "application/vnd.sqlite3",
            Format::Html => "text/html; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Text => "text/plain; charset=utf-8",
        }
    }

    /// The file-name extension, without the dot.
    pub fn extension(self) -> &'static str {
        self.name()
    }
}

/// How lines end in the line-oriented text formats (CSV, Markdown, text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`
    #[default]
    Lf,
    /// `\r\n`
    CrLf,
}

impl LineEnding {
    /// The line ending's characters.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// Knobs a dialect may set; `Default` gives plain RFC 4180 CSV with a header, LF line endings and
/// ISO-8601 dates and timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// CSV field separator: `,` by default, `|` for Luminesce's pipe format.
    pub delimiter: u8,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape for a quote inside a quoted field: `None` doubles the quote (RFC 4180),
    /// `Some(b'\\')` writes `\"`.
    pub escape: Option<u8>,
    /// Whether CSV, text, HTML and XLSX start with a row of column names. Markdown always has
    /// one, since a Markdown table cannot exist without it.
    pub header: bool,
    /// Line ending of CSV, Markdown and text.
    pub line_ending: LineEnding,
    /// How a null prints in CSV, HTML, Markdown and text.
    pub null_text: String,
    /// A chrono strftime pattern for date and timestamp cells in the text and JSON formats;
    /// `None` means ISO-8601. Dates are formatted as midnight of their day, so one pattern such
    /// as `%Y-%m-%d %H:%M:%S` serves both. XLSX keeps native date cells and SQLite ISO-8601 text.
    pub datetime_format: Option<String>,
    /// Name of the XLSX sheet.
    pub sheet_name: String,
    /// Name of the SQLite table and the HTML table's caption (no caption when empty).
    pub table_name: String,
    /// Name of the XML document element. Each row is a `<row>` child of it holding one element
    /// per non-null column, named after the column (made XML-safe); a null column is left out.
    pub xml_root: String,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            delimiter: b',',
            quote: b'"',
            escape: None,
            header: true,
            line_ending: LineEnding::Lf,
            null_text: String::new(),
            datetime_format: None,
            sheet_name: "Sheet1".to_string(),
            table_name: "results".to_string(),
            xml_root: "results".to_string(),
        }
    }
}

impl EncodeOptions {
    /// Rejects option values no format could honour, so a dialect can check request parameters
    /// before it starts a response. [`encoder`] calls this too.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let line_bytes = [b'\r', b'\n'];
        if line_bytes.contains(&self.delimiter) || line_bytes.contains(&self.quote) {
            return Err(EncodeError::Unsupported(
                "a CSV delimiter or quote cannot be a line break".to_string(),
            ));
        }
        if self.delimiter == self.quote || self.escape == Some(self.delimiter) {
            return Err(EncodeError::Unsupported(format!(
                "the CSV delimiter {:?} must differ from the quote and escape characters",
                char::from(self.delimiter)
            )));
        }
        if let Some(pattern) = &self.datetime_format {
            value::check_datetime_format(pattern)?;
        }
        Ok(())
    }
}

/// Why encoding failed: the sink, Arrow, a format library, or an option no format can honour.
#[derive(thiserror::Error, Debug)]
pub enum EncodeError {
    #[error("writing the encoded result failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding Arrow data failed: {0}")]
    Arrow(#[from] ArrowError),
    #[error("writing Parquet failed: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("writing XLSX failed: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing SQLite failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("rendering a table template failed: {0}")]
    Template(#[from] tera::Error),
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Streams Arrow batches out as one format's bytes into any `std::io::Write`.
pub trait Encoder: Send {
    /// Encodes one batch; the streaming formats hand its bytes to the sink before returning.
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError>;
    /// Writes any trailer (closing bracket, parquet footer, xlsx/sqlite file) and flushes.
    fn finish(self: Box<Self>) -> Result<(), EncodeError>;
}

/// The sink every encoder writes into.
pub type Sink = Box<dyn Write + Send>;

/// Makes the encoder for `format`, writing a result with `schema` into `sink`.
pub fn encoder(
    format: Format,
    options: &EncodeOptions,
    schema: SchemaRef,
    sink: Sink,
) -> Result<Box<dyn Encoder>, EncodeError> {
    options.validate()?;
    let sink = match parallel::ParallelEncoder::new(format, options, schema.clone(), sink) {
        Ok(encoder) => return Ok(Box::new(encoder)),
        Err(sink) => sink,
    };
    Ok(match format {
        Format::Csv => Box::new(csv::CsvEncoder::new(options, schema, sink)),
        Format::Json => Box::new(json::JsonEncoder::array(options, sink)),
        Format::NdJson => Box::new(json::JsonEncoder::lines(options, sink)),
        Format::Xml => Box::new(xml::XmlEncoder::new(options, schema, sink)),
        Format::Parquet => Box::new(parquet::ParquetEncoder::new(schema, sink)?),
        Format::ArrowIpc => Box::new(arrow_ipc::ArrowIpcEncoder::new(&schema, sink)?),
        Format::Xlsx => Box::new(xlsx::XlsxEncoder::new(options, schema, sink)?),
        Format::Sqlite => Box::new(sqlite::SqliteEncoder::new(options, schema, sink)?),
        Format::Html => Box::new(text::TableEncoder::new(
            text::TableLayout::Html,
            options,
            schema,
            sink,
        )?),
        Format::Markdown => Box::new(text::TableEncoder::new(
            text::TableLayout::Markdown,
            options,
            schema,
            sink,
        )?),
        Format::Text => Box::new(text::TableEncoder::new(
            text::TableLayout::Text,
            options,
            schema,
            sink,
        )?),
    })
}
