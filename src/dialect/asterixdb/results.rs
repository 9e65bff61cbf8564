//! Result rows as SQL++ values, streamed out inside a response: the rows are printed batch by
//! batch on a blocking thread and sent in chunks, and the part after the records (whose metrics
//! count them) is printed once the last record is out.

use std::io::Write;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use serde_json::{Map, Value};

use super::printer::{self, RecordStyle};
use super::request::OutputFormat;
use super::sqlpp::RowShape;
use crate::encode::csv::quoted_field;
use crate::encode::{EncodeError, EncodeOptions, cell_json, cell_text};
use crate::engine::ResultReader;
use crate::wire::Body;

/// How each row becomes the text of one record.
#[derive(Clone, Debug)]
pub struct RecordPrinter {
    pub shape: RowShape,
    pub format: OutputFormat,
    pub style: RecordStyle,
    /// Records inside a JSON response are JSON strings for ADM and CSV (AsterixDB's quoted records).
    pub quoted: bool,
}

impl RecordPrinter {
    /// The printed records of one batch.
    fn print(&self, batch: &RecordBatch, out: &mut Vec<String>) -> Result<(), EncodeError> {
        let options = EncodeOptions::default();
        for row in 0..batch.num_rows() {
            let text = match self.format {
                OutputFormat::Csv { .. } => csv_line(batch, row, &options)?,
                OutputFormat::Adm => printer::adm(&self.value(batch, row)?, &self.row_type(batch)),
                OutputFormat::Json | OutputFormat::LosslessJson => {
                    printer::record(&self.value(batch, row)?, self.style)
                }
            };
            out.push(self.quote(text));
        }
        Ok(())
    }

    fn quote(&self, text: String) -> String {
        let non_json = matches!(self.format, OutputFormat::Adm | OutputFormat::Csv { .. });
        if self.quoted && non_json {
            printer::quote(&text)
        } else {
            text
        }
    }

    /// The CSV header record, if the format asks for one.
    fn header(&self, batch: &RecordBatch) -> Option<String> {
        match self.format {
            OutputFormat::Csv { header: true } => {
                let names: Vec<String> = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| quoted_field(f.name(), ",").into_owned())
                    .collect();
                Some(self.quote(names.join(",")))
            }
            _ => None,
        }
    }

    /// The Arrow type of [`RecordPrinter::value`]'s answer, for ADM's typed printing.
    fn row_type(&self, batch: &RecordBatch) -> DataType {
        let fields = batch.schema().fields().clone();
        match &self.shape {
            RowShape::Value => fields
                .first()
                .map(|f| f.data_type().clone())
                .unwrap_or(DataType::Null),
            RowShape::Wrapped(alias) => DataType::Struct(Fields::from(vec![Field::new(
                alias,
                DataType::Struct(fields),
                true,
            )])),
            _ => DataType::Struct(fields),
        }
    }

    /// One row as a SQL++ value in this printer's shape.
    fn value(&self, batch: &RecordBatch, row: usize) -> Result<Value, EncodeError> {
        let options = EncodeOptions::default();
        if self.shape == RowShape::Value {
            return match batch.columns().first() {
                Some(column) => {
                    let mut value = cell_json(column.as_ref(), row, &options)?;
                    narrow_floats(&mut value, column.data_type());
                    Ok(value)
                }
                None => Ok(Value::Null),
            };
        }
        let mut object = Map::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let mut value = cell_json(column.as_ref(), row, &options)?;
            narrow_floats(&mut value, column.data_type());
            object.insert(field.name().clone(), value);
        }
        Ok(match &self.shape {
            RowShape::Record => {
                let mut record = Value::Object(object);
                drop_nulls(&mut record);
                record
            }
            RowShape::Sources => {
                for record in object.values_mut().filter(|v| v.is_object()) {
                    drop_nulls(record);
                }
                Value::Object(object)
            }
            RowShape::Wrapped(alias) => {
                // A dataset's absent optional fields are MISSING in SQL++: left out, not null.
                let mut record = Value::Object(object);
                drop_nulls(&mut record);
                let mut wrapped = Map::new();
                wrapped.insert(alias.clone(), record);
                Value::Object(wrapped)
            }
            _ => Value::Object(object),
        })
    }
}

