//! The small semantic layer a Looker query needs: models, their explores (a base view plus joins),
//! and each view's dimensions and measures, every one of them an SQL expression already parsed into
//! the sqlparser AST.
//!
//! Two sources of models:
//! - the model `polyquery`, made from the catalog: each table is an explore and a view of the same
//!   name, with one dimension per column and a `count` measure;
//! - model files (TOML, format in the README): the shipped `thelook` and `system__activity`, plus any
//!   `*.toml` in `looker.model_dir`.
//!
//! Model files are configuration, trusted like the tables themselves; the text they hold is parsed
//! here, once. What a client sends is only ever looked up in these models, never parsed as SQL.

use std::path::Path;

use datafusion::arrow::datatypes::{DataType, Schema};
use serde::Deserialize;
use sqlparser::ast::{Expr, Ident, TableWithJoins};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::exec::Catalog;

/// The model every catalog table belongs to.
pub const CATALOG_MODEL: &str = "polyquery";

/// The models polyquery ships, as `(name, file text)`.
const SHIPPED: &[(&str, &str)] = &[
    ("thelook", include_str!("models/thelook.toml")),
    (
        "system__activity",
        include_str!("models/system__activity.toml"),
    ),
];

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: {message}")]
    Invalid { model: String, message: String },
    #[error("model {model}: cannot read {path}: {source}")]
    Io {
        model: String,
        path: String,
        source: std::io::Error,
    },
}

/// What a field is to SQL and to clients (Looker's field `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Date,
    Time,
    Yesno,
}

impl FieldType {
    pub fn of_arrow(data_type: &DataType) -> FieldType {
        match data_type {
            d if d.is_numeric() => FieldType::Number,
            DataType::Boolean => FieldType::Yesno,
            DataType::Date32 | DataType::Date64 => FieldType::Date,
            DataType::Timestamp(..) => FieldType::Time,
            _ => FieldType::String,
        }
    }

    /// Looker's spelling of the type in field metadata.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Time => "date_time",
            FieldType::Yesno => "yesno",
        }
    }

    pub fn is_numeric(self) -> bool {
        self == FieldType::Number
    }
}

/// How a measure aggregates its expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureType {
    Count,
    CountDistinct,
    Sum,
    Average,
    Min,
    Max,
}

impl MeasureType {
    pub fn name(self) -> &'static str {
        match self {
            MeasureType::Count => "count",
            MeasureType::CountDistinct => "count_distinct",
            MeasureType::Sum => "sum",
            MeasureType::Average => "average",
            MeasureType::Min => "min",
            MeasureType::Max => "max",
        }
    }
}

/// A dimension or a measure of a view.
#[derive(Clone, Debug)]
pub struct Field {
    /// `view.field`, the name clients use.
    pub name: String,
    pub view: String,
    pub short_name: String,
    pub label: String,
    pub label_short: String,
    pub view_label: String,
    pub field_type: FieldType,
    /// `Some` for a measure.
    pub measure: Option<MeasureType>,
    pub primary_key: bool,
    /// The model's SQL for it, as written (shown in field metadata).
    pub sql_text: String,
    /// The whole expression the query selects (the aggregate, for a measure).
    pub expr: Expr,
}

impl Field {
    pub fn is_measure(&self) -> bool {
        self.measure.is_some()
    }

    /// `dimension` or `measure`.
    pub fn category(&self) -> &'static str {
        if self.is_measure() {
            "measure"
        } else {
            "dimension"
        }
    }
}

/// A join of a view into an explore.
#[derive(Clone, Debug)]
pub struct Join {
    pub view: String,
}

/// A base view and its joins: what a query's `view` names.
#[derive(Clone, Debug)]
pub struct Explore {
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    pub base_view: String,
    pub joins: Vec<Join>,
    /// The FROM clause, parsed once.
    pub from: Vec<TableWithJoins>,
    /// Every field of every view in the explore, by `view.field`, in model order.
    pub fields: Vec<Field>,
}

impl Explore {
    /// A field by `view.field`, exact first, then ignoring case.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name).or_else(|| {
            self.fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
        })
    }
}

/// A model: a set of explores.
#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub label: String,
    pub explores: Vec<Explore>,
}

impl Model {
    pub fn explore(&self, name: &str) -> Option<&Explore> {
        self.explores.iter().find(|e| e.name == name).or_else(|| {
            self.explores
                .iter()
                .find(|e| e.name.eq_ignore_ascii_case(name))
        })
    }
}

