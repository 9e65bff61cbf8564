//! Luminesce SQL, rewritten for the engine on the sqlparser AST.
//!
//! Luminesce SQL is SQLite-flavoured: `[bracketed]` identifiers, `@name` scalar parameters, and
//! provider tables whose names keep their case (`Testing1K`, `Sys.Field`). The rewrite parses with
//! sqlparser's SQLite dialect, turns `@name` into the engine's named placeholder `$name`, serves
//! `Sys.Field` and `Sys.Registration` from the catalog, and resolves identifiers against the
//! catalog so unquoted names find their canonical case. Scripts (`@table` and `@@scalar`
//! variables, `#date#` literals, SQLite's column names) are compiled first (`script.rs`); SQLite's
//! functions are mapped to the engine's `sqlite_<name>` functions and to equivalent expressions,
//! and SQLite's case-insensitive `LIKE` and text concatenation are kept.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::time::Duration;

use sqlparser::ast::{
    BinaryOperator, ExcludeSelectItem, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement,
    TableAlias, TableFactor, UnaryOperator, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::{GenericDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::errors::LuminesceError;
use super::models::data_type;
use super::save_as::{self, DRIVE_SAVE_AS};
use super::script::{SETUP_VIEW, ViewSetup};
use super::view_parameters;
use super::views::View;
use crate::engine::{EngineError, ErrorKind, Params, SaveStep};
use crate::exec::Catalog;
use crate::exec::sqlite_functions;
use crate::sql::call;
use crate::sql::resolve::{Fold, NameSet, resolve};

/// A Luminesce query made runnable: the SQL the engine executes and the parameters it binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    pub exec_sql: String,
    /// The `@name` parameters the query uses, in name order.
    pub parameters: BTreeSet<String>,
    /// The views the script sets up (`Sys.Admin.SetupView`).
    pub views: Vec<ViewSetup>,
    /// The files the script writes (`Drive.SaveAs`) before its answer runs; their `root` is the
    /// front's to set.
    pub saves: Vec<SaveStep>,
    /// How long the job pauses before its query runs (the script's `WAIT`s).
    pub wait: Duration,
    /// `pragma TimeoutSec`.
    pub timeout: Option<Duration>,
}

/// The most saved views one query may expand (views read views; a cycle would never end).
const MAX_VIEW_EXPANSIONS: usize = 64;

/// Rewrites a Luminesce query for the engine. Every `@name` it uses must have a value in `params`.
pub fn rewrite(
    sql: &str,
    params: &Params,
    catalog: &Catalog,
    views: &[View],
) -> Result<Rewritten, LuminesceError> {
    rewrite_with(sql, params, catalog, views, &[])
}

/// [`rewrite`] of a script that reads `earlier` table variables (a multi-query's earlier queries).
pub fn rewrite_with(
    sql: &str,
    params: &Params,
    catalog: &Catalog,
    views: &[View],
    earlier: &[(String, Box<Query>)],
) -> Result<Rewritten, LuminesceError> {
    let compiled = super::script::compile_with(sql, earlier)?;
    let mut rewritten = finish(compiled.statement, params, catalog, views)?;
    rewritten.views = compiled.views;
    rewritten.wait = compiled.wait;
    rewritten.timeout = compiled.timeout;
    for save in compiled.saves {
        let written = finish(Statement::Query(save.query), params, catalog, views)?;
        rewritten.saves.push(SaveStep {
            sql: written.exec_sql,
            root: Default::default(),
            path: save.path,
            format: save.format.to_string(),
            skip_if_empty: save.skip_if_empty,
            rows_param: save.rows_param,
        });
    }
    Ok(rewritten)
}

/// The query a view setup saves, its parameters at their defaults, rewritten for the engine.
pub fn rewrite_view(
    setup: &ViewSetup,
    params: &Params,
    catalog: &Catalog,
    views: &[View],
) -> Result<Rewritten, LuminesceError> {
    let mut query = super::script::compile_view(&setup.sql)?;
    view_parameters::bind(&mut query, &setup.parameters, &HashMap::new())?;
    finish(Statement::Query(query), params, catalog, views)
}

/// A compiled statement rewritten on the AST and its names resolved; every `@name` it uses must
/// have a value in `params`.
fn finish(
    mut statement: Statement,
    params: &Params,
    catalog: &Catalog,
    views: &[View],
) -> Result<Rewritten, LuminesceError> {
    let rewrite = visit(&mut statement, catalog, views)?;
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
    let names = names(catalog, &statement, &rewrite.sys_tables).quoted_ignoring_case();
    resolve(&mut statement, &names, Fold::Preserve);
    let mut excluded = ExcludedColumns::new(catalog, views, &statement);
    let _ = statement.visit(&mut excluded);
    Ok(Rewritten {
        exec_sql: statement.to_string(),
        parameters: rewrite.parameters,
        views: Vec::new(),
        saves: Vec::new(),
        wait: Duration::ZERO,
        timeout: None,
    })
}

/// The `@name` scalar parameters a Luminesce query uses, in name order.
pub fn parameters(
    sql: &str,
    catalog: &Catalog,
    views: &[View],
) -> Result<BTreeSet<String>, LuminesceError> {
    let mut statement = super::script::compile_with(sql, &[])?.statement;
    visit(&mut statement, catalog, views).map(|rewrite| rewrite.parameters)
}

/// The AST rewrite of a compiled statement, before names are resolved.
fn visit<'a>(
    statement: &mut Statement,
    catalog: &'a Catalog,
    views: &'a [View],
) -> Result<Rewrite<'a>, LuminesceError> {
    let mut rewrite = Rewrite {
        catalog,
        views,
        expanded: 0,
        ctes: BTreeSet::new(),
        parameters: BTreeSet::new(),
        sys_tables: Vec::new(),
        failure: None,
    };
    let _ = statement.visit(&mut rewrite);
    match rewrite.failure.take() {
        Some(e) => Err(e),
        None => Ok(rewrite),
    }
}

