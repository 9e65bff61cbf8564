//! Every operator yields: a physical optimizer rule that wraps each node of a plan in DataFusion's
//! `CooperativeExec`, so every batch any operator hands up spends Tokio's task budget.
//!
//! DataFusion's own `EnsureCooperative` wraps only leaves and exchanges. An operator that multiplies
//! its input (a cross join turns one batch of a 1000-row table into a thousand batches) then runs a
//! whole query inside one poll, and neither a cancel, a timeout nor a client hanging up is noticed
//! until it is done. With every operator spending budget, the query's task yields every few batches
//! and the engine's `select!` sees the cancel at once.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

#[derive(Debug, Default)]
pub struct YieldEverywhere;

impl PhysicalOptimizerRule for YieldEverywhere {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.is::<CooperativeExec>() {
                Ok(Transformed::no(node))
            } else {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "YieldEverywhere"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
