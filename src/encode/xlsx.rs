//! An Excel workbook with one sheet, through rust_xlsxwriter in constant-memory mode: rows go to
//! the library's temporary files as they come, so memory holds one row, not the sheet. The
//! workbook is assembled into a temporary file at `finish` and then copied to the sink, so a
//! failure while assembling reaches the caller before any byte of the file does.
//!
//! Cells keep their types: numbers are numbers, booleans booleans, dates and timestamps Excel
//! dates (`yyyy-mm-dd`, `yyyy-mm-dd hh:mm:ss`; a zoned timestamp in its zone's wall-clock time),
//! nulls empty cells. What Excel cannot hold exactly is written as text instead: an integer
//! beyond ±2^53, NaN and infinities, dates before 1900. Decimals are numbers (Excel has only
//! doubles) shown with their scale's decimal places.

use std::io::{Seek, SeekFrom, Write};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, Timelike};
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook, Worksheet, XlsxError};

use super::value::{Temporal, TypedCell, TypedColumn, json_encoder_options, typed_columns};
use super::{EncodeError, EncodeOptions, Encoder, Sink};

/// Every integer up to this magnitude is exact as a double; larger ones are written as text.
const EXACT_DOUBLE_INTEGER: u64 = 1 << 53;

/// Writes rows into a one-sheet workbook, delivered to the sink at `finish`.
pub struct XlsxEncoder {
    workbook: Workbook,
    sheet: SheetWriter,
    /// Display options for cells written as text; dates there are always ISO-8601.
    text_options: EncodeOptions,
    json_options: EncoderOptions,
    sink: Sink,
}

impl XlsxEncoder {
    pub fn new(
        options: &EncodeOptions,
        schema: SchemaRef,
        sink: Sink,
    ) -> Result<Self, EncodeError> {
        let mut workbook = Workbook::new();
        let mut sheet = workbook.new_worksheet_with_constant_memory()?;
        sheet.set_name(&options.sheet_name)?;
        let mut next_row = 0;
        if options.header {
            for (column, field) in (0..).zip(schema.fields()) {
                sheet.write_string(0, column, field.name())?;
            }
            next_row = 1;
        }
        let text_options = EncodeOptions {
            datetime_format: None,
            ..options.clone()
        };
        Ok(XlsxEncoder {
            workbook,
            sheet: SheetWriter {
                sheet,
                next_row,
                decimal_formats: schema
                    .fields()
                    .iter()
                    .map(|field| decimal_format(field.data_type()))
                    .collect(),
                date_format: CellFormat::new().set_num_format("yyyy-mm-dd"),
                datetime_format: CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            },
            json_options: json_encoder_options(&text_options),
            text_options,
            sink,
        })
    }
}

/// The worksheet being filled, with the cell formats its columns use.
struct SheetWriter {
    sheet: Worksheet,
    next_row: u32,
    decimal_formats: Vec<Option<CellFormat>>,
    date_format: CellFormat,
    datetime_format: CellFormat,
}

impl SheetWriter {
    fn write_row(&mut self, columns: &mut [TypedColumn], index: usize) -> Result<(), EncodeError> {
        let row = self.next_row;
        for (column, cells) in (0..).zip(columns.iter_mut()) {
            self.write_cell(row, column, cells, index)?;
        }
        self.next_row += 1;
        Ok(())
    }

    fn write_cell(
        &mut self,
        row: u32,
        column: u16,
        cells: &mut TypedColumn,
        index: usize,
    ) -> Result<(), EncodeError> {
        let sheet = &mut self.sheet;
        match cells.cell(index)? {
            TypedCell::Null => {}
            TypedCell::Int(value) if value.unsigned_abs() <= EXACT_DOUBLE_INTEGER => {
                sheet.write_number(row, column, value as f64)?;
            }
            TypedCell::UInt(value) if value <= EXACT_DOUBLE_INTEGER => {
                sheet.write_number(row, column, value as f64)?;
            }
            TypedCell::Float(value) if value.is_finite() => {
                sheet.write_number(row, column, value)?;
            }
            TypedCell::Decimal(digits) => {
                let format = self
                    .decimal_formats
                    .get(usize::from(column))
                    .and_then(Option::as_ref);
                match (digits.parse::<f64>(), format) {
                    (Ok(value), Some(format)) => {
                        sheet.write_number_with_format(row, column, value, format)?;
                    }
                    (Ok(value), None) => {
                        sheet.write_number(row, column, value)?;
                    }
                    (Err(_), _) => {
                        sheet.write_string(row, column, digits)?;
                    }
                }
            }
            TypedCell::Bool(value) => {
                sheet.write_boolean(row, column, value)?;
            }
            TypedCell::Temporal(value) => match excel_datetime(&value) {
                Ok(datetime) => {
                    let format = match value {
                        Temporal::Date(_) => &self.date_format,
                        _ => &self.datetime_format,
                    };
                    sheet.write_datetime_with_format(row, column, datetime, format)?;
                }
                Err(_) => {
                    if let Some(text) = cells.text(index)? {
                        sheet.write_string(row, column, text)?;
                    }
                }
            },
            TypedCell::Text(text) => {
                sheet.write_string(row, column, text)?;
            }
            TypedCell::Int(_) | TypedCell::UInt(_) | TypedCell::Float(_) | TypedCell::Bytes(_) => {
                if let Some(text) = cells.text(index)? {
                    sheet.write_string(row, column, text)?;
                }
            }
        }
        Ok(())
    }
}

/// The number format that shows a decimal column's scale, e.g. `0.00` for scale 2.
fn decimal_format(data_type: &DataType) -> Option<CellFormat> {
    let scale = match data_type {
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
        | DataType::Decimal256(_, scale) => usize::try_from(*scale).unwrap_or(0),
        _ => return None,
    };
    let pattern = if scale == 0 {
        "0".to_string()
    } else {
        format!("0.{}", "0".repeat(scale))
    };
    Some(CellFormat::new().set_num_format(pattern))
}

/// The Excel date for a wall-clock date and time, to the millisecond Excel keeps.
fn excel_datetime(value: &Temporal) -> Result<ExcelDateTime, XlsxError> {
    let local = value.local();
    let year = u16::try_from(local.year())
        .map_err(|_| XlsxError::DateTimeRangeError(local.year().to_string()))?;
    let date = ExcelDateTime::from_ymd(year, local.month() as u8, local.day() as u8)?;
    if let Temporal::Date(_) = value {
        return Ok(date);
    }
    let millis = (local.nanosecond() / 1_000_000).min(999) as u16;
    date.and_hms_milli(
        local.hour() as u16,
        local.minute() as u8,
        local.second() as u8,
        millis,
    )
}

impl Encoder for XlsxEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        let mut columns = typed_columns(batch, &self.text_options, &self.json_options)?;
        // Constant-memory mode writes a row out once a later row is started: go row by row.
        for index in 0..batch.num_rows() {
            self.sheet.write_row(&mut columns, index)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), EncodeError> {
        let XlsxEncoder {
            mut workbook,
            sheet,
            mut sink,
            ..
        } = *self;
        workbook.push_worksheet(sheet.sheet);
        let mut file = tempfile::tempfile()?;
        workbook.save_to_writer(&mut file)?;
        file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut file, &mut sink)?;
        sink.flush()?;
        Ok(())
    }
}
