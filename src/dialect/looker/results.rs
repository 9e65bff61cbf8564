//! Looker's result formats, written from a finished job's batch stream. The tabular formats go
//! through polyquery's encoders with the columns renamed to field labels; the JSON layouts of
//! Looker's own (`json_detail`, `json_bi`, formatted `json`) are streamed here row by row, every
//! cell through the shared cell formatter.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field as ArrowField, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value, json};

use super::pivot;
use super::query::Sort;
use super::semantic::{Field, FieldType, title_case};
use crate::encode::{EncodeOptions, Format, cell_json, cell_text};
use crate::wire::body::encoded;
use crate::wire::{BoxError, FormatLabel, Response};

/// A `result_format` polyquery writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultFormat {
    Json,
    JsonDetail,
    JsonBi,
    JsonLabel,
    JsonFe,
    InlineJson,
    Csv,
    Txt,
    Md,
    Html,
    Xlsx,
    /// A Google Sheets list feed (Atom, one `gsx:` element per column).
    Gsxml,
    Sql,
}

impl ResultFormat {
    pub const ALL: [ResultFormat; 13] = [
        ResultFormat::Json,
        ResultFormat::JsonDetail,
        ResultFormat::JsonBi,
        ResultFormat::JsonLabel,
        ResultFormat::JsonFe,
        ResultFormat::InlineJson,
        ResultFormat::Csv,
        ResultFormat::Txt,
        ResultFormat::Md,
        ResultFormat::Html,
        ResultFormat::Xlsx,
        ResultFormat::Gsxml,
        ResultFormat::Sql,
    ];

    pub fn parse(name: &str) -> Option<ResultFormat> {
        ResultFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ResultFormat::Json => "json",
            ResultFormat::JsonDetail => "json_detail",
            ResultFormat::JsonBi => "json_bi",
            ResultFormat::JsonLabel => "json_label",
            ResultFormat::JsonFe => "json_fe",
            ResultFormat::InlineJson => "inline_json",
            ResultFormat::Csv => "csv",
            ResultFormat::Txt => "txt",
            ResultFormat::Md => "md",
            ResultFormat::Html => "html",
            ResultFormat::Xlsx => "xlsx",
            ResultFormat::Gsxml => "gsxml",
            ResultFormat::Sql => "sql",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json
            | ResultFormat::JsonDetail
            | ResultFormat::JsonBi
            | ResultFormat::JsonLabel
            | ResultFormat::JsonFe
            | ResultFormat::InlineJson => "application/json",
            ResultFormat::Csv => Format::Csv.content_type(),
            ResultFormat::Txt => Format::Text.content_type(),
            ResultFormat::Md => Format::Markdown.content_type(),
            ResultFormat::Html => Format::Html.content_type(),
            ResultFormat::Xlsx => Format::Xlsx.content_type(),
            ResultFormat::Gsxml => "application/xml",
            ResultFormat::Sql => "application/sql; charset=utf-8",
        }
    }

    /// The formats Looker's API names but polyquery does not write, with the reason.
    pub fn unsupported_reason(name: &str) -> Option<&'static str> {
        matches!(name, "odc" | "png" | "jpg")
            .then_some("is a Looker format polyquery does not write")
    }
}

/// What a result needs besides its rows: the fields it holds and how it was made.
#[derive(Clone, Debug)]
pub struct ResultMeta {
    pub fields: Vec<Field>,
    pub sql: String,
    /// `(name, label, description)` of the explore, `None` for SQL Runner results.
    pub explore: Option<(String, String, Option<String>)>,
    pub sorts: Vec<Sort>,
    /// The positions in `fields` of the dimensions pivoted on, in pivot order.
    pub pivots: Vec<usize>,
    /// The names of the table calculations among `fields`.
    pub table_calcs: Vec<String>,
    /// The totals row's statement (`total: true`), run once the result is ready.
    pub totals_sql: Option<String>,
    /// `totals_data`: each measure's total as `{"value": v}`.
    pub totals: Option<Map<String, Value>>,
    /// The row totals' statement (`row_total` on a pivoted query), run once the result is ready.
    pub row_totals_sql: Option<String>,
    /// Its rows, as batches: the unpivoted dimensions, then the measures.
    pub row_totals: Option<Vec<RecordBatch>>,
    pub filters: Map<String, Value>,
    pub apply_formatting: bool,
    /// The task or job id shown in `json_detail`.
    pub id: String,
    pub ran_at: String,
    pub runtime: f64,
    pub from_cache: bool,
}