/// The names a wildcard's `EXCLUDE (…)` leaves out, in the catalog's spelling where a table or
/// view has the column (names ignore case, as everywhere in Luminesce SQL), else as written;
/// always quoted, since the engine matches them exactly.
struct ExcludedColumns {
    spellings: HashMap<String, String>,
}

impl ExcludedColumns {
    fn new(catalog: &Catalog, views: &[View], statement: &Statement) -> Self {
        let tables = catalog
            .tables
            .iter()
            .flat_map(|t| t.schema.fields().iter().map(|f| f.name().clone()));
        let views = views
            .iter()
            .flat_map(|v| v.columns.iter().map(|(c, _)| c.clone()));
        let sys = SysTable::ALL
            .iter()
            .flat_map(|t| t.columns().iter().map(|c| c.to_string()));
        // And the aliases the query gives its own columns (of table variables and CTEs).
        let mut aliases = Vec::new();
        let _ = sqlparser::ast::Visit::visit(statement, &mut SelectAliases(&mut aliases));
        let spellings = tables
            .chain(views)
            .chain(sys)
            .chain(aliases)
            .map(|c| (c.to_lowercase(), c))
            .collect();
        ExcludedColumns { spellings }
    }
}

/// Collects every `expr AS alias` of a statement.
struct SelectAliases<'a>(&'a mut Vec<String>);

impl sqlparser::ast::Visitor for SelectAliases<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        fn aliases(body: &SetExpr, out: &mut Vec<String>) {
            match body {
                SetExpr::Select(select) => {
                    out.extend(select.projection.iter().filter_map(|i| match i {
                        sqlparser::ast::SelectItem::ExprWithAlias { alias, .. } => {
                            Some(alias.value.clone())
                        }
                        _ => None,
                    }))
                }
                SetExpr::SetOperation { left, right, .. } => {
                    aliases(left, out);
                    aliases(right, out);
                }
                _ => {}
            }
        }
        aliases(&query.body, self.0);
        ControlFlow::Continue(())
    }
}

