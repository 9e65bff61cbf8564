//! Table calculations (`dynamic_fields` entries with a `table_calculation`): an expression in
//! Looker's language over the result's own columns, computed by an outer query over the result
//! (`SELECT t.*, <calculation> AS "name" FROM (<query>) AS t`), so row order and limit are the
//! query's; `offset` and `running_total` follow the query's sort, the column functions (`sum`, …)
//! the whole result.

use serde::Deserialize;
use sqlparser::ast::{Expr, Ident, OrderByExpr, SelectItem, SetExpr, Statement, TableFactor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::expression;
use super::semantic::{Field, FieldType};

/// A table calculation: its name (the result column), label, and compiled expression.
#[derive(Clone, Debug)]
pub struct TableCalc {
    pub name: String,
    pub label: String,
    pub expr: Expr,
}

/// One `dynamic_fields` entry; custom dimensions and measures are other entries, not read here.
#[derive(Deserialize)]
struct Dynamic {
    table_calculation: Option<String>,
    label: Option<String>,
    expression: Option<String>,
}

/// The table calculations of `dynamic_fields` (a JSON array in a string), each over the selected
/// `fields` and the calculations before it.
pub fn parse(
    dynamic_fields: Option<&str>,
    fields: &[Field],
    order: &[OrderByExpr],
) -> Result<Vec<TableCalc>, String> {
    let Some(text) = dynamic_fields.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let entries: Vec<Dynamic> = serde_json::from_str(text)
        .map_err(|e| format!("dynamic_fields is not a JSON array of fields: {e}"))?;
    let mut calcs: Vec<TableCalc> = Vec::new();
    for entry in entries {
        let Some(name) = entry.table_calculation else {
            continue;
        };
        if name.trim().is_empty()
            || fields.iter().any(|f| f.name == name)
            || calcs.iter().any(|c| c.name == name)
        {
            return Err(format!("table calculation name {name:?} is empty or taken"));
        }
        let expression = entry
            .expression
            .ok_or_else(|| format!("table calculation {name:?} has no expression"))?;
        let resolve = |reference: &str| -> Result<(Expr, bool), String> {
            let known = fields.iter().any(|f| f.name == reference)
                || calcs.iter().any(|c| c.name == reference);
            if known {
                Ok((column(reference), false))
            } else {
                Err(format!("{reference:?} is not a field of this query"))
            }
        };
        let compiled = expression::compile_with(&expression, Some(order), &resolve)?;
        // A calculation over earlier calculations inlines them: the outer query has only the
        // result's columns.
        let expr = inline(compiled.expr, &calcs);
        calcs.push(TableCalc {
            label: entry.label.unwrap_or_else(|| name.clone()),
            name,
            expr,
        });
    }
    Ok(calcs)
}

impl TableCalc {
    /// The result column's field, as the writers label and describe it.
    pub fn field(&self) -> Field {
        Field {
            name: self.name.clone(),
            view: String::new(),
            short_name: self.name.clone(),
            label: self.label.clone(),
            label_short: self.label.clone(),
            view_label: String::new(),
            field_type: FieldType::Number,
            measure: None,
            primary_key: false,
            sql_text: self.expr.to_string(),
            expr: column(&self.name),
        }
    }
}

fn column(name: &str) -> Expr {
    Expr::Identifier(Ident::with_quote('"', name))
}

/// Replaces references to earlier calculations by their expressions.
fn inline(expr: Expr, calcs: &[TableCalc]) -> Expr {
    use sqlparser::ast::{VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    struct Inline<'a>(&'a [TableCalc]);
    impl VisitorMut for Inline<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(ident) = expr
                && let Some(calc) = self.0.iter().find(|c| c.name == ident.value)
            {
                *expr = Expr::Nested(Box::new(calc.expr.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = expr;
    let _ = expr.visit(&mut Inline(calcs));
    expr
}

/// The query with its calculations added as columns by an outer query, ordered as the query is.
pub fn wrap(inner: Statement, calcs: &[TableCalc]) -> Option<Statement> {
    let Statement::Query(inner) = inner else {
        return None;
    };
    let mut outer = Parser::parse_sql(&GenericDialect {}, "SELECT * FROM (SELECT 1) AS \"t\"")
        .ok()?
        .pop()?;
    let Statement::Query(query) = &mut outer else {
        return None;
    };
    // The inner ORDER BY names result columns, so it orders the outer query the same way.
    query.order_by = inner.order_by.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    for calc in calcs {
        select.projection.push(SelectItem::ExprWithAlias {
            expr: calc.expr.clone(),
            alias: Ident::with_quote('"', &calc.name),
        });
    }
    let TableFactor::Derived { subquery, .. } = &mut select.from.first_mut()?.relation else {
        return None;
    };
    *subquery = inner;
    Some(outer)
}
