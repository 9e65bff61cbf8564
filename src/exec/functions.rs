//! Placeholder until the contract-testing functions land.

use datafusion::prelude::SessionContext;

pub fn register_functions(_ctx: &SessionContext) {}
