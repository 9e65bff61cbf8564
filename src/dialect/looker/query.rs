//! Looker queries: the `Query` a client creates (kept here, as real Looker keeps them), and its
//! compilation against a model's explore into one SQL statement, built on the sqlparser AST.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlparser::ast::{
    Expr, GroupByExpr, Ident, LimitClause, OrderBy, OrderByExpr, OrderByKind, OrderByOptions,
    Query as SqlQuery, SelectItem, SetExpr, Statement, Value as SqlValue,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::error::{ErrorDetail, LookerError};
use super::expiring::Expiring;
use super::filter;
use super::semantic::{Explore, Field, Models};
use crate::engine::SideTable;

/// Looker's row limit when a query names none.
pub const DEFAULT_LIMIT: u64 = 500;

/// What a client sends to create or run a query (Looker's `WriteQuery`). Read-only keys (`id`,
/// `can`, `slug`, ...) and unknown keys are ignored.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct WriteQuery {
    pub model: Option<String>,
    pub view: Option<String>,
    pub fields: Option<Vec<String>>,
    pub pivots: Option<Vec<String>>,
    pub fill_fields: Option<Vec<String>>,
    #[serde(deserialize_with = "filter_set")]
    pub filters: Option<Map<String, Value>>,
    pub filter_expression: Option<String>,
    pub sorts: Option<Vec<String>>,
    pub limit: Option<Value>,
    pub column_limit: Option<Value>,
    pub total: Option<bool>,
    pub row_total: Option<Value>,
    pub subtotals: Option<Vec<String>>,
    pub vis_config: Option<Value>,
    pub filter_config: Option<Value>,
    pub visible_ui_sections: Option<String>,
    pub dynamic_fields: Option<String>,
    pub client_id: Option<String>,
    pub query_timezone: Option<String>,
}

/// `filters`: a map of field to expression. The TypeScript SDK sends `[]` for an empty set, which
/// Looker takes as no filters; any other list is refused like any other non-map.
fn filter_set<'de, D>(deserializer: D) -> Result<Option<Map<String, Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(other) => Err(serde::de::Error::invalid_type(
            match &other {
                Value::Array(_) => serde::de::Unexpected::Seq,
                Value::String(s) => serde::de::Unexpected::Str(s),
                Value::Bool(b) => serde::de::Unexpected::Bool(*b),
                _ => serde::de::Unexpected::Other("a number"),
            },
            &"a map",
        )),
    }
}

/// A stored query as Looker answers it (`Query`); keys in the spec's order.
#[derive(Clone, Debug, Serialize)]
pub struct Query {
    pub can: Map<String, Value>,
    pub id: String,
    pub model: String,
    pub view: String,
    pub fields: Option<Vec<String>>,
    pub pivots: Option<Vec<String>>,
    pub fill_fields: Option<Vec<String>>,
    pub filters: Option<Map<String, Value>>,
    pub filter_expression: Option<String>,
    pub sorts: Option<Vec<String>>,
    pub limit: Option<String>,
    pub column_limit: Option<String>,
    pub total: Option<bool>,
    pub row_total: Option<String>,
    pub subtotals: Option<Vec<String>>,
    pub vis_config: Option<Value>,
    pub filter_config: Option<Value>,
    pub visible_ui_sections: Option<String>,
    pub slug: String,
    pub dynamic_fields: Option<String>,
    pub client_id: String,
    pub share_url: String,
    pub expanded_share_url: String,
    pub url: String,
    pub query_timezone: Option<String>,
    pub has_table_calculations: bool,
}

/// A JSON scalar as the string Looker keeps (`"500"` for `500`).
fn as_text(value: &Option<Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// The permissions every query offers its owner.
pub fn query_can() -> Map<String, Value> {
    [
        "run",
        "see_results",
        "explore",
        "create",
        "show",
        "cost_estimate",
        "index",
        "see_lookml",
        "see_sql",
        "generate_drill_links",
        "download",
        "download_unlimited",
    ]
    .into_iter()
    .map(|k| (k.to_string(), Value::Bool(true)))
    .collect()
}

/// Short random slugs and client ids, from the same alphabet Looker uses.
fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u128) as usize];
            n /= ALPHABET.len() as u128;
            char::from(c)
        })
        .collect()
}

