//! An SQLite database file holding one table, [`EncodeOptions::table_name`], with one column per
//! result column. Rows go into a temporary database file, one transaction per batch through a
//! prepared insert; at `finish` the file is copied to the sink.
//!
//! Column types: integers `INTEGER`, booleans `BOOLEAN` (0/1), floats `REAL`, decimals `REAL`
//! when a double holds all their digits (precision up to 15) and exact `TEXT` otherwise, dates
//! `DATE` and timestamps `DATETIME` as ISO-8601 text (which SQLite's date functions read),
//! binary `BLOB`, everything else `TEXT` (nested values as JSON). Nulls are `NULL`.

use std::io::Write;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tempfile::NamedTempFile;

use super::value::{TypedCell, json_encoder_options, typed_columns};
use super::{EncodeError, EncodeOptions, Encoder, Sink};

/// The most significant digits a double carries through a decimal round trip.
const DOUBLE_DIGITS: u8 = 15;

/// Writes rows into a one-table SQLite file, delivered to the sink at `finish`.
pub struct SqliteEncoder {
    database: Connection,
    file: NamedTempFile,
    insert: String,
    /// Per column: whether its decimals are stored as `REAL` rather than text.
    decimal_as_real: Vec<bool>,
    /// Display options for cells stored as text; dates there are always ISO-8601.
    text_options: EncodeOptions,
    json_options: EncoderOptions,
    sink: Sink,
}

impl SqliteEncoder {
    pub fn new(
        options: &EncodeOptions,
        schema: SchemaRef,
        sink: Sink,
    ) -> Result<Self, EncodeError> {
        let file = NamedTempFile::new()?;
        let database = Connection::open(file.path())?;
        // The file is scratch space until it is copied out: no journal, no fsync.
        database.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;

        let table = quote_identifier(&options.table_name);
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|field| {
                format!(
                    "{} {}",
                    quote_identifier(field.name()),
                    declared_type(field.data_type())
                )
            })
            .collect();
        database.execute(
            &format!("CREATE TABLE {table} ({})", columns.join(", ")),
            [],
        )?;
        let placeholders = vec!["?"; schema.fields().len()].join(", ");

        let text_options = EncodeOptions {
            datetime_format: None,
            ..options.clone()
        };
        Ok(SqliteEncoder {
            database,
            file,
            insert: format!("INSERT INTO {table} VALUES ({placeholders})"),
            decimal_as_real: schema
                .fields()
                .iter()
                .map(|field| {
                    decimal_precision(field.data_type()).is_some_and(|p| p <= DOUBLE_DIGITS)
                })
                .collect(),
            json_options: json_encoder_options(&text_options),
            text_options,
            sink,
        })
    }
}

impl Encoder for SqliteEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let mut columns = typed_columns(batch, &self.text_options, &self.json_options)?;
        let transaction = self.database.transaction()?;
        {
            let mut insert = transaction.prepare_cached(&self.insert)?;
            for row in 0..batch.num_rows() {
                for (index, (cells, decimal_as_real)) in
                    columns.iter_mut().zip(&self.decimal_as_real).enumerate()
                {
                    let cell = cells.cell(row)?;
                    let value = if let TypedCell::Temporal(_) = cell {
                        // Dates and timestamps are stored as their ISO-8601 text.
                        let text = cells.text(row)?;
                        ToSqlOutput::Borrowed(
                            text.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())),
                        )
                    } else {
                        sql_value(cell, *decimal_as_real)
                    };
                    insert.raw_bind_parameter(index + 1, value)?;
                }
                insert.raw_execute()?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), EncodeError> {
        let SqliteEncoder {
            database,
            file,
            mut sink,
            ..
        } = *self;
        database.close().map_err(|(_, error)| error)?;
        let mut database_file = file.reopen()?;
        std::io::copy(&mut database_file, &mut sink)?;
        sink.flush()?;
        Ok(())
    }
}

/// The SQLite value stored for one cell other than a date or timestamp.
fn sql_value(cell: TypedCell<'_>, decimal_as_real: bool) -> ToSqlOutput<'_> {
    let value = match cell {
        TypedCell::Null => ValueRef::Null,
        TypedCell::Int(value) => ValueRef::Integer(value),
        TypedCell::UInt(value) => match i64::try_from(value) {
            Ok(value) => ValueRef::Integer(value),
            Err(_) => ValueRef::Real(value as f64),
        },
        TypedCell::Float(value) => ValueRef::Real(value),
        TypedCell::Decimal(digits) => match digits.parse::<f64>() {
            Ok(value) if decimal_as_real => ValueRef::Real(value),
            _ => ValueRef::Text(digits.as_bytes()),
        },
        TypedCell::Bool(value) => ValueRef::Integer(i64::from(value)),
        TypedCell::Bytes(bytes) => ValueRef::Blob(bytes),
        TypedCell::Text(text) => ValueRef::Text(text.as_bytes()),
        // Stored as text by the caller, which has the column's text formatter.
        TypedCell::Temporal(_) => ValueRef::Null,
    };
    ToSqlOutput::Borrowed(value)
}

/// The column type declared in `CREATE TABLE`.
fn declared_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "INTEGER",
        DataType::Boolean => "BOOLEAN",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "REAL",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Timestamp(_, _) => "DATETIME",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB",
        other => match decimal_precision(other) {
            Some(precision) if precision <= DOUBLE_DIGITS => "REAL",
            _ => "TEXT",
        },
    }
}

fn decimal_precision(data_type: &DataType) -> Option<u8> {
    match data_type {
        DataType::Decimal32(precision, _)
        | DataType::Decimal64(precision, _)
        | DataType::Decimal128(precision, _)
        | DataType::Decimal256(precision, _) => Some(*precision),
        _ => None,
    }
}

/// `name` as an SQLite identifier: double-quoted, inner quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
