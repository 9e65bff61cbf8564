//! Cell formatting, the one place it lives: how a single Arrow value becomes display text or a
//! JSON value. Every encoder and every dialect formats cells through here.
//!
//! Text comes from Arrow's own display formatter (so it matches what Arrow's CSV writer would
//! print), JSON from Arrow's own JSON encoder. Two things are added on top: nested values print
//! as JSON text, and [`EncodeOptions::datetime_format`] renders dates and timestamps with a
//! strftime pattern (in the JSON formats too, where a date is a string anyway).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::temporal_conversions::{
    as_datetime, as_datetime_with_timezone, date32_to_datetime, date64_to_datetime,
};
use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray, RecordBatch, StringBuilder,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Field, FieldRef, Float64Type, Int64Type,
    Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::json::writer::{
    Encoder as JsonValueEncoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

use super::{EncodeError, EncodeOptions};

/// One cell as a JSON value: numbers stay numbers, nested values become objects and arrays,
/// dates and timestamps ISO-8601 strings (or `datetime_format`), null is `null`.
///
/// Decimals are parsed from their exact text; `serde_json::Value` keeps that exact only when
/// serde_json's `arbitrary_precision` feature is on, otherwise beyond 15 significant digits it
/// holds the nearest double. The JSON encoders always write a decimal's exact digits.
pub fn cell_json(
    array: &dyn Array,
    row: usize,
    options: &EncodeOptions,
) -> Result<serde_json::Value, EncodeError> {
    check_cell(array, row, options)?;
    if is_null(&array.logical_nulls(), row) {
        return Ok(serde_json::Value::Null);
    }
    let field = Arc::new(Field::new("", array.data_type().clone(), true));
    let json_options = json_encoder_options(options);
    let mut encoder = make_encoder(&field, array, &json_options)?;
    let mut json = Vec::new();
    encoder.encode(row, &mut json);
    serde_json::from_slice(&json).map_err(|error| {
        EncodeError::Arrow(ArrowError::JsonError(format!(
            "re-reading an encoded {} cell: {error}",
            array.data_type()
        )))
    })
}

/// One cell as display text, `None` for null: what CSV, XML, HTML, Markdown and text print.
pub fn cell_text(
    array: &dyn Array,
    row: usize,
    options: &EncodeOptions,
) -> Result<Option<String>, EncodeError> {
    check_cell(array, row, options)?;
    let field = Arc::new(Field::new("", array.data_type().clone(), true));
    let json_options = json_encoder_options(options);
    let mut column = TextColumn::new(&field, array, options, &json_options)?;
    let mut text = String::new();
    Ok(column.write(row, &mut text)?.then_some(text))
}

/// Rejects a row past the array's end and a `datetime_format` chrono cannot use.
fn check_cell(array: &dyn Array, row: usize, options: &EncodeOptions) -> Result<(), EncodeError> {
    if row >= array.len() {
        return Err(EncodeError::Arrow(ArrowError::InvalidArgumentError(
            format!("row {row} is past the end of a {}-row array", array.len()),
        )));
    }
    match &options.datetime_format {
        Some(pattern) => check_datetime_format(pattern),
        None => Ok(()),
    }
}

fn is_null(nulls: &Option<NullBuffer>, row: usize) -> bool {
    nulls.as_ref().is_some_and(|nulls| nulls.is_null(row))
}

/// Accepts a strftime pattern only if chrono can format a date and time with it; a pattern
/// that needs a time zone (`%z`) cannot format dates or zone-less timestamps.
pub(crate) fn check_datetime_format(pattern: &str) -> Result<(), EncodeError> {
    let mut probe = String::new();
    write!(probe, "{}", NaiveDateTime::default().format(pattern)).map_err(|_| {
        EncodeError::Unsupported(format!(
            "datetime_format {pattern:?} is not a strftime pattern that formats a date and time \
             without a time zone"
        ))
    })
}

/// The options Arrow's JSON encoder runs with: nulls written as `null`, and dates and
/// timestamps through [`EncodeOptions::datetime_format`] when one is set.
pub(crate) fn json_encoder_options(options: &EncodeOptions) -> EncoderOptions {
    let json_options = EncoderOptions::default().with_explicit_nulls(true);
    match temporal_json_factory(options) {
        Some(factory) => json_options.with_encoder_factory(factory),
        None => json_options,
    }
}

/// The hook that makes Arrow's JSON encoder print dates and timestamps with the caller's
/// pattern (Arrow's own pattern support cannot put a time on a date, nor escapes the result).
pub(crate) fn temporal_json_factory(options: &EncodeOptions) -> Option<Arc<dyn EncoderFactory>> {
    let pattern = options.datetime_format.as_deref()?;
    Some(Arc::new(PatternedTemporalFactory {
        pattern: Arc::from(pattern),
    }))
}

#[derive(Debug)]
struct PatternedTemporalFactory {
    pattern: Arc<str>,
}

impl EncoderFactory for PatternedTemporalFactory {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let Some(column) = TemporalColumn::try_new(array)? else {
            return Ok(None);
        };
        let encoder = PatternedTemporalJson {
            column,
            pattern: Arc::clone(&self.pattern),
            text: String::new(),
        };
        Ok(Some(NullableEncoder::new(
            Box::new(encoder),
            array.logical_nulls(),
        )))
    }
}