/// A client-chosen query written back as Looker answers it.
fn answer(id: String, saved: &SavedQuery) -> Query {
    let SavedQuery {
        slug,
        client_id,
        model,
        view,
        write: q,
    } = saved;
    let mut url = format!("/explore/{model}/{view}");
    let fields = q.fields.clone().unwrap_or_default().join(",");
    let mut params: Vec<(&str, String)> = vec![("fields", fields)];
    if let Some(limit) = as_text(&q.limit) {
        params.push(("limit", limit));
    }
    if let Ok(encoded) = serde_urlencoded::to_string(&params) {
        url = format!("{url}?{encoded}");
    }
    Query {
        can: query_can(),
        id,
        model: model.to_string(),
        view: view.to_string(),
        fields: q.fields.clone(),
        pivots: q.pivots.clone(),
        fill_fields: q.fill_fields.clone(),
        filters: q.filters.clone(),
        filter_expression: q.filter_expression.clone(),
        sorts: q.sorts.clone(),
        limit: as_text(&q.limit),
        column_limit: as_text(&q.column_limit),
        total: q.total,
        row_total: as_text(&q.row_total),
        subtotals: q.subtotals.clone(),
        vis_config: q.vis_config.clone(),
        filter_config: q.filter_config.clone(),
        visible_ui_sections: q.visible_ui_sections.clone(),
        share_url: format!("/x/{slug}"),
        expanded_share_url: url.clone(),
        slug: slug.clone(),
        dynamic_fields: q.dynamic_fields.clone(),
        client_id: client_id.clone(),
        url,
        query_timezone: q.query_timezone.clone(),
        has_table_calculations: false,
    }
}

/// A created query: what clients see, and what it was created from.
#[derive(Clone, Debug)]
pub struct StoredQuery {
    pub query: Query,
    pub write: WriteQuery,
}

/// Every query created and used within the retention, kept in the engine's side records too so
/// that they outlive a restart. Identical definitions share one id, as Looker's do.
pub struct QueryStore {
    inner: Mutex<StoreInner>,
    saved: SideTable<SavedQuery>,
    /// In a cluster: each definition's query id (keyed by the definition's SHA-256), so that an
    /// identical query created through any instance answers the same id.
    definitions: SideTable<String>,
}

struct StoreInner {
    by_id: Expiring<String, Arc<StoredQuery>>,
    by_definition: HashMap<String, String>,
    by_slug: HashMap<String, String>,
    next_id: u64,
}

/// What is kept of a stored query (its answer is made again from it).
#[derive(Serialize, Deserialize)]
pub struct SavedQuery {
    slug: String,
    client_id: String,
    model: String,
    view: String,
    write: WriteQuery,
}

fn definition(write: &WriteQuery) -> String {
    serde_json::to_string(write).unwrap_or_default()
}