/// SQL++ `float`s are 32-bit; the shared encoder widens them to doubles, whose digits are not
/// the float's (`0.1f` widens to `0.10000000149011612`). Each such number becomes the double
/// of the float's own shortest digits, which the printer then prints as Java's
/// `Float.toString` does. The walk follows the Arrow type, whose depth the engine bounds.
fn narrow_floats(value: &mut Value, data_type: &DataType) {
    match (value, data_type) {
        (Value::Number(n), DataType::Float32 | DataType::Float16) => {
            let narrowed = n
                .as_f64()
                .and_then(|wide| format!("{}", wide as f32).parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64);
            if let Some(narrowed) = narrowed {
                *n = narrowed;
            }
        }
        (Value::Object(map), DataType::Struct(fields)) => {
            for field in fields {
                if let Some(v) = map.get_mut(field.name()) {
                    narrow_floats(v, field.data_type());
                }
            }
        }
        (
            Value::Array(items),
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _),
        ) => {
            for v in items {
                narrow_floats(v, item.data_type());
            }
        }
        _ => {}
    }
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn csv_line(
    batch: &RecordBatch,
    row: usize,
    options: &EncodeOptions,
) -> Result<String, EncodeError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    for column in batch.columns() {
        let column: &dyn Array = column.as_ref();
        fields.push(
            cell_text(column, row, options)?
                .map(|t| quoted_field(&t, ",").into_owned())
                .unwrap_or_default(),
        );
    }
    Ok(fields.join(","))
}

/// How records sit between the head and the tail.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub open: &'static str,
    pub separator: &'static str,
    pub close: &'static str,
}

impl Layout {
    /// Inside a response's `results` field.
    pub const ENVELOPE: Layout = Layout {
        open: printer::RESULTS_OPEN,
        separator: ",",
        close: printer::RESULTS_CLOSE,
    };
    /// The vendor page's bare array from the result endpoint.
    pub const BARE_ARRAY: Layout = Layout {
        open: "[ ",
        separator: ", ",
        close: " ]\n",
    };
    /// Raw ADM or CSV from the result endpoint: one record per line.
    pub const LINES: Layout = Layout {
        open: "",
        separator: "\n",
        close: "\n",
    };
}

/// What the printed records came to, for the metrics after them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub rows: u64,
    /// Characters of the printed records.
    pub size: u64,
}

/// The tail of a response, printed once the records are counted.
pub type Tail = Box<dyn FnOnce(Counts) -> String + Send>;

/// Streams `head`, the records of `reader` in `layout`, then `tail(counts)`.
pub fn stream(
    reader: ResultReader,
    printer: RecordPrinter,
    layout: Layout,
    head: String,
    tail: Tail,
) -> Body {
    crate::wire::body::written(move |mut out| {
        let mut counts = Counts::default();
        out.write_all(head.as_bytes())?;
        out.write_all(layout.open.as_bytes())?;
        let mut first = true;
        let mut records = Vec::new();
        for batch in reader {
            let batch = batch?;
            records.clear();
            if first && let Some(h) = printer.header(&batch) {
                records.push(h);
            }
            printer.print(&batch, &mut records)?;
            counts.rows += batch.num_rows() as u64;
            for record in records.drain(..) {
                if !first {
                    out.write_all(layout.separator.as_bytes())?;
                }
                first = false;
                counts.size += record.chars().count() as u64;
                out.write_all(record.as_bytes())?;
            }
        }
        out.write_all(layout.close.as_bytes())?;
        out.write_all(tail(counts).as_bytes())?;
        Ok(())
    })
}
