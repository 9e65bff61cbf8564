//! Luminesce SQL, rewritten for the engine on the sqlparser AST.
//!
//! Luminesce SQL is SQLite-flavoured: `[bracketed]` identifiers, `@name` scalar parameters, and
//! provider tables whose names keep their case (`Testing1K`, `Sys.Field`). The rewrite parses with
//! sqlparser's SQLite dialect, turns `@name` into the engine's named placeholder `$name`, serves
//! `Sys.Field` and `Sys.Registration` from the catalog, and resolves identifiers against the
//! catalog so unquoted names find their canonical case.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Statement, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::{GenericDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::errors::LuminesceError;
use super::models::data_type;
use crate::engine::{EngineError, ErrorKind, Params};
use crate::exec::Catalog;
use crate::sql::resolve::{Fold, NameSet, resolve};

/// A Luminesce query made runnable: the SQL the engine executes and the parameters it binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    pub exec_sql: String,
    /// The `@name` parameters the query uses, in name order.
    pub parameters: BTreeSet<String>,
}

/// Rewrites a Luminesce query for the engine. Every `@name` it uses must have a value in `params`.
pub fn rewrite(sql: &str, params: &Params, catalog: &Catalog) -> Result<Rewritten, LuminesceError> {
    let mut statement = crate::sql::parse_query(sql, &SQLiteDialect {})?;
    let mut rewrite = Rewrite {
        catalog,
        parameters: BTreeSet::new(),
        sys_tables: Vec::new(),
        failure: None,
    };
    let _ = statement.visit(&mut rewrite);
    if let Some(e) = rewrite.failure {
        return Err(e);
    }
    if let Some(missing) = rewrite
        .parameters
        .iter()
        .find(|p| !params.named.contains_key(*p))
    {
        return Err(LuminesceError::bad_parameter(
            missing,
            format!("the query uses @{missing}, but no scalar parameter '{missing}' was given"),
        ));
    }
    let names = names(catalog, &statement, &rewrite.sys_tables);
    resolve(&mut statement, &names, Fold::Preserve);
    Ok(Rewritten {
        exec_sql: statement.to_string(),
        parameters: rewrite.parameters,
    })
}

/// Translates a fragment of Luminesce SQL (a `select` list, a `sqlFilter`, a `groupBy`) into the
/// engine's quoting token by token: `[name]` becomes `"name"`, everything else is kept. The
/// fragment is parsed again, on its own, by the reshaping query builder.
pub fn fragment(text: &str) -> Result<String, EngineError> {
    let tokens = Tokenizer::new(&SQLiteDialect {}, text)
        .tokenize()
        .map_err(|e| EngineError::new(ErrorKind::Syntax, format!("bad SQL '{text}': {e}")))?;
    Ok(tokens
        .into_iter()
        .map(|t| match t {
            Token::Word(Word {
                value,
                quote_style: Some('[' | '`'),
                ..
            }) => Ident::with_quote('"', value).to_string(),
            other => other.to_string(),
        })
        .collect())
}

/// The catalog's names for this query (its tables' columns only) and the `Sys` tables' columns.
fn names(catalog: &Catalog, statement: &Statement, sys_tables: &[SysTable]) -> NameSet {
    let mut names = catalog.names(statement);
    for sys in sys_tables {
        for column in sys.columns() {
            names.add_column(column);
        }
    }
    names
}

/// The system tables served from the catalog, for clients that introspect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SysTable {
    /// `Sys.Field`: one row per column of every table.
    Field,
    /// `Sys.Registration`: one row per table.
    Registration,
}

impl SysTable {
    const ALL: [SysTable; 2] = [SysTable::Field, SysTable::Registration];