impl QueryStore {
    /// A store that forgets a query unused for `retain`, starting with the queries `saved` holds.
    pub fn new(
        retain: std::time::Duration,
        saved: SideTable<SavedQuery>,
        definitions: SideTable<String>,
    ) -> QueryStore {
        let mut inner = StoreInner {
            by_id: Expiring::new(retain),
            by_definition: HashMap::new(),
            by_slug: HashMap::new(),
            next_id: 0,
        };
        for (id, query) in saved.load() {
            if let Ok(n) = id.parse::<u64>() {
                inner.next_id = inner.next_id.max(n);
            }
            inner.keep(id, query);
        }
        QueryStore {
            inner: Mutex::new(inner),
            saved,
            definitions,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every query; ids start again from 1 (the control plane's reset).
    pub fn clear(&self) {
        let mut inner = self.lock();
        for id in inner.by_id.clear() {
            self.saved.remove(&id);
        }
        inner.by_definition.clear();
        inner.by_slug.clear();
        inner.next_id = 0;
        // In a cluster, the queries other instances stored go too.
        if self.saved.shared() {
            for (id, _) in self.saved.load() {
                self.saved.remove(&id);
            }
            for (key, _) in self.definitions.load() {
                self.definitions.remove(&key);
            }
        }
    }

    /// Stores `write` (already compiled once, so valid), or answers the identical query stored before.
    pub fn create(&self, write: WriteQuery, model: &str, view: &str) -> Arc<StoredQuery> {
        let definition = definition(&write);
        let shared_key = self.definitions.shared().then(|| {
            use sha2::Digest;
            sha2::Sha256::digest(definition.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        if let Some(key) = &shared_key
            && let Some(id) = self.definitions.get(key)
            && let Some(existing) = self.get(&id)
        {
            return existing;
        }
        let mut inner = self.lock();
        if let Some(id) = inner.by_definition.get(&definition).cloned()
            && let Some(existing) = inner.by_id.get(&id)
        {
            return existing.clone();
        }
        // In a cluster, ids come from the store's sequence, so no two instances give out one.
        let id = match self.saved.shared() {
            true => match self.saved.next_number() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "no query id from the shared store; numbering locally");
                    inner.next_id + 1
                }
            },
            false => inner.next_id + 1,
        };
        inner.next_id = inner.next_id.max(id);
        let id = id.to_string();
        let saved = SavedQuery {
            slug: random_token(7),
            client_id: write.client_id.clone().unwrap_or_else(|| random_token(22)),
            model: model.to_string(),
            view: view.to_string(),
            write,
        };
        self.saved.save(&id, &saved);
        if let Some(key) = &shared_key {
            self.definitions.save(key, &id);
        }
        let (stored, gone) = inner.keep(id, saved);
        for id in gone {
            self.saved.remove(&id);
        }
        stored
    }

    pub fn get(&self, id: &str) -> Option<Arc<StoredQuery>> {
        if let Some(stored) = self.lock().by_id.get(&id.to_string()).cloned() {
            return Some(stored);
        }
        // In a cluster, another instance may have stored it.
        let saved = self.saved.shared().then(|| self.saved.get(id)).flatten()?;
        Some(self.lock().keep(id.to_string(), saved).0)
    }

    pub fn by_slug(&self, slug: &str) -> Option<Arc<StoredQuery>> {
        {
            let mut inner = self.lock();
            if let Some(id) = inner.by_slug.get(slug).cloned() {
                return inner.by_id.get(&id).cloned();
            }
        }
        if !self.saved.shared() {
            return None;
        }
        let (id, saved) = self
            .saved
            .load()
            .into_iter()
            .find(|(_, saved)| saved.slug == slug)?;
        Some(self.lock().keep(id, saved).0)
    }
}

impl StoreInner {
    /// Keeps a query under `id`; answers it and the ids of queries forgotten meanwhile.
    fn keep(&mut self, id: String, saved: SavedQuery) -> (Arc<StoredQuery>, Vec<String>) {
        let stored = Arc::new(StoredQuery {
            query: answer(id.clone(), &saved),
            write: saved.write,
        });
        self.by_definition
            .insert(definition(&stored.write), id.clone());
        self.by_slug.insert(saved.slug, id.clone());
        let mut gone_ids = Vec::new();
        for (gone_id, gone) in self.by_id.insert(id, stored.clone()) {
            self.by_definition.remove(&definition(&gone.write));
            self.by_slug.remove(&gone.query.slug);
            gone_ids.push(gone_id);
        }
        (stored, gone_ids)
    }
}

/// A sort the query applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub desc: bool,
}

/// A query compiled against its explore.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub model: String,
    pub explore: Explore,
    /// The selected fields, in the query's order (each is a column named `view.field`).
    pub fields: Vec<Field>,
    pub sorts: Vec<Sort>,
    /// The dimensions pivoted on, in the query's order.
    pub pivots: Vec<String>,
    /// The statement, in generic SQL (what the engine runs and `sql` format shows).
    pub sql: String,
    /// With `total: true`, the statement of the totals row: the measures over every row the
    /// dimension filters keep (measure filters and the limit do not apply, as in Looker).
    pub totals_sql: Option<String>,
    /// The table calculations, computed over the result (their columns follow the fields').
    pub table_calcs: Vec<super::table_calc::TableCalc>,
    /// With `row_total` on a pivoted query, the statement of the row totals: the measures per
    /// combination of the other dimensions, across every pivot value.
    pub row_totals_sql: Option<String>,
}

/// The limit a run uses: its `limit` parameter over the query's own; `-1` means none.
fn effective_limit(query: &WriteQuery, run_limit: Option<i64>) -> Result<Option<u64>, LookerError> {
    let text = match run_limit {
        Some(n) => Some(n.to_string()),
        None => as_text(&query.limit),
    };
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(Some(DEFAULT_LIMIT)),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n.unsigned_abs())),
            Err(_) => Err(LookerError::validation(
                "limit",
                "invalid",
                format!("limit {t:?} is not a whole number"),
            )),
        },
    }
}

