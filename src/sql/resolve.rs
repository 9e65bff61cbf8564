//! Identifier resolution the way the vendors do it: unquoted names match tables, columns and
//! aliases case-insensitively and come out in their canonical case; quoted names match exactly.
//!
//! DataFusion itself lower-cases unquoted identifiers, which would miss `KYLIN_SALES` or `Testing1K`.
//! So every unquoted identifier that names something known is rewritten to that name, quoted.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableFactor,
    VisitMut, VisitorMut,
};

/// What an unquoted identifier that names nothing known becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// Left as written (and so lower-cased by DataFusion); aliases keep the case they were written in.
    Preserve,
    /// Upper-cased, as Calcite (Kylin) does.
    Upper,
}

/// Names that unquoted identifiers may resolve to, keyed case-insensitively.
#[derive(Clone, Debug, Default)]
pub struct NameSet {
    tables: HashMap<String, Option<String>>,
    columns: HashMap<String, Option<String>>,
    /// SQLite's rule: quoted names (`[x]`, `"x"`) match ignoring case too.
    quoted_ignore_case: bool,
}

impl NameSet {
    /// Quoted names match ignoring case as well, as every name does in SQLite.
    pub fn quoted_ignoring_case(mut self) -> Self {
        self.quoted_ignore_case = true;
        self
    }

    pub fn add_table(&mut self, name: &str) {
        add(&mut self.tables, name);
    }

    pub fn add_column(&mut self, name: &str) {
        add(&mut self.columns, name);
    }

    fn table(&self, name: &str) -> Option<&str> {
        self.tables
            .get(&name.to_lowercase())
            .and_then(|c| c.as_deref())
    }

    fn column(&self, name: &str) -> Option<&str> {
        self.columns
            .get(&name.to_lowercase())
            .and_then(|c| c.as_deref())
    }
}

/// Two spellings of one name that differ only in case are ambiguous: neither is chosen.
fn add(map: &mut HashMap<String, Option<String>>, name: &str) {
    map.entry(name.to_lowercase())
        .and_modify(|c| {
            if c.as_deref() != Some(name) {
                *c = None;
            }
        })
        .or_insert_with(|| Some(name.to_string()));
}

/// Rewrites every unquoted identifier of `statement` that names a known table, column or alias to
/// that name, quoted; other unquoted identifiers are folded as `fold` says.
pub fn resolve(statement: &mut Statement, names: &NameSet, fold: Fold) {
    let mut local = names.clone();
    let _ = statement.visit(&mut CollectAliases {
        names: &mut local,
        fold,
    });
    let _ = statement.visit(&mut Rewrite {
        names: &local,
        fold,
    });
}

fn folded(ident: &Ident, fold: Fold) -> String {
    match fold {
        Fold::Preserve => ident.value.clone(),
        Fold::Upper => ident.value.to_uppercase(),
    }
}

/// A quoted identifier (`[x]`, `` `x` ``, `"x"`) is exact: it only changes to double quotes, the
/// engine's quoting. Answers whether it was quoted.
fn requote(ident: &mut Ident) -> bool {
    match ident.quote_style {
        Some('"') => true,
        Some(_) => {
            *ident = quoted(&ident.value);
            true
        }
        None => false,
    }
}

fn quoted(value: &str) -> Ident {
    Ident::with_quote('"', value)
}

/// First pass: aliases a query defines (select items, tables, CTEs) join the known names.
struct CollectAliases<'a> {
    names: &'a mut NameSet,
    fold: Fold,
}

impl VisitorMut for CollectAliases<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                if cte.alias.name.quote_style.is_none() {
                    self.names.add_table(&folded(&cte.alias.name, self.fold));
                }
            }
        }
        for_each_select_alias(&mut query.body, &mut |alias| {
            if alias.quote_style.is_none() {
                self.names.add_column(&folded(alias, self.fold));
            }
        });
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let Some(alias) = table_alias(factor).filter(|a| a.quote_style.is_none()) {
            self.names.add_table(&folded(alias, self.fold));
        }
        ControlFlow::Continue(())
    }
}

/// Second pass: the rewrite itself.
struct Rewrite<'a> {
    names: &'a NameSet,
    fold: Fold,
}

