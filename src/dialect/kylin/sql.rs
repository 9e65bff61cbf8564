//! Kylin SQL: Calcite's rules rewritten onto the engine's SQL, on the sqlparser AST.
//!
//! - Unquoted identifiers are case-insensitive and come out upper-case; quoted ones keep their case.
//! - A table may be written `DEFAULT.KYLIN_SALES`: Kylin's sample tables live in Hive's `DEFAULT`
//!   database, which is the engine's only schema.
//! - A project sees a set of tables; any other table is Calcite's "Object '…' not found".
//! - `OFFSET n ROWS FETCH NEXT m ROWS ONLY` becomes `LIMIT m OFFSET n`.
//! - JDBC `?` parameters become `$1`, `$2`, … .
//! - The request's `limit` and `offset` are added only when the SQL has none of its own.
//! - Calcite's functions and CAST types (`calcite.rs`); unaliased expressions are labelled
//!   `EXPR$n`, n their position in the select list.
//! - The engine's messages for the common errors become Calcite's (`calcite_message`).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, LimitClause, ObjectName, ObjectNamePart, Offset, OffsetRows, Query, SelectItem,
    SetExpr, Statement, TableFactor, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::engine::{EngineError, ErrorKind};
use crate::exec::Catalog;
use crate::exec::fixtures::SampleSet;
use crate::sql::resolve::Fold;

/// A Kylin project: a name and the catalog tables it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Project {
    pub name: &'static str,
    /// `Some`: only this sample set's tables; `None`: every table.
    sample: Option<SampleSet>,
}

/// The projects polyquery serves: Kylin's sample project and `DEFAULT`, which sees everything.
pub const PROJECTS: [Project; 2] = [
    Project {
        name: "learn_kylin",
        sample: Some(SampleSet::Kylin),
    },
    Project::DEFAULT,
];

/// The Hive database every table is listed in.
pub const SCHEMA: &str = "DEFAULT";

impl Project {
    /// The project that sees every table.
    pub const DEFAULT: Project = Project {
        name: "DEFAULT",
        sample: None,
    };

    /// Kylin matches project names ignoring case.
    pub fn find(name: &str) -> Option<Project> {
        PROJECTS
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
    }

    /// The project's tables, in catalog order.
    pub fn tables(
        self,
        catalog: &Catalog,
    ) -> impl Iterator<Item = &crate::exec::fixtures::RegisteredTable> {
        catalog
            .tables
            .iter()
            .filter(move |t| self.sample.is_none() || t.sample == self.sample)
    }

    fn has_table(self, catalog: &Catalog, ident: &Ident) -> bool {
        self.tables(catalog).any(|t| match ident.quote_style {
            Some(_) => t.name == ident.value,
            None => t.name.eq_ignore_ascii_case(&ident.value),
        })
    }
}

/// A client's SQL made ready for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The statement in the engine's SQL.
    pub exec_sql: String,
    /// How many `?` parameters it binds.
    pub parameters: usize,
}

/// Checks the tables a prepared statement reads once planned against the project: beyond the scope
/// checked on the SQL as written, no CTE, alias or subquery can reach a table outside the project.
/// A statement that does not plan reads nothing; its job fails with the planner's error.
pub async fn check_planned_scope(
    engine: &crate::engine::Engine,
    prepared: &Prepared,
    project: Project,
) -> Result<(), EngineError> {
    let Ok(described) = engine
        .describe(&prepared.exec_sql, &crate::engine::Params::default())
        .await
    else {
        return Ok(());
    };
    let tables = described.tables;
    let catalog = engine.executor().catalog();
    match tables
        .iter()
        .find(|read| !project.tables(catalog).any(|t| t.name == **read))
    {
        Some(outside) => Err(EngineError::new(
            ErrorKind::Plan,
            format!("Object '{}' not found", outside.to_uppercase()),
        )),
        None => Ok(()),
    }
}