fn respond(format: ResultFormat, body: crate::wire::Body) -> Response {
    let mut response = hyper::Response::new(body);
    if let Ok(v) = HeaderValue::from_str(format.content_type()) {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    response.extensions_mut().insert(FormatLabel(format.name()));
    response
}

/// The response for a succeeded result.
pub async fn render(
    format: ResultFormat,
    meta: ResultMeta,
    stream: SendableRecordBatchStream,
) -> Response {
    if !meta.pivots.is_empty() && format != ResultFormat::Sql {
        return render_pivoted(format, meta, stream).await;
    }
    match format {
        ResultFormat::Sql => respond(format, crate::wire::full(meta.sql.clone())),
        ResultFormat::Json | ResultFormat::InlineJson if !meta.apply_formatting => respond(
            format,
            encoded(stream, Format::Json, EncodeOptions::default()),
        ),
        ResultFormat::Json | ResultFormat::InlineJson => {
            respond(format, json_stream(meta, stream, Layout::Plain))
        }
        // `json_fe`, the format Looker's own front end reads, carries what `json_detail` does.
        ResultFormat::JsonDetail | ResultFormat::JsonFe => {
            respond(format, json_stream(meta, stream, Layout::Detail))
        }
        ResultFormat::JsonBi => respond(format, json_stream(meta, stream, Layout::Bi)),
        ResultFormat::JsonLabel => respond(format, json_stream(meta, stream, Layout::Label)),
        ResultFormat::Gsxml => respond(format, json_stream(meta, stream, Layout::Gsxml)),
        ResultFormat::Csv => tabular(format, Format::Csv, &meta, stream),
        ResultFormat::Txt => tabular(format, Format::Text, &meta, stream),
        ResultFormat::Md => tabular(format, Format::Markdown, &meta, stream),
        ResultFormat::Html => tabular(format, Format::Html, &meta, stream),
        ResultFormat::Xlsx => tabular(format, Format::Xlsx, &meta, stream),
    }
}

/// A pivoted result: gathered, regrouped, then written whole (see `pivot`).
async fn render_pivoted(
    format: ResultFormat,
    meta: ResultMeta,
    stream: SendableRecordBatchStream,
) -> Response {
    let batches = match datafusion::physical_plan::common::collect(stream).await {
        Ok(b) => b,
        Err(e) => return render_failure(format, &meta, &e.to_string()),
    };
    let pivots = meta.pivots.clone();
    let layout = pivot::Layout {
        fields: &meta.fields,
        pivots: &pivots,
    };
    let mut pivoted = match pivot::pivot(&batches, &layout) {
        Ok(p) => p,
        Err(e) => return render_failure(format, &meta, &e.to_string()),
    };
    if let Some(totals) = &meta.row_totals
        && let Err(e) = pivot::add_row_totals(&mut pivoted, totals)
    {
        return render_failure(format, &meta, &e.to_string());
    }
    let whole = |value: Value| respond(format, crate::wire::full(value.to_string()));
    let tabular_format = match format {
        ResultFormat::Json | ResultFormat::InlineJson | ResultFormat::JsonLabel => {
            let form = if meta.apply_formatting {
                pivot::CellForm::Text
            } else {
                pivot::CellForm::Value
            };
            return whole(Value::Array(pivot::json_rows(&pivoted, &layout, form)));
        }
        ResultFormat::JsonDetail | ResultFormat::JsonFe => {
            let mut body = detail_head(&meta);
            body.insert("pivots".into(), pivot::pivot_list(&pivoted, &layout));
            body.insert(
                "data".into(),
                Value::Array(pivot::json_rows(&pivoted, &layout, pivot::CellForm::Detail)),
            );
            if let Some(totals) = &meta.totals {
                body.insert("totals_data".into(), Value::Object(totals.clone()));
            }
            body.insert("drill_menu_build_time".into(), json!(0));
            body.insert("has_subtotals".into(), json!(false));
            return whole(Value::Object(body));
        }
        ResultFormat::JsonBi => {
            let mut body = bi_head(&meta);
            if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.insert("pivots".into(), pivot::pivot_list(&pivoted, &layout));
            }
            body.insert(
                "rows".into(),
                Value::Array(pivot::json_rows(&pivoted, &layout, pivot::CellForm::Value)),
            );
            return whole(Value::Object(body));
        }
        ResultFormat::Csv => Format::Csv,
        ResultFormat::Txt => Format::Text,
        ResultFormat::Md => Format::Markdown,
        ResultFormat::Html => Format::Html,
        ResultFormat::Xlsx => Format::Xlsx,
        ResultFormat::Gsxml => {
            // One element per pivoted column, named after its header.
            let table = match pivot::table(&pivoted, &layout) {
                Ok(t) => t,
                Err(e) => return render_failure(format, &meta, &e.to_string()),
            };
            let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                table.schema(),
                futures::stream::iter(vec![Ok(table)]),
            ));
            let meta = ResultMeta {
                fields: Vec::new(),
                ..meta
            };
            return respond(format, json_stream(meta, stream, Layout::Gsxml));
        }
        ResultFormat::Sql => return respond(format, crate::wire::full(meta.sql.clone())),
    };
    let table = match pivot::table(&pivoted, &layout) {
        Ok(t) => t,
        Err(e) => return render_failure(format, &meta, &e.to_string()),
    };
    let schema = table.schema();
    let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(vec![Ok(table)]),
    ));
    respond(format, encoded(stream, tabular_format, tabular_options()))
}