impl Rewrite<'_> {
    fn column_or_table(&self, ident: &mut Ident) {
        let canonical = self
            .names
            .column(&ident.value)
            .or_else(|| self.names.table(&ident.value))
            .map(str::to_string);
        if self.exact(ident, canonical.as_deref()) {
            return;
        }
        self.settle(ident, canonical);
    }

    fn table(&self, ident: &mut Ident) {
        let canonical = self.names.table(&ident.value).map(str::to_string);
        if self.exact(ident, canonical.as_deref()) {
            return;
        }
        self.settle(ident, canonical);
    }

    /// A quoted name keeps its spelling (only its quotes change), unless quoted names ignore
    /// case here and it names something known. Answers whether it was quoted.
    fn exact(&self, ident: &mut Ident, canonical: Option<&str>) -> bool {
        if ident.quote_style.is_some()
            && self.names.quoted_ignore_case
            && let Some(name) = canonical
        {
            *ident = quoted(name);
            return true;
        }
        requote(ident)
    }

    fn settle(&self, ident: &mut Ident, canonical: Option<String>) {
        match (canonical, self.fold) {
            (Some(name), _) => *ident = quoted(&name),
            (None, Fold::Upper) => *ident = quoted(&ident.value.to_uppercase()),
            (None, Fold::Preserve) => {}
        }
    }

    fn alias(&self, ident: &mut Ident) {
        if !requote(ident) {
            *ident = quoted(&folded(ident, self.fold));
        }
    }
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &mut query.with {
            for cte in &mut with.cte_tables {
                self.alias(&mut cte.alias.name);
            }
        }
        for_each_select_alias(&mut query.body, &mut |alias| self.alias(alias));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let Some(alias) = table_alias(factor) {
            self.alias(alias);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        if let Some(ObjectNamePart::Identifier(last)) = relation.0.last_mut() {
            self.table(last);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) => self.column_or_table(ident),
            Expr::CompoundIdentifier(parts) => {
                parts.iter_mut().for_each(|p| self.column_or_table(p))
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Calls `f` on the alias of every `expr AS alias` select item of this query level (not subqueries:
/// those are visited as queries of their own).
fn for_each_select_alias(body: &mut SetExpr, f: &mut dyn FnMut(&mut Ident)) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                if let SelectItem::ExprWithAlias { alias, .. } = item {
                    f(alias);
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            for_each_select_alias(left, f);
            for_each_select_alias(right, f);
        }
        _ => {}
    }
}

fn table_alias(factor: &mut TableFactor) -> Option<&mut Ident> {
    match factor {
        TableFactor::Table { alias: Some(a), .. }
        | TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::TableFunction { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. }
        | TableFactor::NestedJoin { alias: Some(a), .. } => Some(&mut a.name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::{GenericDialect, SQLiteDialect};

    fn names() -> NameSet {
        let mut n = NameSet::default();
        n.add_table("KYLIN_SALES");
        n.add_table("Testing1K");
        for c in ["PRICE", "LSTG_FORMAT_NAME", "Int", "Str"] {
            n.add_column(c);
        }
        n
    }

    fn run(sql: &str, fold: Fold) -> String {
        let mut s = crate::sql::parse(sql, &SQLiteDialect {}).unwrap().remove(0);
        resolve(&mut s, &names(), fold);
        s.to_string()
    }

    #[test]
    fn unquoted_names_take_their_catalog_case() {
        assert_eq!(
            run(
                "select lstg_format_name, sum(price) as total from kylin_sales k group by lstg_format_name order by TOTAL",
                Fold::Preserve
            ),
            r#"SELECT "LSTG_FORMAT_NAME", sum("PRICE") AS "total" FROM "KYLIN_SALES" "k" GROUP BY "LSTG_FORMAT_NAME" ORDER BY "total""#
        );
    }

    #[test]
    fn brackets_and_quotes_match_exactly() {
        assert_eq!(
            run("select [Int], \"str\" from testing1k", Fold::Preserve),
            r#"SELECT "Int", "str" FROM "Testing1K""#
        );
    }

    #[test]
    fn calcite_folds_unknown_names_to_upper_case() {
        assert_eq!(
            run(
                "select count(*) as n, x.price from kylin_sales as x",
                Fold::Upper
            ),
            r#"SELECT count(*) AS "N", "X"."PRICE" FROM "KYLIN_SALES" AS "X""#
        );
    }

    #[test]
    fn ambiguous_spellings_are_left_alone() {
        let mut n = NameSet::default();
        n.add_column("Name");
        n.add_column("NAME");
        let mut s = crate::sql::parse("select name from t", &GenericDialect {})
            .unwrap()
            .remove(0);
        resolve(&mut s, &n, Fold::Preserve);
        assert_eq!(s.to_string(), "SELECT name FROM t");
    }
}