/// Every model polyquery serves.
#[derive(Clone, Debug, Default)]
pub struct Models {
    pub models: Vec<Model>,
}

impl Models {
    /// The catalog model, the shipped models, and every `*.toml` in `model_dir`. A model whose
    /// tables are missing from the catalog is skipped with a warning, so the server still starts.
    pub fn load(catalog: &Catalog, model_dir: Option<&Path>) -> Models {
        let mut models = vec![catalog_model(catalog)];
        let mut files: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        if let Some(dir) = model_dir {
            match read_model_dir(dir) {
                Ok(found) => files.extend(found),
                Err(e) => tracing::warn!(error = %e, "looker models not loaded"),
            }
        }
        for (name, text) in files {
            match parse_model(&name, &text, catalog) {
                Ok(model) => {
                    models.retain(|m| m.name != model.name);
                    models.push(model);
                }
                Err(e) => tracing::warn!(error = %e, "looker model skipped"),
            }
        }
        Models { models }
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }
}

fn read_model_dir(dir: &Path) -> Result<Vec<(String, String)>, ModelError> {
    let io = |source| ModelError::Io {
        model: "*".into(),
        path: dir.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            model: name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        found.push((name, text));
    }
    Ok(found)
}

// --- the model-file format --------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    views: Vec<ViewFile>,
    #[serde(default)]
    explores: Vec<ExploreFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewFile {
    name: String,
    /// The catalog table; default: the view's name.
    #[serde(default)]
    table: Option<String>,
    /// A derived table: the view reads this query instead of a catalog table, and has only the
    /// dimensions it declares.
    #[serde(default)]
    derived_sql: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    primary_key: Option<String>,
    /// Whether every column of the table is a dimension (default true).
    #[serde(default = "yes")]
    column_dimensions: bool,
    #[serde(default)]
    dimensions: Vec<DimensionFile>,
    #[serde(default)]
    measures: Vec<MeasureFile>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DimensionFile {
    name: String,
    #[serde(rename = "type")]
    field_type: FieldType,
    sql: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureFile {
    name: String,
    #[serde(rename = "type")]
    measure_type: MeasureType,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExploreFile {
    name: String,
    /// The base view; default: the explore's name.
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    joins: Vec<JoinFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinFile {
    view: String,
    #[serde(rename = "type", default)]
    join_type: JoinType,
    sql_on: String,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JoinType {
    #[default]
    LeftOuter,
    Inner,
    FullOuter,
}

impl JoinType {
    fn sql(self) -> &'static str {
        match self {
            JoinType::LeftOuter => "LEFT OUTER JOIN",
            JoinType::Inner => "INNER JOIN",
            JoinType::FullOuter => "FULL OUTER JOIN",
        }
    }
}

/// A view with its fields built.
struct View {
    name: String,
    /// What the FROM clause reads: a quoted table name or a parenthesised derived query.
    source: String,
    fields: Vec<Field>,
}

fn invalid(model: &str, message: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        model: model.to_string(),
        message: message.into(),
    }
}

/// A quoted identifier: model names go into SQL only through this.
fn quoted(name: &str) -> String {
    Ident::with_quote('"', name).to_string()
}

/// Parses a model-file SQL expression; `${TABLE}` stands for the view's own alias.
fn model_expr(model: &str, view: &str, sql: &str) -> Result<Expr, ModelError> {
    let text = sql.replace("${TABLE}", &quoted(view));
    Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| invalid(model, format!("view {view}: bad SQL {sql:?}: {e}")))
}

/// "order_items" → "Order Items".
pub fn title_case(name: &str) -> String {
    name.split(['_', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.eq_ignore_ascii_case("id") {
                return "ID".to_string();
            }
            let mut chars = w.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct FieldSpec<'a> {
    short_name: &'a str,
    label: Option<&'a str>,
    field_type: FieldType,
    measure: Option<MeasureType>,
    primary_key: bool,
    sql_text: String,
    expr: Expr,
}

fn field(view: &str, view_label: &str, spec: FieldSpec<'_>) -> Field {
    let label_short = spec
        .label
        .map(str::to_string)
        .unwrap_or_else(|| title_case(spec.short_name));
    Field {
        name: format!("{view}.{}", spec.short_name),
        view: view.to_string(),
        short_name: spec.short_name.to_string(),
        label: format!("{view_label} {label_short}"),
        label_short,
        view_label: view_label.to_string(),
        field_type: spec.field_type,
        measure: spec.measure,
        primary_key: spec.primary_key,
        sql_text: spec.sql_text,
        expr: spec.expr,
    }
}

/// One dimension per column of `schema`, referenced as `"view"."column"`.
fn column_dimensions(
    model: &str,
    view: &str,
    view_label: &str,
    schema: &Schema,
    primary_key: Option<&str>,
) -> Result<Vec<Field>, ModelError> {
    schema
        .fields()
        .iter()
        .map(|column| {
            let sql_text = format!("${{TABLE}}.{}", quoted(column.name()));
            Ok(field(
                view,
                view_label,
                FieldSpec {
                    short_name: column.name(),
                    label: None,
                    field_type: FieldType::of_arrow(column.data_type()),
                    measure: None,
                    primary_key: primary_key == Some(column.name().as_str()),
                    expr: model_expr(model, view, &sql_text)?,
                    sql_text,
                },
            ))
        })
        .collect()
}

/// The aggregate a measure selects.
fn measure_expr(
    model: &str,
    view: &str,
    measure_type: MeasureType,
    sql: Option<&str>,
) -> Result<(String, Expr), ModelError> {
    let function = match measure_type {
        MeasureType::Count => "COUNT",
        MeasureType::CountDistinct => "COUNT",
        MeasureType::Sum => "SUM",
        MeasureType::Average => "AVG",
        MeasureType::Min => "MIN",
        MeasureType::Max => "MAX",
    };
    let inner = match (measure_type, sql) {
        (MeasureType::Count, None) => "*".to_string(),
        (MeasureType::Count, Some(s)) => format!("DISTINCT {s}"),
        (MeasureType::CountDistinct, Some(s)) => format!("DISTINCT {s}"),
        (_, Some(s)) => s.to_string(),
        (t, None) => {
            return Err(invalid(
                model,
                format!("view {view}: a {} measure needs sql", t.name()),
            ));
        }
    };
    let text = format!("{function}({inner})");
    Ok((
        sql.unwrap_or_default().to_string(),
        model_expr(model, view, &text)?,
    ))
}

/// `count`: rows of the view, or distinct primary keys when it has one (exact under join fan-out).
fn count_measure(
    model: &str,
    view: &str,
    view_label: &str,
    primary_key: Option<&str>,
) -> Result<Field, ModelError> {
    let key = primary_key.map(|k| format!("${{TABLE}}.{}", quoted(k)));
    let (sql_text, expr) = measure_expr(model, view, MeasureType::Count, key.as_deref())?;
    Ok(field(
        view,
        view_label,
        FieldSpec {
            short_name: "count",
            label: None,
            field_type: FieldType::Number,
            measure: Some(MeasureType::Count),
            primary_key: false,
            sql_text,
            expr,
        },
    ))
}

fn build_view(model: &str, file: &ViewFile, catalog: &Catalog) -> Result<View, ModelError> {
    let (source, schema) = match &file.derived_sql {
        Some(sql) => (format!("({sql})"), None),
        None => {
            let table_name = file.table.as_deref().unwrap_or(&file.name);
            let table = catalog.table(table_name).ok_or_else(|| {
                invalid(
                    model,
                    format!("view {}: no table {table_name} in the catalog", file.name),
                )
            })?;
            (quoted(&table.name), Some(table.schema.clone()))
        }
    };
    let view = file.name.as_str();
    let view_label = file.label.clone().unwrap_or_else(|| title_case(view));
    let mut fields = match schema {
        Some(schema) if file.column_dimensions => column_dimensions(
            model,
            view,
            &view_label,
            &schema,
            file.primary_key.as_deref(),
        )?,
        _ => Vec::new(),
    };
    for d in &file.dimensions {
        fields.retain(|f| f.short_name != d.name);
        fields.push(field(
            view,
            &view_label,
            FieldSpec {
                short_name: &d.name,
                label: d.label.as_deref(),
                field_type: d.field_type,
                measure: None,
                primary_key: file.primary_key.as_deref() == Some(d.name.as_str()),
                sql_text: d.sql.clone(),
                expr: model_expr(model, view, &d.sql)?,
            },
        ));
    }
    if !file.measures.iter().any(|m| m.name == "count") {
        fields.push(count_measure(
            model,
            view,
            &view_label,
            file.primary_key.as_deref(),
        )?);
    }
    for m in &file.measures {
        let (sql_text, expr) = measure_expr(model, view, m.measure_type, m.sql.as_deref())?;
        fields.push(field(
            view,
            &view_label,
            FieldSpec {
                short_name: &m.name,
                label: m.label.as_deref(),
                field_type: FieldType::Number,
                measure: Some(m.measure_type),
                primary_key: false,
                sql_text,
                expr,
            },
        ));
    }
    Ok(View {
        name: view.to_string(),
        source,
        fields,
    })
}

/// Parses `FROM <base> [JOIN <view> ON <sql_on>]...` into the AST; names are quoted identifiers.
fn from_clause(
    model: &str,
    base: &View,
    joins: &[(&View, &JoinFile)],
) -> Result<Vec<TableWithJoins>, ModelError> {
    let mut text = format!("SELECT 1 FROM {} AS {}", base.source, quoted(&base.name));
    for (view, join) in joins {
        text.push_str(&format!(
            " {} {} AS {} ON {}",
            join.join_type.sql(),
            view.source,
            quoted(&view.name),
            join.sql_on.replace("${TABLE}", &quoted(&view.name))
        ));
    }
    let statement = Parser::parse_sql(&GenericDialect {}, &text)
        .map_err(|e| invalid(model, format!("bad join SQL: {e}")))?;
    match statement.into_iter().next() {
        Some(sqlparser::ast::Statement::Query(q)) => match *q.body {
            sqlparser::ast::SetExpr::Select(select) => Ok(select.from),
            _ => Err(invalid(model, "bad join SQL")),
        },
        _ => Err(invalid(model, "bad join SQL")),
    }
}

fn parse_model(name: &str, text: &str, catalog: &Catalog) -> Result<Model, ModelError> {
    let file: ModelFile = toml::from_str(text).map_err(|e| invalid(name, e.to_string()))?;
    let views = file
        .views
        .iter()
        .map(|v| build_view(name, v, catalog))
        .collect::<Result<Vec<_>, _>>()?;
    let view = |n: &str| {
        views
            .iter()
            .find(|v| v.name == n)
            .ok_or_else(|| invalid(name, format!("no view {n}")))
    };
    let mut explores = Vec::new();
    for e in &file.explores {
        let base = view(e.view.as_deref().unwrap_or(&e.name))?;
        let joined = e
            .joins
            .iter()
            .map(|j| Ok((view(&j.view)?, j)))
            .collect::<Result<Vec<_>, ModelError>>()?;
        let mut fields = base.fields.clone();
        for (v, _) in &joined {
            fields.extend(v.fields.iter().cloned());
        }
        explores.push(Explore {
            name: e.name.clone(),
            label: e.label.clone().unwrap_or_else(|| title_case(&e.name)),
            description: e.description.clone(),
            base_view: base.name.clone(),
            joins: e
                .joins
                .iter()
                .map(|j| Join {
                    view: j.view.clone(),
                })
                .collect(),
            from: from_clause(name, base, &joined)?,
            fields,
        });
    }
    Ok(Model {
        name: name.to_string(),
        label: file.label.unwrap_or_else(|| title_case(name)),
        explores,
    })
}

/// The `polyquery` model: every catalog table as an explore of one view.
fn catalog_model(catalog: &Catalog) -> Model {
    let explores = catalog
        .tables
        .iter()
        .filter_map(|table| {
            let file = ViewFile {
                name: table.name.clone(),
                table: Some(table.name.clone()),
                derived_sql: None,
                label: None,
                primary_key: None,
                column_dimensions: true,
                dimensions: Vec::new(),
                measures: Vec::new(),
            };
            let built = build_view(CATALOG_MODEL, &file, catalog)
                .and_then(|v| Ok((from_clause(CATALOG_MODEL, &v, &[])?, v)));
            match built {
                Ok((from, view)) => Some(Explore {
                    name: view.name.clone(),
                    label: title_case(&view.name),
                    description: Some(table.description.clone()).filter(|d| !d.is_empty()),
                    base_view: view.name.clone(),
                    joins: Vec::new(),
                    from,
                    fields: view.fields,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "table left out of the polyquery model");
                    None
                }
            }
        })
        .collect();
    Model {
        name: CATALOG_MODEL.to_string(),
        label: "polyquery".to_string(),
        explores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_title_case() {
        assert_eq!(title_case("order_items"), "Order Items");
        assert_eq!(title_case("count"), "Count");
        assert_eq!(title_case("user_id"), "User ID");
    }
}
