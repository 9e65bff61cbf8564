//! The catalog: every table an executor serves, with what the dialects need to list and describe it.

use sqlparser::ast::Statement;

use super::fixtures::{RegisteredTable, SampleSet};
use crate::sql::resolve::{Fold, NameSet, resolve};

/// The tables served, in a stable order: fixtures first, then the user's.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub tables: Vec<RegisteredTable>,
    names: NameSet,
}

impl Catalog {
    pub fn new(tables: Vec<RegisteredTable>) -> Self {
        let mut names = NameSet::default();
        for t in &tables {
            names.add_table(&t.name);
            for f in t.schema.fields() {
                names.add_column(f.name());
            }
        }
        Catalog { tables, names }
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

    /// Resolves the statement's unquoted identifiers against this catalog.
    pub fn resolve(&self, statement: &mut Statement, fold: Fold) {
        resolve(statement, &self.names, fold);
    }
}