/// Rewrites `sql` for `project`, adding `limit`/`offset` (0 = none) unless the SQL has its own.
pub fn prepare(
    sql: &str,
    project: Project,
    catalog: &Catalog,
    limit: u64,
    offset: u64,
) -> Result<Prepared, EngineError> {
    if sql.trim().trim_end_matches(';').trim().is_empty() {
        return Err(EngineError::new(
            ErrorKind::Syntax,
            super::errors::text::EMPTY_SQL,
        ));
    }
    let mut statement = crate::sql::parse_query(sql, &GenericDialect {})?;
    let mut scope = Scope {
        project,
        catalog,
        ctes: Vec::new(),
        cte_bodies: HashMap::new(),
        missing: None,
        parameters: 0,
    };
    let _ = statement.visit(&mut scope);
    if let Some(missing) = scope.missing {
        return Err(EngineError::new(ErrorKind::Plan, missing));
    }
    let parameters = scope.parameters;
    let _ = statement.visit(&mut ExprLabels);
    let mut library = super::calcite::Library::default();
    let _ = statement.visit(&mut library);
    if let Some(failure) = library.failure {
        return Err(EngineError::new(ErrorKind::Plan, failure));
    }
    catalog.resolve(&mut statement, Fold::Upper);
    if let Statement::Query(query) = &mut statement {
        add_limit(query, limit, offset);
    }
    Ok(Prepared {
        exec_sql: statement.to_string(),
        parameters,
    })
}

/// Calcite labels a select item that is neither a column nor aliased `EXPR$n`, n its position in
/// the select list (`select a, count(*)` gives `A`, `EXPR$1`).
struct ExprLabels;

impl VisitorMut for ExprLabels {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        label_selects(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn label_selects(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(expr) = item
                    && !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                {
                    let expr = std::mem::replace(expr, Expr::value(Value::Null));
                    *item = SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', format!("EXPR${i}")),
                    };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            label_selects(left);
            label_selects(right);
        }
        _ => {}
    }
}

/// Calcite's text for the engine's messages about the common mistakes, positioned in `sql` as
/// Kylin prints positions: an unknown column is `Column 'X' not found in any table` (or `in table
/// 'T'` when qualified). Other messages pass unchanged.
pub fn calcite_message(message: &str, sql: &str) -> String {
    let Some(rest) = message.strip_prefix("No field named ") else {
        return message.to_string();
    };
    // `t.x` or `x`, to the end of the first line ("Valid fields are …" follows).
    let named = rest.lines().next().unwrap_or(rest);
    let parts: Vec<String> = named
        .trim()
        .trim_end_matches('.')
        .split('.')
        .map(|p| p.trim_matches('"').to_string())
        .collect();
    let Some(column) = parts.last().filter(|c| !c.is_empty()) else {
        return message.to_string();
    };
    let text = match parts.len() {
        1 => format!("Column '{column}' not found in any table"),
        n => format!("Column '{column}' not found in table '{}'", parts[n - 2]),
    };
    match position(sql, column) {
        Some(at) => format!("{at}: {text}"),
        None => text,
    }
}

/// `From line L, column C to line L, column E` of the first identifier in `sql` that Calcite
/// would spell `name`.
fn position(sql: &str, name: &str) -> Option<String> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let token = tokens.iter().find(|t| match &t.token {
        Token::Word(w) => {
            let ident = Ident {
                value: w.value.clone(),
                quote_style: w.quote_style,
                span: t.span,
            };
            calcite_name(&ident) == name
        }
        _ => false,
    })?;
    let (start, end) = (token.span.start, token.span.end);
    Some(format!(
        "From line {}, column {} to line {}, column {}",
        start.line,
        start.column,
        end.line,
        end.column.saturating_sub(1).max(start.column)
    ))
}

/// The rewriting pass: schema qualifiers, table checks, FETCH, parameters.
struct Scope<'a> {
    project: Project,
    catalog: &'a Catalog,
    /// The CTE names (as Calcite folds them) in scope at each query being visited: a table
    /// reference is a CTE only where a `WITH` around it (or before it in the same `WITH`)
    /// defines that name; anywhere else it is the real table and must be in the project.
    ctes: Vec<HashSet<String>>,
    /// The names a CTE's own body sees, by the body's address, set when its `WITH` is entered.
    cte_bodies: HashMap<*const Query, HashSet<String>>,
    missing: Option<String>,
    parameters: usize,
}

