//! Placeholder until the fixtures land: no tables.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

/// Which vendor's sample data a fixture table reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleSet {
    Kylin,
    Luminesce,
    Looker,
    AsterixDb,
}

/// A table registered in the catalog.
#[derive(Clone, Debug)]
pub struct RegisteredTable {
    pub name: String,
    pub sample: Option<SampleSet>,
    pub schema: SchemaRef,
    pub row_count: Option<usize>,
    pub description: String,
}

pub async fn register_fixtures(
    _ctx: &SessionContext,
) -> datafusion::error::Result<Vec<RegisteredTable>> {
    Ok(Vec::new())
}
