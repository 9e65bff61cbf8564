//! Pivots on one or more dimensions. The SQL groups by the pivot dimensions like any other; here
//! the rows are regrouped by the other dimensions, and each measure becomes one value per
//! combination of pivot values (its key the values' texts joined by `|FIELD|`, as Looker keys
//! them). A pivot
//! needs every row before its first line can be written (its columns are the pivot values), so a
//! pivoted result is gathered in memory; everything else streams.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use super::semantic::Field;
use crate::encode::{EncodeError, EncodeOptions, cell_json, cell_text};

/// Looker's separator between the values of several pivots in a pivot key.
const KEY_SEPARATOR: &str = "|FIELD|";

/// The pivot key of the row totals column.
pub const ROW_TOTAL: &str = "$$$_row_total_$$$";

/// A combination of pivot values: each pivot's JSON value and text, and the pivot key.
#[derive(Clone, Debug, PartialEq)]
pub struct PivotKey {
    pub values: Vec<(Value, String)>,
    pub text: String,
}

/// A pivoted result: the pivot keys in order, and one row per combination of the other dimensions.
#[derive(Debug, Default)]
pub struct Pivoted {
    pub keys: Vec<PivotKey>,
    /// Per row: the dimension cells (JSON value, text), then per measure, pivot key text → cell.
    pub rows: Vec<PivotRow>,
}

#[derive(Debug, Default)]
pub struct PivotRow {
    pub dimensions: Vec<(Value, Option<String>)>,
    pub measures: Vec<BTreeMap<String, (Value, Option<String>)>>,
}

/// Which columns are what, by position in the result.
pub struct Layout<'a> {
    pub fields: &'a [Field],
    pub pivots: &'a [usize],
}

impl Layout<'_> {
    fn dimensions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.fields.len())
            .filter(move |&i| !self.pivots.contains(&i) && !self.fields[i].is_measure())
    }

    fn measures(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.fields.len()).filter(move |&i| self.fields[i].is_measure())
    }
}

/// Regroups the batches by the non-pivot dimensions, in order of first appearance; pivot keys
/// are ordered by value.
pub fn pivot(batches: &[RecordBatch], layout: &Layout<'_>) -> Result<Pivoted, EncodeError> {
    let options = EncodeOptions::default();
    let mut keys: Vec<PivotKey> = Vec::new();
    let mut rows: Vec<PivotRow> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let cell = |batch: &RecordBatch, column: usize, row: usize| -> Result<_, EncodeError> {
        let array = batch.column(column).as_ref();
        Ok((
            cell_json(array, row, &options)?,
            cell_text(array, row, &options)?,
        ))
    };
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = layout
                .pivots
                .iter()
                .map(|&c| {
                    cell(batch, c, row).map(|(v, t)| (v, t.unwrap_or_else(|| "∅".to_string())))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let pivot_text = values
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(KEY_SEPARATOR);
            if !keys.iter().any(|k| k.text == pivot_text) {
                keys.push(PivotKey {
                    values,
                    text: pivot_text.clone(),
                });
            }
            let dimensions = layout
                .dimensions()
                .map(|c| cell(batch, c, row))
                .collect::<Result<Vec<_>, _>>()?;
            let group = group_key(&dimensions);
            let at = *index.entry(group).or_insert_with(|| {
                rows.push(PivotRow {
                    dimensions,
                    measures: vec![BTreeMap::new(); layout.measures().count()],
                });
                rows.len() - 1
            });
            for (m, column) in layout.measures().enumerate() {
                let value = cell(batch, column, row)?;
                if let Some(slot) = rows.get_mut(at).and_then(|r| r.measures.get_mut(m)) {
                    slot.insert(pivot_text.clone(), value);
                }
            }
        }
    }
    // By the first pivot's value, then the next: numbers by size, anything else by text.
    keys.sort_by(|a, b| {
        a.values
            .iter()
            .zip(&b.values)
            .map(|((x, xt), (y, yt))| match (x, y) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .partial_cmp(&y.as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal),
                _ => xt.cmp(yt),
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(Pivoted { keys, rows })
}

/// The key of a row's group: its dimension values.
fn group_key(dimensions: &[(Value, Option<String>)]) -> String {
    serde_json::to_string(&dimensions.iter().map(|(v, _)| v).collect::<Vec<_>>())
        .unwrap_or_default()
}

/// Adds the row totals column: `batches` hold the unpivoted dimensions (in the layout's order)
/// then the measures, one row per group of the pivoted rows.
pub fn add_row_totals(pivoted: &mut Pivoted, batches: &[RecordBatch]) -> Result<(), EncodeError> {
    let options = EncodeOptions::default();
    let Some(dimensions) = pivoted.rows.first().map(|r| r.dimensions.len()) else {
        return Ok(());
    };
    let mut by_group = BTreeMap::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells = (0..batch.num_columns())
                .map(|c| {
                    let array = batch.column(c).as_ref();
                    Ok((
                        cell_json(array, row, &options)?,
                        cell_text(array, row, &options)?,
                    ))
                })
                .collect::<Result<Vec<_>, EncodeError>>()?;
            let (group, measures) = cells.split_at(dimensions.min(cells.len()));
            by_group.insert(group_key(group), measures.to_vec());
        }
    }
    for row in &mut pivoted.rows {
        if let Some(totals) = by_group.get(&group_key(&row.dimensions)) {
            for (slot, total) in row.measures.iter_mut().zip(totals) {
                slot.insert(ROW_TOTAL.to_string(), total.clone());
            }
        }
    }
    pivoted.keys.push(PivotKey {
        values: Vec::new(),
        text: ROW_TOTAL.to_string(),
    });
    Ok(())
}

/// The cell form of each JSON layout.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CellForm {
    /// The raw value (`json`, `json_bi`).
    Value,
    /// Display text (`json` with `apply_formatting`).
    Text,
    /// `{"value": v}` (`json_detail`).
    Detail,
}