/// Writes a date or timestamp as a JSON string in the caller's pattern.
struct PatternedTemporalJson<'a> {
    column: TemporalColumn<'a>,
    pattern: Arc<str>,
    text: String,
}

impl JsonValueEncoder for PatternedTemporalJson<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        self.text.clear();
        // Arrow's encoder interface cannot fail; the pattern was checked when the options were
        // validated, so the only failure left is a value outside chrono's range, written as null.
        let formatted = self.column.format(idx, &self.pattern, &mut self.text);
        if formatted.is_err() || serde_json::to_writer(&mut *out, self.text.as_str()).is_err() {
            out.extend_from_slice(b"null");
        }
    }
}

/// A date or timestamp cell as wall-clock time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Temporal {
    /// A calendar day.
    Date(NaiveDate),
    /// A timestamp without a time zone.
    DateTime(NaiveDateTime),
    /// A timestamp with a time zone, in that zone.
    Zoned(DateTime<Tz>),
}

impl Temporal {
    /// The wall-clock date and time; a date is midnight of its day.
    pub(crate) fn local(&self) -> NaiveDateTime {
        match self {
            Temporal::Date(date) => date.and_time(NaiveTime::MIN),
            Temporal::DateTime(datetime) => *datetime,
            Temporal::Zoned(datetime) => datetime.naive_local(),
        }
    }

    fn write_with(&self, pattern: &str, out: &mut String) -> std::fmt::Result {
        match self {
            Temporal::Zoned(datetime) => write!(out, "{}", datetime.format(pattern)),
            other => write!(out, "{}", other.local().format(pattern)),
        }
    }
}

/// A column of dates or timestamps, with its time zone parsed once.
pub(crate) struct TemporalColumn<'a> {
    array: &'a dyn Array,
    zone: Option<Tz>,
}

impl<'a> TemporalColumn<'a> {
    /// `None` when the array holds neither dates nor timestamps.
    pub(crate) fn try_new(array: &'a dyn Array) -> Result<Option<Self>, ArrowError> {
        let zone = match array.data_type() {
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, None) => None,
            DataType::Timestamp(_, Some(zone)) => Some(zone.parse::<Tz>()?),
            _ => return Ok(None),
        };
        Ok(Some(TemporalColumn { array, zone }))
    }

    /// The value at `row` (not null), or `None` if it lies outside chrono's range.
    pub(crate) fn value(&self, row: usize) -> Option<Temporal> {
        let array = self.array;
        match array.data_type() {
            DataType::Date32 => {
                let days = array.as_primitive_opt::<Date32Type>()?.value(row);
                date32_to_datetime(days).map(|datetime| Temporal::Date(datetime.date()))
            }
            DataType::Date64 => {
                let millis = array.as_primitive_opt::<Date64Type>()?.value(row);
                date64_to_datetime(millis).map(|datetime| Temporal::Date(datetime.date()))
            }
            DataType::Timestamp(TimeUnit::Second, _) => {
                timestamp::<TimestampSecondType>(array, row, self.zone)
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                timestamp::<TimestampMillisecondType>(array, row, self.zone)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                timestamp::<TimestampMicrosecondType>(array, row, self.zone)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                timestamp::<TimestampNanosecondType>(array, row, self.zone)
            }
            _ => None,
        }
    }

    fn format(&self, row: usize, pattern: &str, out: &mut String) -> Result<(), EncodeError> {
        let value = self.value(row).ok_or_else(|| {
            EncodeError::Unsupported(format!(
                "a {} value at row {row} is outside the representable date range",
                self.array.data_type()
            ))
        })?;
        value.write_with(pattern, out).map_err(|_| {
            EncodeError::Unsupported(format!(
                "datetime_format {pattern:?} cannot format {value:?}"
            ))
        })
    }
}

fn timestamp<T>(array: &dyn Array, row: usize, zone: Option<Tz>) -> Option<Temporal>
where
    T: arrow::datatypes::ArrowTimestampType,
{
    let value = array.as_primitive_opt::<T>()?.value(row);
    match zone {
        None => as_datetime::<T>(value).map(Temporal::DateTime),
        Some(zone) => as_datetime_with_timezone::<T>(value, zone).map(Temporal::Zoned),
    }
}

