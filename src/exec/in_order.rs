//! Parallel yet deterministic: the same query over the same data returns the same rows in the same
//! order on every run, with every partition at work.
//!
//! A DataFusion plan loses its order in three places when it runs on several partitions:
//! - `CoalescePartitionsExec` (and `execute_stream` over a plan of several partitions) hands on
//!   batches in the order the partitions happen to produce them;
//! - `RepartitionExec` (hash or round-robin) interleaves its inputs in arrival order, so a final
//!   aggregate sees its groups, and emits them, in an order that depends on timing;
//! - file scans steal byte ranges from each other at run time (work stealing), a join that
//!   collects its build side lets whichever probe partition ends last emit the unmatched rows, and
//!   `SortPreservingMergeExec` hands out tied rows round-robin by how often each input was polled;
//!   the TopKs of an `ORDER BY … LIMIT` share one threshold across partitions, and with ties at
//!   the boundary which rows survive depends on which partition raised it first.
//!
//! The session settings ([`deterministic_options`]) keep every exchange out of the plans: file scans
//! are still split into one byte range per partition, each partition scans, filters, projects,
//! partially aggregates and sorts its own range, and the partitions meet only where a single one
//! is needed. There [`InOrderConcatExec`] replaces `CoalescePartitionsExec`: it runs every
//! partition at once, each into a small bounded buffer, and hands on partition 0's batches, then
//! partition 1's, and so on, so the result is the same as a one-partition run's would be split
//! into ranges and concatenated. A plan that still holds an exchange or an outer join over several
//! probe partitions is planned again on one partition ([`is_deterministic`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{EvaluationType, SchedulingType};
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::InterleaveExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;
use tokio::sync::mpsc;

/// Batches each partition may produce ahead of the one being handed on.
const BUFFERED_BATCHES: usize = 2;

/// The settings that keep exchanges out of plans (see the module's documentation).
pub fn deterministic_options(options: &mut ConfigOptions) {
    options.optimizer.enable_round_robin_repartition = false;
    options.optimizer.repartition_aggregations = false;
    options.optimizer.repartition_joins = false;
    options.optimizer.repartition_windows = false;
    // A TopK in one partition would prune rows in the others' scans, as fast as each runs: with
    // ties at the boundary, which of them survive would depend on timing.
    options.optimizer.enable_topk_dynamic_filter_pushdown = false;
    options.execution.enable_file_stream_work_stealing = false;
}