fn cell_value(cell: Option<&(Value, Option<String>)>, form: CellForm) -> Value {
    let (value, text) = match cell {
        Some((v, t)) => (v.clone(), t.clone()),
        None => (Value::Null, None),
    };
    match form {
        CellForm::Value => value,
        CellForm::Text => text.map(Value::String).unwrap_or(Value::Null),
        CellForm::Detail => json!({ "value": value }),
    }
}

/// The rows as Looker's pivoted JSON: dimensions as usual, each measure an object keyed by pivot.
pub fn json_rows(pivoted: &Pivoted, layout: &Layout<'_>, form: CellForm) -> Vec<Value> {
    let dimension_names: Vec<&str> = layout
        .dimensions()
        .map(|i| layout.fields[i].name.as_str())
        .collect();
    let measure_names: Vec<&str> = layout
        .measures()
        .map(|i| layout.fields[i].name.as_str())
        .collect();
    pivoted
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for (name, cell) in dimension_names.iter().zip(&row.dimensions) {
                object.insert(name.to_string(), cell_value(Some(cell), form));
            }
            for (name, cells) in measure_names.iter().zip(&row.measures) {
                let by_key: Map<String, Value> = pivoted
                    .keys
                    .iter()
                    .map(|k| (k.text.clone(), cell_value(cells.get(&k.text), form)))
                    .collect();
                object.insert(name.to_string(), Value::Object(by_key));
            }
            Value::Object(object)
        })
        .collect()
}

/// The `pivots` list of `json_detail` and `json_bi`.
pub fn pivot_list(pivoted: &Pivoted, layout: &Layout<'_>) -> Value {
    let names: Vec<&str> = layout
        .pivots
        .iter()
        .map(|&i| layout.fields[i].name.as_str())
        .collect();
    Value::Array(
        pivoted
            .keys
            .iter()
            .map(|k| {
                let data: Map<String, Value> = names
                    .iter()
                    .zip(&k.values)
                    .map(|(n, (v, _))| (n.to_string(), v.clone()))
                    .collect();
                json!({
                    "key": k.text,
                    "data": data,
                    "sort_values": data,
                    "is_total": k.text == ROW_TOTAL,
                })
            })
            .collect(),
    )
}

/// The pivoted result as one table of text for the tabular formats: the dimensions, then one
/// column per measure and combination of pivot values, headed `Measure Label | value | value`.
pub fn table(pivoted: &Pivoted, layout: &Layout<'_>) -> Result<RecordBatch, EncodeError> {
    let mut headers: Vec<String> = layout
        .dimensions()
        .map(|i| layout.fields[i].label.clone())
        .collect();
    for m in layout.measures() {
        for k in &pivoted.keys {
            let values: Vec<&str> = k.values.iter().map(|(_, t)| t.as_str()).collect();
            let column = if k.text == ROW_TOTAL {
                "Row Total".to_string()
            } else {
                values.join(" | ")
            };
            headers.push(format!("{} | {column}", layout.fields[m].label));
        }
    }
    let mut columns: Vec<StringBuilder> = headers.iter().map(|_| StringBuilder::new()).collect();
    for row in &pivoted.rows {
        let mut cells: Vec<Option<String>> = row
            .dimensions
            .iter()
            .map(|(_, text)| text.clone())
            .collect();
        for measure in &row.measures {
            for k in &pivoted.keys {
                cells.push(measure.get(&k.text).and_then(|(_, t)| t.clone()));
            }
        }
        for (builder, cell) in columns.iter_mut().zip(cells) {
            builder.append_option(cell);
        }
    }
    let schema = Arc::new(Schema::new(
        headers
            .iter()
            .map(|h| ArrowField::new(h, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}