/// The answer for a query that failed: `json_detail` is still a 200 carrying `errors[]`, every
/// other format a 400 Looker error.
pub fn render_failure(format: ResultFormat, meta: &ResultMeta, message: &str) -> Response {
    if matches!(format, ResultFormat::JsonDetail | ResultFormat::JsonFe) {
        let mut body = detail_head(meta);
        body.insert("data".into(), Value::Array(Vec::new()));
        body.insert("errors".into(), json!([error_item(message, &meta.sql)]));
        body.insert("drill_menu_build_time".into(), json!(0));
        body.insert("has_subtotals".into(), json!(false));
        let mut response = crate::wire::with_body(
            StatusCode::OK,
            format.content_type(),
            serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        );
        response.extensions_mut().insert(FormatLabel(format.name()));
        return response;
    }
    super::error::LookerError::bad_request(message).into_response()
}

/// One `errors[]` item of a failed `json_detail` result.
pub fn error_item(message: &str, sql: &str) -> Value {
    json!({
        "message": "The database encountered an error while running this query.",
        "message_details": message,
        "params": sql,
        "edit_url": null,
        "error_pos": null,
        "level": "error",
        "documentation_url": super::error::DOCUMENTATION_URL,
    })
}

/// The tabular formats: the columns renamed to field labels, then polyquery's encoder.
fn tabular(
    format: ResultFormat,
    encoding: Format,
    meta: &ResultMeta,
    stream: SendableRecordBatchStream,
) -> Response {
    let schema = stream.schema();
    let labelled: Vec<ArrowField> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let label = meta
                .fields
                .get(i)
                .map(|m| m.label.clone())
                .unwrap_or_else(|| f.name().clone());
            f.as_ref().clone().with_name(label)
        })
        .collect();
    let labelled = Arc::new(Schema::new(labelled));
    let renamed_schema = labelled.clone();
    let renamed = stream.map(move |batch| {
        batch.and_then(|b| {
            RecordBatch::try_new(renamed_schema.clone(), b.columns().to_vec()).map_err(Into::into)
        })
    });
    let stream: SendableRecordBatchStream =
        Box::pin(RecordBatchStreamAdapter::new(labelled, renamed));
    respond(format, encoded(stream, encoding, tabular_options()))
}

