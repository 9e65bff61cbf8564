//! SQLite's bare columns: in a query with `GROUP BY`, a column that is neither grouped nor inside
//! an aggregate takes its value from one row of its group: with exactly one `min()` or `max()` in
//! the select list, the row holding that minimum or maximum; else (SQLite documents the row as
//! arbitrary) the first row read, as SQLite 3.54 answers. The engine refuses such columns, so each
//! becomes `first_value(column [ORDER BY the min/max argument])`.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Query, Select, SelectItem,
    SetExpr, Value, VisitMut, VisitorMut,
};

/// The aggregates whose arguments are not bare (after the SQLite functions are mapped too).
const AGGREGATES: [&str; 17] = [
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "total",
    "group_concat",
    "string_agg",
    "sqlite_total",
    "first_value",
    "last_value",
    "any_value",
    "array_agg",
    "median",
    "stddev",
    "variance",
    "bool_and",
];

/// Wraps the bare columns of every grouped `SELECT` of `query` (not of its subqueries, which are
/// queries of their own and visited as such).
pub fn wrap_bare_columns(query: &mut Query) {
    in_set_expr(&mut query.body);
}

fn in_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => in_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            in_set_expr(left);
            in_set_expr(right);
        }
        _ => {}
    }
}

/// The name a column reference is grouped by: its last part, ignoring case.
fn column_key(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        _ => None,
    }
}

fn in_select(select: &mut Select) {
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return;
    };
    if groups.is_empty() {
        return;
    }
    let columns: Vec<String> = groups.iter().filter_map(column_key).collect();
    let extremes = extreme(&select.projection);
    let texts: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let positions: Vec<usize> = groups
        .iter()
        .filter_map(|g| match g {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<usize>().ok(),
                _ => None,
            },
            _ => None,
        })
        .collect();
    for (i, item) in select.projection.iter_mut().enumerate() {
        if positions.contains(&(i + 1)) {
            continue;
        }
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => continue,
        };
        let grouped_alias = alias
            .as_ref()
            .is_some_and(|a| columns.contains(&a.value.to_lowercase()));
        if grouped_alias || texts.contains(&expr.to_string()) {
            continue;
        }
        // A bare column keeps its own name once wrapped.
        if let (Some(key), None) = (column_key(expr), &alias)
            && !columns.contains(&key)
            && let Some(name) = match &*expr {
                Expr::Identifier(i) => Some(i.clone()),
                Expr::CompoundIdentifier(parts) => parts.last().cloned(),
                _ => None,
            }
        {
            *item = SelectItem::ExprWithAlias {
                expr: row_value(expr.clone(), extremes.as_ref()),
                alias: name,
            };
            continue;
        }
        let _ = expr.visit(&mut Bare {
            grouped: &columns,
            extreme: extremes.as_ref(),
            depth: 0,
        });
    }
}

/// The one `min(x)` or `max(x)` of a select list, as (x, whether it is max).
type Extreme = (Expr, bool);

fn extreme(projection: &[SelectItem]) -> Option<Extreme> {
    let mut found: Vec<Extreme> = Vec::new();
    for item in projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let _ = sqlparser::ast::visit_expressions(expr, |e| {
            if let Expr::Function(f) = e
                && f.over.is_none()
                && let FunctionArguments::List(list) = &f.args
                && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice()
            {
                let name = f.name.to_string().to_lowercase();
                if name == "max" || name == "min" {
                    found.push((arg.clone(), name == "max"));
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}

/// The value of a bare column: the first row's, or the row holding the min or max.
fn row_value(column: Expr, extreme: Option<&Extreme>) -> Expr {
    let (template, args) = match extreme {
        Some((arg, true)) => (
            "first_value($1 ORDER BY $2 DESC)",
            vec![column, arg.clone()],
        ),
        Some((arg, false)) => ("first_value($1 ORDER BY $2 ASC)", vec![column, arg.clone()]),
        None => ("first_value($1)", vec![column]),
    };
    match super::sql::template_expr(template, &args) {
        Ok(e) => e,
        // Our own templates parse; should one not, the column is left for the engine to refuse.
        Err(_) => args
            .into_iter()
            .next()
            .unwrap_or(Expr::Value(Value::Null.into())),
    }
}

/// Wraps the bare columns of one expression; `depth` counts the aggregates and subqueries the
/// visit is inside, where columns are not bare.
struct Bare<'a> {
    grouped: &'a [String],
    extreme: Option<&'a Extreme>,
    depth: usize,
}

fn shields(expr: &Expr) -> bool {
    match expr {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => true,
        Expr::Function(f) => {
            f.over.is_some()
                || AGGREGATES
                    .iter()
                    .any(|a| f.name.to_string().eq_ignore_ascii_case(a))
        }
        _ => false,
    }
}

impl VisitorMut for Bare<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if shields(expr) {
            self.depth += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if shields(expr) {
            self.depth = self.depth.saturating_sub(1);
            return ControlFlow::Continue(());
        }
        if self.depth == 0
            && let Some(key) = column_key(expr)
            && !self.grouped.contains(&key)
        {
            *expr = row_value(expr.clone(), self.extreme);
        }
        ControlFlow::Continue(())
    }
}
