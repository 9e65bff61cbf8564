//! The catalog: every table an executor serves, with what the dialects need to list and describe it.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use arrow::datatypes::{DataType, Field};
use sqlparser::ast::{ObjectNamePart, Statement, visit_relations};

use super::fixtures::{RegisteredTable, SampleSet};
use crate::sql::resolve::{Fold, NameSet, resolve};

/// The tables served, in a stable order: fixtures first, then the user's.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub tables: Vec<RegisteredTable>,
    /// Every table's name; columns join per statement (see `names`).
    table_names: NameSet,
}

impl Catalog {
    pub fn new(tables: Vec<RegisteredTable>) -> Self {
        let mut table_names = NameSet::default();
        for t in &tables {
            table_names.add_table(&t.name);
        }
        Catalog {
            tables,
            table_names,
        }
    }

    /// A table by name, exact case first, then ignoring case.
    pub fn table(&self, name: &str) -> Option<&RegisteredTable> {
        self.tables.iter().find(|t| t.name == name).or_else(|| {
            self.tables
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
        })
    }

    /// The tables of one vendor's sample set.
    pub fn sample(&self, set: SampleSet) -> impl Iterator<Item = &RegisteredTable> {
        self.tables.iter().filter(move |t| t.sample == Some(set))
    }

    /// The names `statement`'s unquoted identifiers resolve to: every table, but only the columns
    /// of the tables it reads. One rule for every entry point: another table's column spelled
    /// `country` must not make this query's `COUNTRY` ambiguous.
    pub fn names(&self, statement: &Statement) -> NameSet {
        let mut names = self.table_names.clone();
        let mut read = BTreeSet::new();
        let _ = visit_relations(statement, |relation| {
            if let Some(ObjectNamePart::Identifier(last)) = relation.0.last() {
                read.insert(last.value.to_lowercase());
            }
            ControlFlow::<()>::Continue(())
        });
        for table in &self.tables {
            if read.contains(&table.name.to_lowercase()) {
                for field in table.schema.fields() {
                    add_field_names(&mut names, field, 0);
                }
            }
        }
        names
    }

    /// Resolves the statement's unquoted identifiers against this catalog.
    pub fn resolve(&self, statement: &mut Statement, fold: Fold) {
        let names = self.names(statement);
        resolve(statement, &names, fold);
    }
}

/// A column's name and, for nested data (AsterixDB's `user.screenName`), its fields' names, to a
/// fixed depth.
fn add_field_names(names: &mut NameSet, field: &Field, depth: usize) {
    names.add_column(field.name());
    if depth >= 8 {
        return;
    }
    match field.data_type() {
        DataType::Struct(fields) => fields
            .iter()
            .for_each(|f| add_field_names(names, f, depth + 1)),
        DataType::List(item) | DataType::LargeList(item) => add_field_names_of(names, item, depth),
        _ => {}
    }
}

fn add_field_names_of(names: &mut NameSet, item: &Field, depth: usize) {
    if let DataType::Struct(fields) = item.data_type() {
        fields
            .iter()
            .for_each(|f| add_field_names(names, f, depth + 1));
    }
}