impl VisitorMut for ExcludedColumns {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        super::exclusions::for_each_wildcard(&mut query.body, &mut |options| {
            if let Some(ExcludeSelectItem::Multiple(names)) = &mut options.opt_exclude {
                for part in names.iter_mut().flat_map(|n| n.0.iter_mut()) {
                    if let ObjectNamePart::Identifier(ident) = part {
                        let spelling = self
                            .spellings
                            .get(&ident.value.to_lowercase())
                            .cloned()
                            .unwrap_or_else(|| ident.value.clone());
                        *ident = Ident::with_quote('"', spelling);
                    }
                }
            }
        });
        ControlFlow::Continue(())
    }
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

/// The system tables served from the catalog, for clients that introspect (and the Catalog API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysTable {
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

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            SysTable::Field => &[
                "TableName",
                "FieldName",
                "DataType",
                "FieldType",
                "IsPrimaryKey",
                "IsMain",
                "Description",
                "ParamDefaultValue",
                "TableParamColumns",
                "AllowedValues",
                "ConditionUsage",
                "SampleValues",
            ],
            SysTable::Registration => &[
                "Name",
                "Type",
                "Category",
                "Description",
                "DocumentationLink",
                "Attributes",
                "NamespaceLevel",
                "CustomSyntax",
            ],
        }
    }

    /// `Sys.Field`, `sys.field` or one bracketed name `[Sys.Field]`.
    fn lookup(parts: &[ObjectNamePart]) -> Option<SysTable> {
        let (schema, table) = match parts {
            [
                ObjectNamePart::Identifier(schema),
                ObjectNamePart::Identifier(table),
            ] => (schema.value.as_str(), table.value.as_str()),
            [ObjectNamePart::Identifier(one)] => one.value.split_once('.')?,
            _ => return None,
        };
        if !schema.eq_ignore_ascii_case("Sys") {
            return None;
        }
        SysTable::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(table))
    }

    /// The rows, as SQL literals. Every table is a data provider with columns and no parameters:
    /// no parameter defaults, table parameters, allowed or sample values; condition usage 0; its
    /// namespace level is the number of dots in its name.
    pub fn rows(self, catalog: &Catalog, views: &[View]) -> Vec<Vec<Value>> {
        let text = |s: &str| Value::SingleQuotedString(s.to_string());
        let number = |n: usize| Value::Number(n.to_string(), false);
        match self {
            SysTable::Field => {
                // (table, field, data type, field type, parameter default, description)
                type Row<'r> = (&'r str, &'r str, &'r str, &'r str, Option<&'r str>, &'r str);
                let tables = catalog.tables.iter().flat_map(|t| {
                    t.schema.fields().iter().map(move |f| -> Row<'_> {
                        let name = t.name.as_str();
                        (name, f.name(), data_type(f.data_type()), "Column", None, "")
                    })
                });
                let view_columns = views.iter().flat_map(|v| {
                    v.columns
                        .iter()
                        .map(move |(c, t)| -> Row<'_> { (&v.name, c, t, "Column", None, "") })
                });
                let view_parameters = views.iter().flat_map(|v| {
                    v.parameters.iter().map(move |p| -> Row<'_> {
                        let description = p.description.as_deref().unwrap_or("");
                        let default = Some(p.default.as_str());
                        (
                            &v.name,
                            &p.name,
                            &p.data_type,
                            "Parameter",
                            default,
                            description,
                        )
                    })
                });
                tables
                    .chain(view_columns)
                    .chain(view_parameters)
                    .map(|(table, field, data_type, kind, default, description)| {
                        vec![
                            text(table),
                            text(field),
                            text(data_type),
                            text(kind),
                            Value::Boolean(false),
                            // GUESS: every column is a main one (`select ^` is `select *`).
                            Value::Boolean(kind == "Column"),
                            text(description),
                            default.map_or(Value::Null, text),
                            Value::Null,
                            Value::Null,
                            number(0),
                            Value::Null,
                        ]
                    })
                    .collect()
            }
            SysTable::Registration => {
                let provider = |name: &str, kind: &str, category: &str, description: &str| {
                    vec![
                        text(name),
                        text(kind),
                        text(category),
                        text(description),
                        Value::Null,
                        Value::Null,
                        number(name.matches('.').count()),
                        match name {
                            SETUP_VIEW => text(SETUP_VIEW_SYNTAX),
                            DRIVE_SAVE_AS => text(save_as::SYNTAX),
                            _ => Value::Null,
                        },
                    ]
                };
                let tables = catalog.tables.iter().map(|t| {
                    let category = if t.sample.is_some() {
                        "Testing"
                    } else {
                        "User"
                    };
                    provider(&t.name, "DataProvider", category, &t.description)
                });
                let views = views.iter().map(|v| {
                    let description = v.description.as_deref().unwrap_or("A view");
                    provider(&v.name, "DataProvider", "View", description)
                });
                let setup = provider(
                    SETUP_VIEW,
                    "DirectProvider",
                    "System",
                    "Saves a query as a view: a provider of its own name",
                );
                let save = provider(
                    DRIVE_SAVE_AS,
                    "DirectProvider",
                    "Files, Utilities",
                    save_as::DESCRIPTION,
                );
                tables.chain(views).chain([setup, save]).collect()
            }
        }
    }

    /// A derived table `(VALUES ...) AS alias(columns...)` holding the rows. The text is made only
    /// of rendered literals and quoted names, and parsed back into a table factor.
    fn derived(
        self,
        catalog: &Catalog,
        views: &[View],
        alias: Option<TableAlias>,
    ) -> Result<TableFactor, String> {
        let alias = alias
            .map(|a| a.name)
            .unwrap_or_else(|| Ident::with_quote('"', self.name()));
        values_table(self.columns(), &self.rows(catalog, views), &alias)
    }
}