impl VisitorMut for Scope<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let outer = self
            .cte_bodies
            .remove(&(&*query as *const Query))
            .or_else(|| self.ctes.last().cloned())
            .unwrap_or_default();
        let mut visible = outer;
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let name = calcite_name(&cte.alias.name);
                // A CTE's body sees the CTEs before it, and itself only in WITH RECURSIVE.
                let mut own = visible.clone();
                if with.recursive {
                    own.insert(name.clone());
                }
                self.cte_bodies.insert(&*cte.query as *const Query, own);
                visible.insert(name);
            }
        }
        self.ctes.push(visible);
        if let Some(fetch) = query.fetch.take() {
            if fetch.percent || fetch.with_ties {
                self.missing.get_or_insert_with(|| {
                    "FETCH … PERCENT and FETCH … WITH TIES are not supported".into()
                });
                return ControlFlow::Break(());
            }
            let count = fetch
                .quantity
                .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
            let offset = match query.limit_clause.take() {
                Some(LimitClause::LimitOffset { offset, .. }) => offset,
                Some(LimitClause::OffsetCommaLimit { offset, .. }) => Some(Offset {
                    value: offset,
                    rows: OffsetRows::None,
                }),
                None => None,
            };
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(count),
                offset: offset.map(|o| Offset {
                    value: o.value,
                    rows: OffsetRows::None,
                }),
                limit_by: Vec::new(),
            });
        } else if let Some(LimitClause::LimitOffset {
            offset: Some(offset),
            ..
        }) = &mut query.limit_clause
        {
            offset.rows = OffsetRows::None;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name, args: None, ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        strip_default_schema(name);
        if let [ObjectNamePart::Identifier(table)] = name.0.as_slice() {
            if self
                .ctes
                .last()
                .is_some_and(|names| names.contains(&calcite_name(table)))
                || self.project.has_table(self.catalog, table)
            {
                return ControlFlow::Continue(());
            }
            self.missing = Some(not_found(table, &calcite_name(table)));
        } else {
            let shown = name
                .0
                .iter()
                .filter_map(ObjectNamePart::as_ident)
                .map(calcite_name)
                .collect::<Vec<_>>()
                .join(".");
            let first = name.0.first().and_then(ObjectNamePart::as_ident).cloned();
            self.missing = Some(match first {
                Some(first) => not_found(&first, &shown),
                None => format!("Object '{shown}' not found"),
            });
        }
        ControlFlow::Break(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 3 && is_default_schema(&parts[0]) => {
                parts.remove(0);
            }
            Expr::Value(ValueWithSpan {
                value: Value::Placeholder(p),
                ..
            }) if p == "?" => {
                self.parameters += 1;
                *p = format!("${}", self.parameters);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn is_default_schema(ident: &Ident) -> bool {
    match ident.quote_style {
        Some(_) => ident.value == SCHEMA,
        None => ident.value.eq_ignore_ascii_case(SCHEMA),
    }
}

/// `DEFAULT.T` → `T`.
fn strip_default_schema(name: &mut ObjectName) {
    if name.0.len() == 2
        && name
            .0
            .first()
            .and_then(ObjectNamePart::as_ident)
            .is_some_and(is_default_schema)
    {
        name.0.remove(0);
    }
}

/// How Calcite spells an identifier: unquoted ones upper-cased.
fn calcite_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_uppercase(),
    }
}

/// Calcite's message for an unknown table, with its position when the parser kept it.
fn not_found(at: &Ident, shown: &str) -> String {
    let start = at.span.start;
    if start.line == 0 {
        return format!("Object '{shown}' not found");
    }
    let end = at.span.end;
    let end_column = end.column.saturating_sub(1).max(start.column);
    format!(
        "From line {}, column {} to line {}, column {end_column}: Object '{shown}' not found",
        start.line, start.column, end.line
    )
}

/// Kylin's `RawSql.autoAppendLimit`: the request's limit and offset apply only where the SQL has
/// none of its own.
fn add_limit(query: &mut Query, limit: u64, offset: u64) {
    let number = |n: u64| Expr::value(Value::Number(n.to_string(), false));
    let clause = query
        .limit_clause
        .get_or_insert_with(|| LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by: Vec::new(),
        });
    if let LimitClause::LimitOffset {
        limit: sql_limit,
        offset: sql_offset,
        ..
    } = clause
    {
        if sql_limit.is_none() && limit > 0 {
            *sql_limit = Some(number(limit));
        }
        if sql_offset.is_none() && offset > 0 {
            *sql_offset = Some(Offset {
                value: number(offset),
                rows: OffsetRows::None,
            });
        }
    }
    if matches!(
        query.limit_clause,
        Some(LimitClause::LimitOffset {
            limit: None,
            offset: None,
            ..
        })
    ) {
        query.limit_clause = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::fixtures::RegisteredTable;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn catalog() -> Catalog {
        let table = |name: &str, sample, columns: &[&str]| RegisteredTable {
            name: name.into(),
            sample,
            schema: Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|c| Field::new(*c, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            )),
            row_count: None,
            description: String::new(),
        };
        Catalog::new(vec![
            table(
                "KYLIN_SALES",
                Some(SampleSet::Kylin),
                &["LSTG_FORMAT_NAME", "PRICE"],
            ),
            table("Testing1K", Some(SampleSet::Luminesce), &["Int"]),
        ])
    }

    fn learn_kylin() -> Project {
        Project::find("LEARN_KYLIN").unwrap()
    }

    #[test]
    fn unquoted_names_fold_upper_and_limits_are_added() {
        let p = prepare(
            "select lstg_format_name, count(*) as n from default.kylin_sales group by lstg_format_name",
            learn_kylin(),
            &catalog(),
            500,
            10,
        )
        .unwrap();
        assert_eq!(
            p.exec_sql,
            r#"SELECT "LSTG_FORMAT_NAME", count(*) AS "N" FROM "KYLIN_SALES" GROUP BY "LSTG_FORMAT_NAME" LIMIT 500 OFFSET 10"#
        );
    }

    #[test]
    fn the_sqls_own_limit_wins_and_fetch_becomes_limit() {
        let c = catalog();
        let p = prepare(
            "select price from kylin_sales limit 3",
            learn_kylin(),
            &c,
            50,
            0,
        )
        .unwrap();
        assert_eq!(p.exec_sql, r#"SELECT "PRICE" FROM "KYLIN_SALES" LIMIT 3"#);
        let p = prepare(
            "select price from kylin_sales order by price offset 2 rows fetch next 5 rows only",
            learn_kylin(),
            &c,
            50,
            0,
        )
        .unwrap();
        assert_eq!(
            p.exec_sql,
            r#"SELECT "PRICE" FROM "KYLIN_SALES" ORDER BY "PRICE" LIMIT 5 OFFSET 2"#
        );
    }

    #[test]
    fn tables_outside_the_project_are_not_found() {
        let c = catalog();
        let e = prepare("select * from\n  v_lineitem", learn_kylin(), &c, 0, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Plan);
        assert_eq!(
            e.message,
            "From line 2, column 3 to line 2, column 12: Object 'V_LINEITEM' not found"
        );
        let e = prepare("select * from testing1k", learn_kylin(), &c, 0, 0).unwrap_err();
        assert!(
            e.message.ends_with("Object 'TESTING1K' not found"),
            "{}",
            e.message
        );
        let default = Project::find("default").unwrap();
        assert!(prepare("select * from testing1k", default, &c, 0, 0).is_ok());
        assert!(
            prepare(
                "with t as (select 1 as x) select * from t",
                learn_kylin(),
                &c,
                0,
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn a_cte_shadows_a_table_only_where_it_is_in_scope() {
        let c = catalog();
        let project = learn_kylin();
        for escape in [
            r#"select count(*) from (with "Testing1K" as (select 1 as x) select x from "Testing1K") q cross join "Testing1K""#,
            r#"with "Testing1K" as (select * from "Testing1K") select * from "Testing1K""#,
            r#"with a as (select * from b), b as (select 1 as x) select * from a"#,
            r#"select (with "Testing1K" as (select 1 as x) select count(*) from "Testing1K") from "Testing1K""#,
        ] {
            let e = prepare(escape, project, &c, 0, 0).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Plan, "{escape}");
            assert!(e.message.contains("not found"), "{escape}: {}", e.message);
        }
        for fine in [
            r#"with "Testing1K" as (select 1 as x) select x from "Testing1K""#,
            "with a as (select 1 as x), b as (select * from a) select * from b",
            "with t as (select 1 as x) select * from (select * from t) q where x in (select x from t)",
            "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select * from r",
        ] {
            assert!(prepare(fine, project, &c, 0, 0).is_ok(), "{fine}");
        }
    }

    #[test]
    fn jdbc_parameters_are_numbered() {
        let p = prepare(
            "select price from kylin_sales where price > ? and lstg_format_name = ?",
            learn_kylin(),
            &catalog(),
            0,
            0,
        )
        .unwrap();
        assert_eq!(p.parameters, 2);
        assert!(p.exec_sql.contains("> $1 AND"), "{}", p.exec_sql);
        assert!(p.exec_sql.ends_with("= $2"), "{}", p.exec_sql);
    }

    #[test]
    fn calcite_functions_become_engine_calls_and_expressions_get_expr_labels() {
        let p = prepare(
            "select lstg_format_name, CAST(TIMESTAMPADD(WEEK, WEEK(CAST(price AS DATE)) - 1, FLOOR(CAST(price AS TIMESTAMP) TO YEAR)) AS DATE), {fn UCASE(lstg_format_name)} as u from kylin_sales",
            learn_kylin(),
            &catalog(),
            0,
            0,
        )
        .unwrap();
        assert_eq!(
            p.exec_sql,
            r#"SELECT "LSTG_FORMAT_NAME", CAST(calcite_timestampadd('WEEK', CAST((date_part('week', CAST("PRICE" AS DATE))) AS BIGINT) - 1, calcite_floor('YEAR', CAST("PRICE" AS TIMESTAMP))) AS DATE) AS "EXPR$1", upper("LSTG_FORMAT_NAME") AS "U" FROM "KYLIN_SALES""#
        );
        let e = prepare(
            "select TIMESTAMPADD(FORTNIGHT, 1, price) from kylin_sales",
            learn_kylin(),
            &catalog(),
            0,
            0,
        )
        .unwrap_err();
        assert_eq!(e.message, "'FORTNIGHT' is not a valid time frame");
    }

    #[test]
    fn unknown_columns_get_calcites_message_and_position() {
        let cases = [
            (
                "No field named nope.\nValid fields are \"KYLIN_SALES\".\"PRICE\".",
                "select \"nope\" from kylin_sales",
                "From line 1, column 8 to line 1, column 13: Column 'nope' not found in any table",
            ),
            (
                "No field named S.BOGUS.\nValid fields are S.\"PRICE\".",
                "select price,\n  s.bogus from kylin_sales s",
                "From line 2, column 5 to line 2, column 9: Column 'BOGUS' not found in table 'S'",
            ),
            ("Division by zero", "select 1/0", "Division by zero"),
        ];
        for (engine, sql, calcite) in cases {
            assert_eq!(calcite_message(engine, sql), calcite, "{sql}");
        }
    }

    #[test]
    fn empty_sql_is_kylins_message() {
        let e = prepare("  ; ", learn_kylin(), &catalog(), 0, 0).unwrap_err();
        assert_eq!(e.message, super::super::errors::text::EMPTY_SQL);
    }
}