/// Whether `plan` hands on the same rows in the same order on every run (given the same data).
pub fn is_deterministic(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut deterministic = true;
    let _ = plan.apply(|node| {
        let exchange = node.is::<RepartitionExec>() || node.is::<InterleaveExec>();
        let several = node.output_partitioning().partition_count() > 1;
        let unmatched_by_last = [
            node.downcast_ref::<HashJoinExec>().map(|j| *j.join_type()),
            node.downcast_ref::<NestedLoopJoinExec>()
                .map(|j| *j.join_type()),
            node.downcast_ref::<SortMergeJoinExec>()
                .map(|j| j.join_type()),
        ]
        .into_iter()
        .flatten()
        .any(|t| {
            matches!(
                t,
                JoinType::Left
                    | JoinType::LeftAnti
                    | JoinType::LeftSemi
                    | JoinType::LeftMark
                    | JoinType::Full
            )
        });
        if exchange || (several && unmatched_by_last) {
            deterministic = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    deterministic
}

/// `plan` with one output partition: its partitions concatenated in order when it has several.
pub fn single_output(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if plan.output_partitioning().partition_count() > 1 {
        Arc::new(InOrderConcatExec::new(plan))
    } else {
        plan
    }
}

/// Replaces every `CoalescePartitionsExec` with an [`InOrderConcatExec`] (keeping its limit), runs
/// a `SortExec` with a limit (a TopK) once over its partitions in order, and makes every
/// `SortPreservingMergeExec` break ties by partition order: its default hands tied rows
/// out round-robin by how often each input was polled, which varies from run to run (measured: an
/// `ORDER BY` with ties and a `LIMIT` answered other rows).
#[derive(Debug, Default)]
pub struct ConcatInOrder;

impl PhysicalOptimizerRule for ConcatInOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(coalesce) = node.downcast_ref::<CoalescePartitionsExec>() {
                let concat = InOrderConcatExec::new(coalesce.input().clone())
                    .with_fetch(ExecutionPlan::fetch(coalesce));
                return Ok(Transformed::yes(Arc::new(concat) as Arc<dyn ExecutionPlan>));
            }
            if let Some(sort) = node.downcast_ref::<SortExec>()
                && sort.fetch().is_some()
                && sort.input().output_partitioning().partition_count() > 1
            {
                // A TopK per partition shares one threshold between them, which each partition
                // uses to drop rows as soon as another raised it: with ties at the boundary,
                // which rows survive depends on timing. One TopK over the partitions in order.
                let input = Arc::new(InOrderConcatExec::new(sort.input().clone()));
                let single = SortExec::new(sort.expr().clone(), input)
                    .with_preserve_partitioning(false)
                    .with_fetch(sort.fetch());
                return Ok(Transformed::yes(Arc::new(single) as Arc<dyn ExecutionPlan>));
            }
            if let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() {
                let stable =
                    SortPreservingMergeExec::new(merge.expr().clone(), merge.input().clone())
                        .with_fetch(ExecutionPlan::fetch(merge))
                        .with_round_robin_repartition(false);
                return Ok(Transformed::yes(Arc::new(stable) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "ConcatInOrder"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One partition made of its input's partitions in partition order: every input partition runs at
/// once into a buffer of a few batches, and partition `i + 1`'s batches follow partition `i`'s.
#[derive(Debug, Clone)]
pub struct InOrderConcatExec {
    input: Arc<dyn ExecutionPlan>,
    fetch: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl InOrderConcatExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let several = input.output_partitioning().partition_count() > 1;
        let mut equivalences = input.equivalence_properties().clone();
        // The partitions' own orders do not hold across their concatenation.
        equivalences.clear_orderings();
        equivalences.clear_per_partition_constants();
        let mut properties = PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(1),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        properties = if several {
            properties
                .with_evaluation_type(EvaluationType::Eager)
                .with_scheduling_type(SchedulingType::Cooperative)
        } else {
            properties
                .with_evaluation_type(input.properties().evaluation_type)
                .with_scheduling_type(input.properties().scheduling_type)
        };
        InOrderConcatExec {
            input,
            fetch: None,
            properties: Arc::new(properties),
        }
    }

    /// Stops after `fetch` rows.
    pub fn with_fetch(mut self, fetch: Option<usize>) -> Self {
        self.fetch = fetch;
        self
    }
}

impl DisplayAs for InOrderConcatExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.fetch {
            Some(fetch) => write!(f, "InOrderConcatExec: fetch={fetch}"),
            None => write!(f, "InOrderConcatExec"),
        }
    }
}

impl ExecutionPlan for InOrderConcatExec {
    fn name(&self) -> &str {
        "InOrderConcatExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "InOrderConcatExec takes one child, not {}",
                children.len()
            )));
        }
        let input = children.swap_remove(0);
        Ok(match options.children_properties {
            ChildrenPropertiesMode::Keep => Arc::new(InOrderConcatExec {
                input,
                ..(*self).clone()
            }),
            ChildrenPropertiesMode::Recompute => {
                Arc::new(InOrderConcatExec::new(input).with_fetch(self.fetch))
            }
        })
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn with_new_children_and_same_properties(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(self.clone().with_fetch(limit)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "InOrderConcatExec has one partition, not {partition}"
            )));
        }
        let schema = self.input.schema();
        let partitions = self.input.output_partitioning().partition_count();
        let mut parts = VecDeque::with_capacity(partitions);
        for i in 0..partitions {
            let mut stream = self.input.execute(i, context.clone())?;
            if partitions == 1 {
                parts.push_back(Part::Direct(stream));
                break;
            }
            let (tx, rx) = mpsc::channel(BUFFERED_BATCHES);
            let task = SpawnedTask::spawn(async move {
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    if tx.send(batch).await.is_err() || failed {
                        return;
                    }
                }
            });
            parts.push_back(Part::Spawned(rx, task));
        }
        let left = self.fetch;
        let batches = futures::stream::unfold((parts, left), |(mut parts, left)| async move {
            if left == Some(0) {
                return None;
            }
            loop {
                let next = match parts.front_mut()? {
                    Part::Direct(stream) => stream.next().await,
                    Part::Spawned(rx, _) => rx.recv().await,
                };
                match next {
                    Some(Ok(batch)) => {
                        let (batch, left) = match left {
                            Some(n) if batch.num_rows() > n => (batch.slice(0, n), Some(0)),
                            Some(n) => {
                                let rows = batch.num_rows();
                                (batch, Some(n - rows))
                            }
                            None => (batch, None),
                        };
                        return Some((Ok(batch), (parts, left)));
                    }
                    Some(Err(e)) => {
                        parts.clear();
                        return Some((Err(e), (parts, Some(0))));
                    }
                    None => {
                        // A partition's task that ended without its last batch panicked: the
                        // result must fail, not end early as if complete.
                        if let Some(Part::Spawned(_, task)) = parts.pop_front()
                            && let Err(e) = task.join().await
                        {
                            parts.clear();
                            let e = DataFusionError::External(Box::new(e));
                            return Some((Err(e), (parts, Some(0))));
                        }
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// One input partition of an [`InOrderConcatExec`]: polled directly when it is the only one, else
/// driven by a task of its own into a bounded channel (the task stops when dropped).
enum Part {
    Direct(SendableRecordBatchStream),
    Spawned(
        mpsc::Receiver<Result<datafusion::arrow::record_batch::RecordBatch>>,
        SpawnedTask<()>,
    ),
}