fn tabular_options() -> EncodeOptions {
    EncodeOptions {
        sheet_name: "Looker".to_string(),
        table_name: String::new(),
        ..EncodeOptions::default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `[{"view.field": "formatted"}]`
    Plain,
    /// `json_detail`: `{..., "data": [{"view.field": {"value": v}}], ...}`
    Detail,
    /// `json_bi`: `{"metadata": {...}, "rows": [{"view.field": v}]}`
    Bi,
    /// `json_label`: `[{"View Field": v}]`
    Label,
    /// `gsxml`: `<entry><gsx:viewfield>text</gsx:viewfield></entry>`
    Gsxml,
}

/// Field metadata as `json_detail` describes each field.
fn field_detail(field: &Field, sorts: &[Sort]) -> Value {
    let sorted = sorts
        .iter()
        .position(|s| s.field == field.name)
        .map(|i| json!({"sort_index": i, "desc": sorts[i].desc}));
    let mut v = json!({
        "name": field.name,
        "label": field.label,
        "label_short": field.label_short,
        "view": field.view,
        "view_label": field.view_label,
        "category": field.category(),
        "type": field.measure.map(|m| m.name()).unwrap_or(field.field_type.name()),
        "align": if field.field_type.is_numeric() { "right" } else { "left" },
        "is_numeric": field.field_type.is_numeric(),
        "measure": field.is_measure(),
        "hidden": false,
        "primary_key": field.primary_key,
        "sortable": true,
        "can_filter": true,
        "value_format": null,
        "sql": field.sql_text,
    });
    if let (Some(sorted), Some(map)) = (sorted, v.as_object_mut()) {
        map.insert("sorted".into(), sorted);
    }
    v
}

/// The `json_detail` keys that come before `data`, in Looker's order.
fn detail_head(meta: &ResultMeta) -> Map<String, Value> {
    let pivots: Vec<&Field> = meta
        .pivots
        .iter()
        .filter_map(|&i| meta.fields.get(i))
        .collect();
    let calcs: Vec<&Field> = meta
        .fields
        .iter()
        .filter(|f| meta.table_calcs.contains(&f.name))
        .collect();
    let (dimensions, measures): (Vec<&Field>, Vec<&Field>) = meta
        .fields
        .iter()
        .filter(|f| !pivots.iter().any(|p| p.name == f.name))
        .filter(|f| !meta.table_calcs.contains(&f.name))
        .partition(|f| !f.is_measure());
    let describe = |fs: Vec<&Field>| -> Vec<Value> {
        fs.into_iter()
            .map(|f| field_detail(f, &meta.sorts))
            .collect()
    };
    let explore = match &meta.explore {
        Some((name, label, description)) => {
            json!({"name": name, "label": label, "description": description})
        }
        None => Value::Null,
    };
    let added_sorts: Vec<String> = meta
        .sorts
        .iter()
        .map(|s| {
            if s.desc {
                format!("{} desc", s.field)
            } else {
                s.field.clone()
            }
        })
        .collect();
    let mut head = Map::new();
    for (k, v) in [
        ("from_cache", json!(meta.from_cache)),
        ("id", json!(meta.id)),
        ("supports_pivot_in_db", json!(false)),
        ("null_sort_treatment", json!("low")),
        ("expired", json!(false)),
        ("ran_at", json!(meta.ran_at)),
        ("aggregate_table_used_info", Value::Null),
        ("runtime", json!(format!("{:.3}", meta.runtime))),
        ("added_params", json!({"sorts": added_sorts})),
        ("forecast_result", Value::Null),
        ("sql", json!(meta.sql)),
        ("sql_explain", json!(format!("EXPLAIN {}", meta.sql))),
        (
            "fields",
            json!({
                "measures": describe(measures),
                "dimensions": describe(dimensions),
                "table_calculations": describe(calcs)
                    .into_iter()
                    .map(|mut v| {
                        if let Some(map) = v.as_object_mut() {
                            map.insert("category".into(), json!("table_calculation"));
                            map.insert("is_table_calculation".into(), json!(true));
                        }
                        v
                    })
                    .collect::<Vec<_>>(),
                "pivots": describe(pivots),
            }),
        ),
        ("fill_fields", json!([])),
        ("has_totals", json!(meta.totals.is_some())),
        ("has_row_totals", json!(meta.row_totals.is_some())),
        ("applied_filters", Value::Object(applied_filters(meta))),
        ("applied_filter_expression", Value::Null),
        ("number_format", json!("1,234.56")),
        ("explore", explore),
        ("timezone", json!("UTC")),
    ] {
        head.insert(k.to_string(), v);
    }
    head
}

fn applied_filters(meta: &ResultMeta) -> Map<String, Value> {
    meta.filters
        .iter()
        .map(|(name, value)| {
            let field = meta.fields.iter().find(|f| &f.name == name);
            (
                name.clone(),
                json!({
                    "field": field.map(|f| field_detail(f, &[])),
                    "value": value,
                }),
            )
        })
        .collect()
}

fn bi_head(meta: &ResultMeta) -> Map<String, Value> {
    let bi_field = |f: &Field| {
        json!({
            "sql": f.sql_text,
            "view": f.view,
            "dimension_group": null,
            "category": f.category(),
            "field_group_label": null,
            "name": f.name,
            "type": f.measure.map(|m| m.name()).unwrap_or(f.field_type.name()),
            "view_label": f.view_label,
            "label": f.label,
            "field_group_variant": f.label_short,
            "hidden": false,
            "description": null,
        })
    };
    let (dimensions, measures): (Vec<&Field>, Vec<&Field>) =
        meta.fields.iter().partition(|f| !f.is_measure());
    let mut head = Map::new();
    head.insert(
        "metadata".into(),
        json!({
            "big_query_metadata": {"total_bytes_processed": 0, "backend_cache_hit": meta.from_cache},
            "fields": {
                "dimensions": dimensions.into_iter().map(bi_field).collect::<Vec<_>>(),
                "measures": measures.into_iter().map(bi_field).collect::<Vec<_>>(),
                "pivots": [],
                "table_calculations": [],
            },
            "pivots": [],
            "has_subtotals": false,
            "has_totals": meta.totals.is_some(),
            "columns_truncated": "false",
            "filter_expression": null,
            "filters": meta.filters,
            "sql": meta.sql,
        }),
    );
    head
}

/// Serializes a map as an object missing its closing brace, so more keys can follow.
fn open_object(map: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
    text.pop();
    if map.is_empty() {
        text
    } else {
        text.push(',');
        text
    }
}

/// One row of a batch in the layout's cell form.
fn row_json(
    batch: &RecordBatch,
    names: &[String],
    row: usize,
    layout: Layout,
    options: &EncodeOptions,
) -> Result<Value, BoxError> {
    let mut object = Map::new();
    for (i, name) in names.iter().enumerate() {
        let column = batch.column(i);
        let value = cell_json(column.as_ref(), row, options)?;
        let cell = match layout {
            Layout::Plain => match cell_text(column.as_ref(), row, options)? {
                Some(text) if !value.is_null() => Value::String(text),
                _ => Value::Null,
            },
            Layout::Bi | Layout::Label => value,
            Layout::Gsxml => match cell_text(column.as_ref(), row, options)? {
                Some(text) if !value.is_null() => Value::String(text),
                _ => Value::String(String::new()),
            },
            Layout::Detail => {
                let mut cell = json!({ "value": value });
                if let (Some(text), Some(map)) = (
                    cell_text(column.as_ref(), row, options)?,
                    cell.as_object_mut(),
                ) && !value.is_string()
                {
                    map.insert("rendered".into(), Value::String(text));
                }
                cell
            }
        };
        object.insert(name.clone(), cell);
    }
    Ok(Value::Object(object))
}

/// A JSON layout streamed: the head, the rows as batches arrive, the tail.
fn json_stream(
    meta: ResultMeta,
    stream: SendableRecordBatchStream,
    layout: Layout,
) -> crate::wire::Body {
    let schema = stream.schema();
    // `json_label` and `gsxml` name columns by label (a SQL Runner or pivoted column by its own).
    let label = |i: usize, f: &ArrowField| {
        meta.fields
            .get(i)
            .filter(|_| meta.fields.len() == schema.fields().len())
            .map(|m| m.label.clone())
            .unwrap_or_else(|| f.name().clone())
    };
    let names: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match layout {
            Layout::Label => label(i, f),
            Layout::Gsxml => gsx_name(&label(i, f)),
            _ => f.name().clone(),
        })
        .collect();
    let (head, tail) = match layout {
        Layout::Plain | Layout::Label => ("[".to_string(), "]".to_string()),
        Layout::Gsxml => (
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:gsx="http://schemas.google.com/spreadsheets/2006/extended">"#,
            )
            .to_string(),
            "</feed>".to_string(),
        ),
        Layout::Detail => (
            format!("{}\"data\":[", open_object(&detail_head(&meta))),
            format!(
                "],{}\"drill_menu_build_time\":0,\"has_subtotals\":false}}",
                meta.totals
                    .as_ref()
                    .map(|t| format!("\"totals_data\":{},", Value::Object(t.clone())))
                    .unwrap_or_default()
            ),
        ),
        Layout::Bi => (
            format!("{}\"rows\":[", open_object(&bi_head(&meta))),
            "]}".to_string(),
        ),
    };
    let options = EncodeOptions::default();
    let mut stream = stream;
    let runtime = tokio::runtime::Handle::current();
    crate::wire::body::written(move |mut out| {
        out.write_all(head.as_bytes())?;
        let mut first = true;
        let mut row_bytes = Vec::new();
        while let Some(batch) = runtime.block_on(stream.next()) {
            let batch = batch?;
            for row in 0..batch.num_rows() {
                let value = row_json(&batch, &names, row, layout, &options)?;
                row_bytes.clear();
                if layout == Layout::Gsxml {
                    gsx_entry(&mut row_bytes, &value);
                } else {
                    if !first {
                        row_bytes.push(b',');
                    }
                    first = false;
                    serde_json::to_writer(&mut row_bytes, &value)?;
                }
                out.write_all(&row_bytes)?;
            }
        }
        out.write_all(tail.as_bytes())?;
        Ok(())
    })
}