/// One column's cells as display text, prepared once per batch.
pub(crate) struct TextColumn<'a> {
    nulls: Option<NullBuffer>,
    kind: TextKind<'a>,
}

enum TextKind<'a> {
    /// Whatever Arrow's display formatter prints as we want: numbers, strings, ISO dates, ...
    Display(ArrayFormatter<'a>),
    /// Dates and timestamps under `datetime_format`.
    Patterned(TemporalColumn<'a>, &'a str),
    /// Nested values, written as JSON text.
    Json(NullableEncoder<'a>, Vec<u8>),
}

impl<'a> TextColumn<'a> {
    pub(crate) fn new(
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncodeOptions,
        json_options: &'a EncoderOptions,
    ) -> Result<Self, EncodeError> {
        let kind = if is_json_text(array.data_type()) {
            TextKind::Json(make_encoder(field, array, json_options)?, Vec::new())
        } else if let (Some(pattern), Some(temporal)) = (
            options.datetime_format.as_deref(),
            TemporalColumn::try_new(array)?,
        ) {
            TextKind::Patterned(temporal, pattern)
        } else {
            let display = FormatOptions::default().with_display_error(false);
            TextKind::Display(ArrayFormatter::try_new(array, &display)?)
        };
        Ok(TextColumn {
            nulls: array.logical_nulls(),
            kind,
        })
    }

    /// Appends the text of `row` to `out`; `false` (and nothing appended) for a null.
    pub(crate) fn write(&mut self, row: usize, out: &mut String) -> Result<bool, EncodeError> {
        if is_null(&self.nulls, row) {
            return Ok(false);
        }
        match &mut self.kind {
            TextKind::Display(formatter) => formatter.value(row).write(out)?,
            TextKind::Patterned(column, pattern) => column.format(row, pattern, out)?,
            TextKind::Json(encoder, json) => {
                json.clear();
                encoder.encode(row, json);
                let text = std::str::from_utf8(json).map_err(|error| {
                    ArrowError::JsonError(format!("JSON encoder wrote invalid UTF-8: {error}"))
                })?;
                out.push_str(text);
            }
        }
        Ok(true)
    }
}

/// Whether a column's text is exactly Arrow's display of it (no JSON, no `datetime_format`), so a
/// writer built on Arrow's formatter (the CSV writer) may print it as it is.
pub(crate) fn is_display_text(data_type: &DataType, options: &EncodeOptions) -> bool {
    let patterned = options.datetime_format.is_some()
        && matches!(
            data_type,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
        );
    !is_json_text(data_type) && !patterned
}

/// Types whose text is JSON: Arrow's display of them (`{a: 1}`, `[1, 2]`) is not parseable.
fn is_json_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Struct(_)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Map(_, _)
    )
}

/// A text formatter for every column of `batch`, in schema order.
pub(crate) fn text_columns<'a>(
    batch: &'a RecordBatch,
    options: &'a EncodeOptions,
    json_options: &'a EncoderOptions,
) -> Result<Vec<TextColumn<'a>>, EncodeError> {
    batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| TextColumn::new(field, array.as_ref(), options, json_options))
        .collect()
}

