//! Async query result files: how one is written from a job's result. The engine keeps them (as
//! exports of the job, named `<id>.<format>` as in Kylin's result directory), writes them under its
//! worker pool once the job succeeds, and removes them with the job.
//!
//! Formats follow Kylin's `ResultPlan` (spec §5): CSV in UTF-8 with LF, Kylin's quoting and a
//! header only when asked; JSON as an array of strings, each a serialized row object without its
//! null fields; XLSX with one sheet `query_result`, every cell a string; Parquet with typed columns
//! whose names have `,;{}()\n\t=` and spaces replaced by `_`.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::wire::CellStyle;
use crate::encode::csv::quoted_field;
use crate::encode::{self, EncodeError, EncodeOptions, Format};
use crate::engine::{EngineError, ExportWriter, JobId, ResultReader};

/// The download formats Kylin offers, in the order its messages list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Json,
    Xlsx,
    Parquet,
}

impl FileFormat {
    pub const NAMES: &'static str = "[csv, json, xlsx, parquet]";

    pub fn parse(name: &str) -> Option<FileFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "json" => Some(FileFormat::Json),
            "xlsx" => Some(FileFormat::Xlsx),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
            FileFormat::Xlsx => "xlsx",
            FileFormat::Parquet => "parquet",
        }
    }

    /// Kylin's download Content-Type: `application/<format>;charset=<encode>`, xlsx as octet-stream.
    pub fn content_type(self, encode: &str) -> String {
        match self {
            FileFormat::Xlsx => format!("application/octet-stream;charset={encode}"),
            other => format!("application/{};charset={encode}", other.name()),
        }
    }
}

/// How one async query's result file is written, decided at submit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSpec {
    pub format: FileFormat,
    /// `utf-8` or `gbk`: only the Content-Type label; the bytes are UTF-8 (as in Kylin).
    pub encode: String,
    pub file_name: String,
    pub separator: String,
    pub include_header: bool,
}

impl Default for FileSpec {
    /// Kylin's defaults: a UTF-8 CSV named `result`, comma-separated, without a header.
    fn default() -> Self {
        FileSpec {
            format: FileFormat::Csv,
            encode: "utf-8".into(),
            file_name: "result".into(),
            separator: ",".into(),
            include_header: false,
        }
    }
}

/// Why a result file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("writing the result file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the result failed: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A job's result directory, laid out as Kylin lays it out on HDFS (what `result_path` names).
pub fn result_dir(project: &str, id: JobId) -> String {
    format!("{project}/async_query_result/{}", id.to_uuid())
}

/// The export name of a job's result file: `<result dir>/<id>.<format>`.
pub fn file_name(project: &str, id: JobId, format: FileFormat) -> String {
    format!(
        "{}/{}.{}",
        result_dir(project, id),
        id.to_uuid(),
        format.name()
    )
}

/// The engine's writer for a result file of this kind.
pub fn writer(spec: FileSpec) -> ExportWriter {
    Arc::new(move |reader, out| {
        write_format(&spec, reader, out).map_err(|e| match e {
            FileError::Engine(e) => e,
            other => EngineError::internal(other),
        })
    })
}

fn write_format(
    spec: &FileSpec,
    reader: ResultReader,
    mut out: Box<dyn Write + Send>,
) -> Result<(), FileError> {
    let schema = reader.schema();
    match spec.format {
        FileFormat::Csv => write_csv(spec, &schema, reader, &mut out)?,
        FileFormat::Json => write_json(&schema, reader, &mut out)?,
        FileFormat::Xlsx => {
            let options = EncodeOptions {
                header: spec.include_header,
                sheet_name: "query_result".into(),
                ..EncodeOptions::default()
            };
            let style = CellStyle::new(schema.fields());
            let mut encoder = encode::encoder(Format::Xlsx, &options, text_schema(&schema), out)?;
            for batch in reader {
                encoder.write_batch(&style.text_batch(&batch?)?)?;
            }
            encoder.finish()?;
            return Ok(());
        }
        FileFormat::Parquet => {
            let renamed = parquet_schema(&schema);
            let mut encoder = encode::encoder(
                Format::Parquet,
                &EncodeOptions::default(),
                renamed.clone(),
                out,
            )?;
            for batch in reader {
                let batch = batch?;
                encoder.write_batch(&RecordBatch::try_new(
                    renamed.clone(),
                    batch.columns().to_vec(),
                )?)?;
            }
            encoder.finish()?;
            return Ok(());
        }
    }
    out.flush()?;
    Ok(())
}

/// Kylin's CSV (supercsv rules): a cell is quoted when it holds the separator, a quote, CR or LF,
/// with quotes doubled; null is an empty cell; the header is the bare column names.
fn write_csv(
    spec: &FileSpec,
    schema: &SchemaRef,
    reader: ResultReader,
    out: &mut impl Write,
) -> Result<(), FileError> {
    let separator = spec.separator.as_str();
    if spec.include_header {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        out.write_all(names.join(separator).as_bytes())?;
        out.write_all(b"\n")?;
    }
    let style = CellStyle::new(schema.fields());
    let mut line = String::new();
    for batch in reader {
        let batch = style.text_batch(&batch?)?;
        let columns: Vec<&StringArray> = batch.columns().iter().map(|c| c.as_string()).collect();
        for row in 0..batch.num_rows() {
            line.clear();
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    line.push_str(separator);
                }
                if column.is_valid(row) {
                    line.push_str(&quoted_field(column.value(row), separator));
                }
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// Kylin's JSON download: `["{\"A\":1}", …]`, one serialized row object per string, null fields
/// left out as Spark's JSON writer does.
fn write_json(
    schema: &SchemaRef,
    reader: ResultReader,
    out: &mut impl Write,
) -> Result<(), FileError> {
    let style = CellStyle::new(schema.fields());
    out.write_all(b"[")?;
    let mut first = true;
    for batch in reader {
        let batch = batch?;
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (i, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
                let value = style.json(i, column.as_ref(), row)?;
                if !value.is_null() {
                    object.insert(field.name().clone(), value);
                }
            }
            let line = serde_json::Value::Object(object).to_string();
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
        }
    }
    out.write_all(b"]")?;
    Ok(())
}

/// Every column as text, for formats where Kylin writes each cell's string.
fn text_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// Spark's Parquet writer refuses some characters in column names; Kylin replaces them with `_`.
fn parquet_schema(schema: &Schema) -> SchemaRef {
    let clean = |name: &str| -> String {
        name.chars()
            .map(|c| if ",;{}()\n\t= ".contains(c) { '_' } else { c })
            .collect()
    };
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_name(clean(f.name())))
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_follows_supercsv() {
        assert_eq!(quoted_field("plain", ","), "plain");
        assert_eq!(quoted_field("a,b", ","), "\"a,b\"");
        assert_eq!(quoted_field("a,b", "|"), "a,b");
        assert_eq!(quoted_field("say \"hi\"", ","), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted_field("two\nlines", ","), "\"two\nlines\"");
    }

    #[test]
    fn parquet_names_are_cleaned() {
        let schema = Schema::new(vec![Field::new("COUNT(*) x", DataType::Int64, false)]);
        assert_eq!(parquet_schema(&schema).field(0).name(), "COUNT_*__x");
    }
}