/// A derived table `(VALUES ...) AS alias(columns...)` holding `rows`. The text is made only of
/// rendered literals and quoted names, and parsed back into a table factor.
pub fn values_table(
    columns: &[&str],
    rows: &[Vec<Value>],
    alias: &Ident,
) -> Result<TableFactor, String> {
    let columns: Vec<String> = columns
        .iter()
        .map(|c| Ident::with_quote('"', *c).to_string())
        .collect();
    let rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let body = if rows.is_empty() {
        // No rows at all: one row of the right width, filtered away.
        let nulls = vec!["NULL"; columns.len()].join(", ");
        format!("SELECT * FROM (VALUES ({nulls})) AS v WHERE false")
    } else {
        format!("VALUES {}", rows.join(", "))
    };
    let text = format!("({body}) AS {alias}({})", columns.join(", "));
    Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_table_factor())
        .map_err(|e| e.to_string())
}

/// The AST rewrite: `@name` → `$name`, `Sys.*` → derived tables.
struct Rewrite<'a> {
    catalog: &'a Catalog,
    /// The saved views, read as derived tables of their queries.
    views: &'a [View],
    /// How many views this query has expanded so far.
    expanded: usize,
    /// The CTE names seen so far (lower case): a CTE's name is never read as a view's.
    ctes: BTreeSet<String>,
    parameters: BTreeSet<String>,
    /// The `Sys` tables the query reads.
    sys_tables: Vec<SysTable>,
    failure: Option<LuminesceError>,
}

/// How `Sys.Admin.SetupView` is called: its `CustomSyntax` in `Sys.Registration`.
const SETUP_VIEW_SYNTAX: &str = "@v = use Sys.Admin.SetupView
--provider=<the view's name>
--description=<what it holds, optional>
----
<the view's query>
enduse;
select * from @v