    fn name(self) -> &'static str {
        match self {
            SysTable::Field => "Field",
            SysTable::Registration => "Registration",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            SysTable::Field => &[
                "TableName",
                "FieldName",
                "DataType",
                "FieldType",
                "IsPrimaryKey",
                "IsMain",
                "Description",
            ],
            SysTable::Registration => &["Name", "Type", "Category", "Description"],
        }
    }

    fn lookup(parts: &[ObjectNamePart]) -> Option<SysTable> {
        let [
            ObjectNamePart::Identifier(schema),
            ObjectNamePart::Identifier(table),
        ] = parts
        else {
            return None;
        };
        if !schema.value.eq_ignore_ascii_case("Sys") {
            return None;
        }
        SysTable::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(&table.value))
    }

    /// The rows, as SQL literals.
    fn rows(self, catalog: &Catalog) -> Vec<Vec<Value>> {
        let text = |s: &str| Value::SingleQuotedString(s.to_string());
        match self {
            SysTable::Field => catalog
                .tables
                .iter()
                .flat_map(|t| {
                    t.schema.fields().iter().map(move |f| {
                        vec![
                            text(&t.name),
                            text(f.name()),
                            text(data_type(f.data_type())),
                            text("Column"),
                            Value::Boolean(false),
                            Value::Boolean(false),
                            text(""),
                        ]
                    })
                })
                .collect(),
            SysTable::Registration => catalog
                .tables
                .iter()
                .map(|t| {
                    vec![
                        text(&t.name),
                        text("DataProvider"),
                        text(if t.sample.is_some() {
                            "Testing"
                        } else {
                            "User"
                        }),
                        text(&t.description),
                    ]
                })
                .collect(),
        }
    }

    /// A derived table `(VALUES ...) AS alias(columns...)` holding the rows. The text is made only
    /// of rendered literals and quoted names, and parsed back into a table factor.
    fn derived(self, catalog: &Catalog, alias: Option<TableAlias>) -> Result<TableFactor, String> {
        let columns: Vec<String> = self
            .columns()
            .iter()
            .map(|c| Ident::with_quote('"', *c).to_string())
            .collect();
        let rows: Vec<String> = self
            .rows(catalog)
            .iter()
            .map(|row| {
                let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let body = if rows.is_empty() {
            // No tables at all: one row of the right width, filtered away.
            let nulls = vec!["NULL"; columns.len()].join(", ");
            format!("SELECT * FROM (VALUES ({nulls})) AS v WHERE false")
        } else {
            format!("VALUES {}", rows.join(", "))
        };
        let alias_name = alias
            .map(|a| a.name)
            .unwrap_or_else(|| Ident::with_quote('"', self.name()));
        let text = format!("({body}) AS {alias_name}({})", columns.join(", "));
        Parser::new(&GenericDialect {})
            .try_with_sql(&text)
            .and_then(|mut p| p.parse_table_factor())
            .map_err(|e| e.to_string())
    }
}

/// The AST rewrite: `@name` → `$name`, `Sys.*` → derived tables.
struct Rewrite<'a> {
    catalog: &'a Catalog,
    parameters: BTreeSet<String>,
    /// The `Sys` tables the query reads.
    sys_tables: Vec<SysTable>,
    failure: Option<LuminesceError>,
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
            && let Some(name) = p.strip_prefix('@')
        {
            if name.is_empty() || name.starts_with('@') {
                self.failure = Some(LuminesceError::bad_request(format!(
                    "'{p}' is not a scalar parameter reference"
                )));
                return ControlFlow::Break(());
            }
            self.parameters.insert(name.to_string());
            *p = format!("${name}");
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let Some(sys) = SysTable::lookup(&name.0) else {
            return ControlFlow::Continue(());
        };
        match sys.derived(self.catalog, alias.clone()) {
            Ok(derived) => {
                *factor = derived;
                self.sys_tables.push(sys);
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.failure = Some(LuminesceError::from(EngineError::internal(format!(
                    "cannot build Sys.{}: {e}",
                    sys.name()
                ))));
                ControlFlow::Break(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::fixtures::RegisteredTable;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn catalog() -> Catalog {
        Catalog::new(vec![RegisteredTable {
            name: "Testing1K".into(),
            sample: None,
            schema: Arc::new(Schema::new(vec![
                Field::new("Int", DataType::Int32, false),
                Field::new("Str", DataType::Utf8, true),
            ])),
            row_count: Some(1000),
            description: "test".into(),
        }])
    }

    fn params(names: &[&str]) -> Params {
        let mut p = Params::default();
        for n in names {
            p.named.insert(n.to_string(), "1".into());
        }
        p
    }

    #[test]
    fn brackets_parameters_and_names_are_rewritten() {
        let r = rewrite(
            "select str, [Int] from testing1k where [Int] <= @limit and Str <> @name",
            &params(&["limit", "name"]),
            &catalog(),
        )
        .unwrap();
        assert_eq!(
            r.exec_sql,
            r#"SELECT "Str", "Int" FROM "Testing1K" WHERE "Int" <= $limit AND "Str" <> $name"#
        );
        assert_eq!(
            r.parameters.into_iter().collect::<Vec<_>>(),
            vec!["limit", "name"]
        );
    }

    #[test]
    fn only_the_columns_of_tables_read_are_candidates() {
        let mut tables = catalog().tables;
        tables.push(RegisteredTable {
            name: "users".into(),
            sample: None,
            schema: Arc::new(Schema::new(vec![Field::new("int", DataType::Int32, false)])),
            row_count: None,
            description: String::new(),
        });
        let catalog = Catalog::new(tables);
        let r = rewrite("select int from testing1k", &params(&[]), &catalog).unwrap();
        assert_eq!(r.exec_sql, r#"SELECT "Int" FROM "Testing1K""#);
        let r = rewrite(
            "with t as (select 1 as Id) select id from t",
            &params(&[]),
            &catalog,
        )
        .unwrap();
        assert_eq!(
            r.exec_sql,
            r#"WITH "t" AS (SELECT 1 AS "Id") SELECT "Id" FROM "t""#
        );
    }

    #[test]
    fn a_parameter_without_a_value_is_refused() {
        let e = rewrite("select @x", &params(&[]), &catalog()).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.detail.contains("@x"), "{}", e.detail);
    }

    #[test]
    fn sys_tables_come_from_the_catalog() {
        let r = rewrite(
            "select FieldName, DataType from Sys.Field f where f.TableName = 'Testing1K'",
            &params(&[]),
            &catalog(),
        )
        .unwrap();
        assert!(
            r.exec_sql.contains("('Testing1K', 'Int', 'Int', 'Column'"),
            "{}",
            r.exec_sql
        );
        assert!(r.exec_sql.contains(r#"SELECT "FieldName", "DataType""#));
        let r = rewrite(
            "select Name from sys.registration",
            &params(&[]),
            &catalog(),
        )
        .unwrap();
        assert!(
            r.exec_sql.contains(r#"AS "Registration" ("Name""#),
            "{}",
            r.exec_sql
        );
    }

    #[test]
    fn syntax_errors_are_400() {
        let e = rewrite("select from where", &params(&[]), &catalog()).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.name, "SqlSyntaxError");
    }

    #[test]
    fn fragments_change_only_their_quoting() {
        assert_eq!(
            fragment("[Int], count(*) as n").unwrap(),
            r#""Int", count(*) as n"#
        );
        assert_eq!(fragment("Str = 'a]b'").unwrap(), "Str = 'a]b'");
    }
}