/// A Google Sheets list-feed column name: the header lower-cased, letters and digits only.
fn gsx_name(header: &str) -> String {
    let name: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    // An XML name cannot be empty or start with a digit.
    match name.chars().next() {
        Some(c) if !c.is_ascii_digit() => name,
        _ => format!("c{name}"),
    }
}

/// One `<entry>` of a `gsxml` feed from a row already rendered as `{name: text}`.
fn gsx_entry(out: &mut Vec<u8>, row: &Value) {
    out.extend_from_slice(b"<entry>");
    for (name, text) in row.as_object().into_iter().flatten() {
        let text = text.as_str().unwrap_or_default();
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        out.extend_from_slice(format!("<gsx:{name}>{escaped}</gsx:{name}>").as_bytes());
    }
    out.extend_from_slice(b"</entry>");
}

/// Field metadata for a raw-SQL (SQL Runner) result: one dimension per column.
pub fn raw_fields(schema: &Schema) -> Vec<Field> {
    schema
        .fields()
        .iter()
        .map(|f| Field {
            name: f.name().clone(),
            view: String::new(),
            short_name: f.name().clone(),
            label: title_case(f.name()),
            label_short: title_case(f.name()),
            view_label: String::new(),
            field_type: FieldType::of_arrow(f.data_type()),
            measure: None,
            primary_key: false,
            sql_text: String::new(),
            expr: sqlparser::ast::Expr::Identifier(sqlparser::ast::Ident::with_quote(
                '"',
                f.name(),
            )),
        })
        .collect()
}

/// Rejects encoder options before a response starts (a format that cannot be written at all).
pub fn check_format(name: &str) -> Result<ResultFormat, String> {
    if let Some(f) = ResultFormat::parse(name) {
        return Ok(f);
    }
    Err(match ResultFormat::unsupported_reason(name) {
        Some(reason) => format!("result format {name:?} {reason}"),
        None => format!(
            "unknown result format {name:?}; use one of {}",
            ResultFormat::ALL.map(|f| f.name()).join(", ")
        ),
    })
}