Saves the query as a view once the script succeeds; later queries read it as a table of that name.";

impl<'a> Rewrite<'a> {
    /// A saved view named by a table reference, as the derived table of its query.
    /// The saved view a table reference names (a CTE of that name is the CTE).
    fn find_view(&self, name: &[ObjectNamePart]) -> Option<&'a View> {
        let parts: Option<Vec<&str>> = name
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.value.as_str()),
                _ => None,
            })
            .collect();
        let parts = parts?;
        if let [one] = parts.as_slice()
            && self.ctes.contains(&one.to_lowercase())
        {
            return None;
        }
        let name = parts.join(".");
        let views: &'a [View] = self.views;
        views.iter().find(|v| v.name.eq_ignore_ascii_case(&name))
    }

    /// A view as the derived table of its query, its parameters bound (else their defaults).
    fn expand(
        &mut self,
        view: &View,
        alias: &Option<TableAlias>,
        bound: &HashMap<String, Expr>,
    ) -> Result<TableFactor, LuminesceError> {
        self.expanded += 1;
        if self.expanded > MAX_VIEW_EXPANSIONS {
            return Err(LuminesceError::bad_request(format!(
                "the query reads more than {MAX_VIEW_EXPANSIONS} views (does a view read itself?)"
            )));
        }
        let stale = |e: EngineError| {
            LuminesceError::bad_request(format!(
                "the view {} no longer runs: {}",
                view.name, e.message
            ))
        };
        let mut subquery = super::script::compile_view(&view.sql).map_err(stale)?;
        view_parameters::bind(&mut subquery, &view.parameters, bound).map_err(stale)?;
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: false,
            name: Ident::with_quote('"', &view.name),
            columns: Vec::new(),
            at: None,
        });
        Ok(TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        })
    }

    /// The views the selects of a query body read (through `UNION` and its kin; subqueries are
    /// queries of their own, met by the visitor).
    fn expand_views_in(&mut self, body: &mut SetExpr) -> Result<(), LuminesceError> {
        match body {
            SetExpr::Select(select) => self.expand_views_of(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.expand_views_in(left)?;
                self.expand_views_in(right)
            }
            _ => Ok(()),
        }
    }

    /// The views a select reads directly (in its `FROM` and joins), each given the parameter
    /// values its `WHERE` binds.
    fn expand_views_of(&mut self, select: &mut Select) -> Result<(), LuminesceError> {
        let positions: Vec<(usize, Option<usize>)> = select
            .from
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                std::iter::once((i, None)).chain((0..t.joins.len()).map(move |j| (i, Some(j))))
            })
            .collect();
        for (i, j) in positions {
            let factor = match j {
                None => &select.from[i].relation,
                Some(j) => &select.from[i].joins[j].relation,
            };
            let TableFactor::Table { name, alias, .. } = factor else {
                continue;
            };
            let Some(view) = self.find_view(&name.0) else {
                continue;
            };
            let alias = alias.clone();
            let qualifier = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| view.name.clone());
            let bound = view_parameters::take_bindings(select, &qualifier, &view.parameters)?;
            let derived = self.expand(view, &alias, &bound)?;
            match j {
                None => select.from[i].relation = derived,
                Some(j) => select.from[i].joins[j].relation = derived,
            }
        }
        Ok(())
    }
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.to_lowercase()),
            );
        }
        if let Err(e) = self.expand_views_in(&mut query.body) {
            self.failure = Some(e);
            return ControlFlow::Break(());
        }
        if let Err(why) = super::apply::lateral_joins(&mut query.body) {
            self.failure = Some(EngineError::new(ErrorKind::Unsupported, why).into());
            return ControlFlow::Break(());
        }
        super::grouping::wrap_bare_columns(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match sqlite_expr(expr) {
            Ok(Some(replacement)) => *expr = replacement,
            Ok(None) => {}
            Err(e) => {
                self.failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &v.value
            && let Some(name) = p.strip_prefix(view_parameters::PLACEHOLDER_PREFIX)
        {
            self.failure = Some(LuminesceError::bad_request(format!(
                "#PARAMETERVALUE({name}) is for a view's query (Sys.Admin.SetupView --parameters)"
            )));
            return ControlFlow::Break(());
        }
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
            // A view anywhere else (a nested join): its parameters take their defaults.
            let Some(view) = self.find_view(&name.0) else {
                return ControlFlow::Continue(());
            };
            let alias = alias.clone();
            return match self.expand(view, &alias, &HashMap::new()) {
                Ok(derived) => {
                    *factor = derived;
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    self.failure = Some(e);
                    ControlFlow::Break(())
                }
            };
        };
        match sys.derived(self.catalog, self.views, alias.clone()) {
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

/// SQLite's meaning of an expression where the engine's differs: its functions (`sqlite_<name>`
/// UDFs, or the engine's equivalent expression), its case-insensitive `LIKE`, and `||` over its
/// text of numbers. `None`: the expression means the same in both.
fn sqlite_expr(expr: &Expr) -> Result<Option<Expr>, LuminesceError> {
    match expr {
        Expr::Like {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        } => Ok(Some(Expr::ILike {
            negated: *negated,
            any: *any,
            expr: expr.clone(),
            pattern: pattern.clone(),
            escape_char: escape_char.clone(),
        })),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } if !is_text_call(left) || !is_text_call(right) => Ok(Some(Expr::BinaryOp {
            left: Box::new(text_of(left)),
            op: BinaryOperator::StringConcat,
            right: Box::new(text_of(right)),
        })),
        // SQLite answers NULL for a division or remainder by zero where the engine fails.
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::Divide | BinaryOperator::Modulo),
            right,
        } if !is_nullif_zero(right) => Ok(Some(Expr::BinaryOp {
            left: left.clone(),
            op: op.clone(),
            right: Box::new(template_expr("nullif($1, 0)", &[(**right).clone()])?),
        })),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![(**expr).clone()];
            args.extend(substring_from.iter().map(|e| (**e).clone()));
            args.extend(substring_for.iter().map(|e| (**e).clone()));
            Ok(Some(call("sqlite_substr", args)))
        }
        Expr::Function(f) => sqlite_function(f),
        // SQLite's `REGEXP` (an operator of SQLite's grammar, a regex match in Luminesce).
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Regexp,
            right,
        } => Ok(Some(call(
            "regexp_like",
            vec![(**left).clone(), (**right).clone()],
        ))),
        Expr::RLike {
            negated,
            expr,
            pattern,
            ..
        } => {
            let test = call("regexp_like", vec![(**expr).clone(), (**pattern).clone()]);
            Ok(Some(if *negated {
                Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: Box::new(Expr::Nested(Box::new(test))),
                }
            } else {
                test
            }))
        }
        // `~x`, which the engine lacks, is `-1 - x` on SQLite's 64-bit integers.
        Expr::UnaryOp {
            op: UnaryOperator::BitwiseNot,
            expr,
        } => template_expr("(-1 - $1)", &[(**expr).clone()]).map(Some),
        _ => Ok(None),
    }
}