/// `batch` with every column replaced by its display text (nulls stay null), for writers that
/// only need to lay text out, such as Arrow's CSV writer.
pub(crate) fn text_batch(
    batch: &RecordBatch,
    options: &EncodeOptions,
    json_options: &EncoderOptions,
) -> Result<RecordBatch, EncodeError> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut cell = String::new();
    for mut column in text_columns(batch, options, json_options)? {
        let mut text = StringBuilder::with_capacity(batch.num_rows(), batch.num_rows() * 8);
        for row in 0..batch.num_rows() {
            cell.clear();
            if column.write(row, &mut cell)? {
                text.append_value(&cell);
            } else {
                text.append_null();
            }
        }
        columns.push(Arc::new(text.finish()) as ArrayRef);
    }
    let schema = text_schema(batch.schema_ref());
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The schema of [`text_batch`]'s output: same names, every column nullable text.
pub(crate) fn text_schema(schema: &Schema) -> Arc<Schema> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| Field::new(field.name(), DataType::Utf8, true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// An empty [`text_batch`] for `schema`, for writers that must still lay out a header.
pub(crate) fn empty_text_batch(schema: &Schema) -> RecordBatch {
    RecordBatch::new_empty(text_schema(schema))
}

/// One cell as the typed value a store with its own types (XLSX, SQLite) writes natively.
#[derive(Debug, PartialEq)]
pub(crate) enum TypedCell<'t> {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A decimal's exact digits, e.g. `12345.67`.
    Decimal(&'t str),
    Bool(bool),
    Temporal(Temporal),
    Bytes(&'t [u8]),
    /// Anything else, as its display text (strings, nested values as JSON, times, ...).
    Text(&'t str),
}

/// One column's cells as [`TypedCell`]s, prepared once per batch; it also gives each cell's
/// text for stores that cannot hold a value natively (a NaN in XLSX, a huge integer, ...).
pub(crate) struct TypedColumn<'a> {
    kind: TypedKind<'a>,
    text: TextColumn<'a>,
    nulls: Option<NullBuffer>,
    buffer: String,
}

enum TypedKind<'a> {
    Int(PrimitiveArray<Int64Type>),
    UInt(PrimitiveArray<UInt64Type>),
    Float(PrimitiveArray<Float64Type>),
    Decimal,
    Bool(&'a BooleanArray),
    Temporal(TemporalColumn<'a>),
    Bytes(&'a dyn Array),
    Text,
}

impl<'a> TypedColumn<'a> {
    pub(crate) fn new(
        field: &'a FieldRef,
        array: &'a ArrayRef,
        options: &'a EncodeOptions,
        json_options: &'a EncoderOptions,
    ) -> Result<Self, EncodeError> {
        let kind = match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => TypedKind::Int(cast_primitive::<Int64Type>(array)?),
            DataType::UInt64 => TypedKind::UInt(cast_primitive::<UInt64Type>(array)?),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                TypedKind::Float(cast_primitive::<Float64Type>(array)?)
            }
            DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _) => TypedKind::Decimal,
            DataType::Boolean => match array.as_boolean_opt() {
                Some(values) => TypedKind::Bool(values),
                None => TypedKind::Text,
            },
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => TypedKind::Bytes(array.as_ref()),
            _ => match TemporalColumn::try_new(array.as_ref())? {
                Some(temporal) => TypedKind::Temporal(temporal),
                None => TypedKind::Text,
            },
        };
        Ok(TypedColumn {
            kind,
            text: TextColumn::new(field, array.as_ref(), options, json_options)?,
            nulls: array.logical_nulls(),
            buffer: String::new(),
        })
    }

    pub(crate) fn cell(&mut self, row: usize) -> Result<TypedCell<'_>, EncodeError> {
        if is_null(&self.nulls, row) {
            return Ok(TypedCell::Null);
        }
        let native = match &self.kind {
            TypedKind::Int(values) => Some(TypedCell::Int(values.value(row))),
            TypedKind::UInt(values) => Some(TypedCell::UInt(values.value(row))),
            TypedKind::Float(values) => Some(TypedCell::Float(values.value(row))),
            TypedKind::Bool(values) => Some(TypedCell::Bool(values.value(row))),
            TypedKind::Bytes(array) => Some(TypedCell::Bytes(binary_value(*array, row))),
            // A value outside chrono's range falls back to its text.
            TypedKind::Temporal(column) => column.value(row).map(TypedCell::Temporal),
            TypedKind::Decimal | TypedKind::Text => None,
        };
        if let Some(cell) = native {
            return Ok(cell);
        }
        let decimal = matches!(self.kind, TypedKind::Decimal);
        let text = self.text(row)?.unwrap_or_default();
        Ok(if decimal {
            TypedCell::Decimal(text)
        } else {
            TypedCell::Text(text)
        })
    }

    /// The cell's display text, `None` for null.
    pub(crate) fn text(&mut self, row: usize) -> Result<Option<&str>, EncodeError> {
        self.buffer.clear();
        let present = self.text.write(row, &mut self.buffer)?;
        Ok(present.then_some(self.buffer.as_str()))
    }
}

/// A typed reader for every column of `batch`, in schema order.
pub(crate) fn typed_columns<'a>(
    batch: &'a RecordBatch,
    options: &'a EncodeOptions,
    json_options: &'a EncoderOptions,
) -> Result<Vec<TypedColumn<'a>>, EncodeError> {
    batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| TypedColumn::new(field, array, options, json_options))
        .collect()
}

/// `array` cast to the primitive type `T` (a no-op when it already is one).
fn cast_primitive<T: ArrowPrimitiveType>(
    array: &ArrayRef,
) -> Result<PrimitiveArray<T>, ArrowError> {
    let cast_array = cast(array, &T::DATA_TYPE)?;
    cast_array.as_primitive_opt::<T>().cloned().ok_or_else(|| {
        ArrowError::CastError(format!(
            "{} did not cast to {}",
            array.data_type(),
            T::DATA_TYPE
        ))
    })
}

fn binary_value(array: &dyn Array, row: usize) -> &[u8] {
    if let Some(values) = array.as_binary_opt::<i32>() {
        values.value(row)
    } else if let Some(values) = array.as_binary_opt::<i64>() {
        values.value(row)
    } else if let Some(values) = array.as_binary_view_opt() {
        values.value(row)
    } else if let Some(values) = array.as_fixed_size_binary_opt() {
        values.value(row)
    } else {
        &[]
    }
}