fn alias(field: &Field) -> Ident {
    Ident::with_quote('"', &field.name)
}

/// Adds `condition` to a WHERE or HAVING clause with AND.
fn conjoin(clause: &mut Option<Expr>, condition: Expr) {
    *clause = Some(match clause.take() {
        Some(existing) => and(existing, condition),
        None => condition,
    });
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(a),
        op: sqlparser::ast::BinaryOperator::And,
        right: Box::new(b),
    }
}

fn parse_sort(explore: &Explore, selected: &[Field], text: &str) -> Result<Sort, ErrorDetail> {
    let mut words = text.split_whitespace();
    let name = words.next().unwrap_or_default();
    let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") | Some("0") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ErrorDetail::new(
                "sorts",
                "invalid",
                format!("sort {text:?}: {other:?} is neither asc nor desc"),
            ));
        }
    };
    let field = explore.field(name).ok_or_else(|| {
        ErrorDetail::new(
            "sorts",
            "invalid",
            format!(
                "sort {text:?}: no field {name:?} in explore {}",
                explore.name
            ),
        )
    })?;
    if !selected.iter().any(|f| f.name == field.name) {
        return Err(ErrorDetail::new(
            "sorts",
            "invalid",
            format!(
                "sort {text:?}: {} is not among the query's fields",
                field.name
            ),
        ));
    }
    Ok(Sort {
        field: field.name.clone(),
        desc,
    })
}