/// A divisor already guarded by `nullif(x, 0)` (the rewrite's own), so it is not guarded twice.
fn is_nullif_zero(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("nullif")
        && f.args.to_string().ends_with(", 0)"))
}

fn is_text_call(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if f.name.to_string() == "sqlite_text")
}

/// An operand of `||` as SQLite's text (`1.0` is `'1.0'`, not `'1'`).
fn text_of(expr: &Expr) -> Expr {
    if is_text_call(expr) {
        return expr.clone();
    }
    call("sqlite_text", vec![expr.clone()])
}

/// A SQLite function call in the engine's terms.
fn sqlite_function(f: &Function) -> Result<Option<Expr>, LuminesceError> {
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
        return Ok(None);
    };
    if name.quote_style.is_some() {
        return Ok(None);
    }
    let name = name.value.to_lowercase();
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let args: Option<Vec<Expr>> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let Some(args) = args else {
        return Ok(None);
    };
    let arity = |want: &[usize]| {
        if want.contains(&args.len()) {
            Ok(())
        } else {
            Err(LuminesceError::from(EngineError::new(
                ErrorKind::Plan,
                format!("wrong number of arguments to function {name}()"),
            )))
        }
    };
    let distinct = list.duplicate_treatment.is_some();
    let template = match name.as_str() {
        "iif" => {
            arity(&[3])?;
            "CASE WHEN $1 THEN $2 ELSE $3 END".to_string()
        }
        "ifnull" => {
            arity(&[2])?;
            "coalesce($1, $2)".to_string()
        }
        "total" if !distinct && f.over.is_none() => {
            arity(&[1])?;
            "sqlite_total($1)".to_string()
        }
        "group_concat" if f.over.is_none() => {
            arity(&[1, 2])?;
            let distinct = if distinct { "DISTINCT " } else { "" };
            let separator = if args.len() == 1 { "','" } else { "$2" };
            format!("string_agg({distinct}sqlite_text($1), {separator})")
        }
        // SQLite's many-argument min and max are scalar: NULL if any argument is.
        "max" | "min" if args.len() >= 2 => {
            let any_null: Vec<String> = (1..=args.len()).map(|i| format!("${i} IS NULL")).collect();
            let all: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
            let pick = if name == "max" { "greatest" } else { "least" };
            format!(
                "CASE WHEN {} THEN NULL ELSE {pick}({}) END",
                any_null.join(" OR "),
                all.join(", ")
            )
        }
        _ => {
            let Some(udf) = sqlite_functions::udf_name(&name) else {
                return Ok(None);
            };
            let mut renamed = f.clone();
            renamed.name = ObjectName::from(vec![Ident::new(udf)]);
            return Ok(Some(Expr::Function(renamed)));
        }
    };
    template_expr(&template, &args).map(Some)
}

/// Our own expression text with `$n` standing for the call's arguments, which go in on the AST.
pub(super) fn template_expr(template: &str, args: &[Expr]) -> Result<Expr, LuminesceError> {
    let mut expr = Parser::new(&GenericDialect {})
        .try_with_sql(template)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| LuminesceError::from(EngineError::internal(format!("{template}: {e}"))))?;
    struct Arguments<'a>(&'a [Expr]);
    impl VisitorMut for Arguments<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = expr
                && let Value::Placeholder(p) = &v.value
                && let Some(arg) = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| self.0.get(n.wrapping_sub(1)))
            {
                *expr = arg.clone();
            }
            ControlFlow::Continue(())
        }
    }
    let _ = expr.visit(&mut Arguments(args));
    Ok(expr)
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
            &[],
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
        let r = rewrite("select int from testing1k", &params(&[]), &catalog, &[]).unwrap();
        assert_eq!(r.exec_sql, r#"SELECT "Int" FROM "Testing1K""#);
        let r = rewrite(
            "with t as (select 1 as Id) select id from t",
            &params(&[]),
            &catalog,
            &[],
        )
        .unwrap();
        assert_eq!(
            r.exec_sql,
            r#"WITH "t" AS (SELECT 1 AS "Id") SELECT "Id" FROM "t""#
        );
    }

    #[test]
    fn a_parameter_without_a_value_is_refused() {
        let e = rewrite("select @x", &params(&[]), &catalog(), &[]).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.detail.contains("@x"), "{}", e.detail);
    }

    #[test]
    fn sys_tables_come_from_the_catalog() {
        let r = rewrite(
            "select FieldName, DataType from Sys.Field f where f.TableName = 'Testing1K'",
            &params(&[]),
            &catalog(),
            &[],
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
            &[],
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
        let e = rewrite("select from where", &params(&[]), &catalog(), &[]).unwrap_err();
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