/// Compiles a query for one run. `run_limit` is the run's `limit` parameter; `now` anchors
/// relative date filters.
pub fn compile(
    models: &Models,
    query: &WriteQuery,
    run_limit: Option<i64>,
    now: NaiveDateTime,
) -> Result<Compiled, LookerError> {
    let model_name = query.model.as_deref().unwrap_or_default();
    let view_name = query.view.as_deref().unwrap_or_default();
    if model_name.is_empty() || view_name.is_empty() {
        let mut missing = Vec::new();
        for (key, value) in [("model", model_name), ("view", view_name)] {
            if value.is_empty() {
                missing.push(ErrorDetail::new(
                    key,
                    "missing",
                    format!("{key} is required"),
                ));
            }
        }
        return Err(LookerError::validation_all(missing));
    }
    let model = models.model(model_name).ok_or_else(|| {
        LookerError::validation(
            "model",
            "not_found",
            format!("model {model_name:?} does not exist"),
        )
    })?;
    let explore = model.explore(view_name).ok_or_else(|| {
        LookerError::validation(
            "view",
            "not_found",
            format!("explore {view_name:?} does not exist in model {model_name:?}"),
        )
    })?;
    let mut errors = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    for name in query.fields.iter().flatten() {
        match explore.field(name) {
            Some(f) if !fields.iter().any(|s| s.name == f.name) => fields.push(f.clone()),
            Some(_) => {}
            None => errors.push(ErrorDetail::new(
                "fields",
                "invalid",
                format!("field {name:?} does not exist in explore {}", explore.name),
            )),
        }
    }
    if fields.is_empty() && errors.is_empty() {
        errors.push(ErrorDetail::new(
            "fields",
            "missing",
            "a query needs at least one field",
        ));
    }
    let mut pivots: Vec<String> = Vec::new();
    for name in query.pivots.iter().flatten() {
        match explore.field(name) {
            Some(f)
                if !f.is_measure()
                    && fields.iter().any(|s| s.name == f.name)
                    && !pivots.contains(&f.name) =>
            {
                pivots.push(f.name.clone());
            }
            _ => errors.push(ErrorDetail::new(
                "pivots",
                "invalid",
                format!("pivot {name:?} must be a dimension among the query's fields, once"),
            )),
        }
    }
    let mut where_clause: Option<Expr> = None;
    let mut having: Option<Expr> = None;
    for (name, value) in query.filters.iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        let Some(field) = explore.field(name) else {
            errors.push(ErrorDetail::new(
                "filters",
                "invalid",
                format!(
                    "filter field {name:?} does not exist in explore {}",
                    explore.name
                ),
            ));
            continue;
        };
        let predicate = match filter::predicate(&field.expr, field.field_type, &text, now) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                errors.push(ErrorDetail::new("filters", "invalid", e.to_string()));
                continue;
            }
        };
        let target = if field.is_measure() {
            &mut having
        } else {
            &mut where_clause
        };
        conjoin(target, predicate);
    }
    if let Some(text) = query
        .filter_expression
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        match super::expression::compile(text, explore) {
            Ok(compiled) => {
                let target = if compiled.over_measures {
                    &mut having
                } else {
                    &mut where_clause
                };
                conjoin(target, compiled.expr);
            }
            Err(e) => errors.push(ErrorDetail::new("filter_expression", "invalid", e)),
        }
    }
    let mut sorts = Vec::new();
    let sort_texts: Vec<&String> = query.sorts.iter().flatten().collect();
    let unsorted = sort_texts.iter().any(|s| s.trim() == "__UNSORTED__");
    if !unsorted {
        for text in sort_texts {
            match parse_sort(explore, &fields, text) {
                Ok(s) => sorts.push(s),
                Err(e) => errors.push(e),
            }
        }
    }
    let limit = match effective_limit(query, run_limit) {
        Ok(l) => l,
        Err(e) => {
            errors.extend(e.errors);
            None
        }
    };
    if !errors.is_empty() {
        return Err(LookerError::validation_all(errors));
    }
    if sorts.is_empty() && !unsorted {
        // Looker's default: the first measure descending, else the first dimension ascending.
        let first = fields
            .iter()
            .find(|f| f.is_measure())
            .map(|f| (f, true))
            .or_else(|| fields.first().map(|f| (f, false)));
        if let Some((f, desc)) = first {
            sorts.push(Sort {
                field: f.name.clone(),
                desc,
            });
        }
    }
    // Table calculations read the result in its order, so they are compiled once it is known.
    let table_calcs =
        super::table_calc::parse(query.dynamic_fields.as_deref(), &fields, &order_by(&sorts))
            .map_err(|e| {
                LookerError::validation_all(vec![ErrorDetail::new("dynamic_fields", "invalid", e)])
            })?;
    if !table_calcs.is_empty() && !pivots.is_empty() {
        return Err(LookerError::validation_all(vec![ErrorDetail::new(
            "dynamic_fields",
            "unsupported",
            "table calculations on a pivoted query are not supported by polyquery",
        )]));
    }
    // Rows without the subtotals asked for would be a wrong answer: refused, as other parts not built.
    if query.subtotals.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(LookerError::validation_all(vec![ErrorDetail::new(
            "subtotals",
            "unsupported",
            "subtotals are not supported by polyquery",
        )]));
    }
    let measures: Vec<Field> = fields.iter().filter(|f| f.is_measure()).cloned().collect();
    let totals_sql = match query.total {
        Some(true) if !measures.is_empty() => {
            Some(statement(explore, &measures, where_clause.clone(), None, &[], None)?.to_string())
        }
        _ => None,
    };
    let wants_row_totals =
        as_text(&query.row_total).is_some_and(|t| !t.trim().is_empty() && t != "false");
    let row_totals_sql = if wants_row_totals && !pivots.is_empty() && !measures.is_empty() {
        let unpivoted: Vec<Field> = fields
            .iter()
            .filter(|f| !pivots.contains(&f.name))
            .cloned()
            .collect();
        Some(statement(explore, &unpivoted, where_clause.clone(), None, &[], None)?.to_string())
    } else {
        None
    };
    let mut main = statement(explore, &fields, where_clause, having, &sorts, limit)?;
    if !table_calcs.is_empty() {
        main = super::table_calc::wrap(main, &table_calcs)
            .ok_or_else(|| LookerError::bad_request("cannot build the query"))?;
    }
    let sql = main.to_string();
    Ok(Compiled {
        model: model.name.clone(),
        explore: explore.clone(),
        fields,
        sorts,
        pivots,
        sql,
        totals_sql,
        table_calcs,
        row_totals_sql,
    })
}

/// The SELECT over the explore's FROM clause: dimensions grouped, measures aggregated.
fn statement(
    explore: &Explore,
    fields: &[Field],
    selection: Option<Expr>,
    having: Option<Expr>,
    sorts: &[Sort],
    limit: Option<u64>,
) -> Result<Statement, LookerError> {
    let skeleton = Parser::parse_sql(&GenericDialect {}, "SELECT 1")
        .ok()
        .and_then(|mut s| s.pop())
        .ok_or_else(|| LookerError::bad_request("cannot build the query"))?;
    let Statement::Query(mut query) = skeleton else {
        return Err(LookerError::bad_request("cannot build the query"));
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(LookerError::bad_request("cannot build the query"));
    };
    select.projection = fields
        .iter()
        .map(|f| SelectItem::ExprWithAlias {
            expr: f.expr.clone(),
            alias: alias(f),
        })
        .collect();
    select.from = explore.from.clone();
    select.selection = selection;
    select.having = having;
    let dimensions: Vec<Expr> = fields
        .iter()
        .filter(|f| !f.is_measure())
        .map(|f| f.expr.clone())
        .collect();
    if !dimensions.is_empty() {
        select.group_by = GroupByExpr::Expressions(dimensions, Vec::new());
    }
    set_order_and_limit(&mut query, sorts, limit);
    Ok(Statement::Query(query))
}

/// The sorts as ORDER BY items over the result's columns.
fn order_by(sorts: &[Sort]) -> Vec<OrderByExpr> {
    sorts
        .iter()
        .map(|s| OrderByExpr {
            expr: Expr::Identifier(Ident::with_quote('"', &s.field)),
            options: OrderByOptions {
                asc: Some(!s.desc),
                nulls_first: None,
            },
            with_fill: None,
        })
        .collect()
}

fn set_order_and_limit(query: &mut SqlQuery, sorts: &[Sort], limit: Option<u64>) {
    if !sorts.is_empty() {
        query.order_by = Some(OrderBy {
            kind: OrderByKind::Expressions(order_by(sorts)),
            interpolate: None,
        });
    }
    if let Some(limit) = limit {
        query.limit_clause = Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(
                SqlValue::Number(limit.to_string(), false).into(),
            )),
            offset: None,
            limit_by: Vec::new(),
        });
    }
}
