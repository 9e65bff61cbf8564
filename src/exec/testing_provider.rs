//! Luminesce's `Testing1K` / `Testing10K` / `Testing100K` providers, computed on the fly.
//!
//! Row `n` (1-based) of every `Testing*` table holds:
//!
//! | column | type | value |
//! |---|---|---|
//! | `Int` | Int64 | `n` |
//! | `Str` | Utf8 | `"Str" + n` |
//! | `Dbl` | Float64 | `n / 4` |
//! | `Date` | Timestamp(ms) | 2000-01-01 00:00:00 plus `n` hours |
//! | `Bool` | Boolean | `n` is even |
//! | `UseLinq` | Boolean | always true |
//! | `Takes500Ms` | Int64 | `n`, and reading it costs 500 ms |
//!
//! Luminesce's own examples filter on `UseLinq = true` (a switch of its test provider); here it is a
//! column that is true on every row, so those queries keep every row the other conditions keep.
//!
//! Reading `Takes500Ms` really takes 500 ms per row: when that column is scanned, the rows come
//! one per batch, each after an asynchronous 500 ms sleep, so dropping the stream cancels at once.
//! Simple conditions are pushed into the scan and evaluated (with DataFusion's own physical
//! expressions) before the sleep, so `select Str, Takes500Ms from Testing1K where UseLinq = true
//! and [Int] <= 120` pays for 120 rows (about 60 s), not 1000.
//!
//! The pushdown is `Exact`, not `Inexact`: for an inexact filter DataFusion keeps a `FilterExec`
//! above the scan and puts a round-robin repartition under it, which hands the one-row batches to
//! several partitions (rows 1, 3, 5 then 2, 4, 6) and holds each partition's rows back until the
//! scan ends. With the filter evaluated exactly here, slow rows stream out one by one, in `Int`
//! order, and a `LIMIT` reaches the scan.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::cast::as_boolean_array;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

/// The testing tables Luminesce offers, by name and row count.
pub const TESTING_TABLES: [(&str, u64); 3] = [
    ("Testing1K", 1_000),
    ("Testing10K", 10_000),
    ("Testing100K", 100_000),
];

/// The column whose every value takes [`SLOW_ROW_DELAY`] to read.
pub const SLOW_COLUMN: &str = "Takes500Ms";

/// What reading one `Takes500Ms` value costs.
pub const SLOW_ROW_DELAY: Duration = Duration::from_millis(500);

/// Milliseconds from 1970-01-01 to 2000-01-01, where the `Date` column starts.
const DATE_ORIGIN_MS: i64 = 946_684_800_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A `Testing<N>` table: `N` deterministic rows that exist only while being scanned.
#[derive(Debug)]
pub struct TestingTable {
    rows: u64,
    schema: SchemaRef,
}

impl TestingTable {
    /// A testing table of `rows` rows, `Int` running from 1 to `rows`.
    pub fn new(rows: u64) -> Self {
        Self {
            rows,
            schema: Arc::new(Schema::new(vec![
                Field::new("Int", DataType::Int64, false),
                Field::new("Str", DataType::Utf8, false),
                Field::new("Dbl", DataType::Float64, false),
                Field::new(
                    "Date",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                ),
                Field::new("Bool", DataType::Boolean, false),
                Field::new("UseLinq", DataType::Boolean, false),
                Field::new(SLOW_COLUMN, DataType::Int64, false),
            ])),
        }
    }

    /// How many rows a full scan returns.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The table's schema (all columns).
    pub fn schema_ref(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Plans a scan: pushed filters become one physical predicate evaluated inside the stream.
    fn plan_scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Every filter DataFusion hands over was accepted as `Exact`: all of them must hold.
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let slow_index = self.schema.index_of(SLOW_COLUMN)?;
        let partition = TestingRows {
            rows: self.rows,
            schema: Arc::clone(&self.schema),
            predicate,
            slow: projection.is_none_or(|p| p.contains(&slow_index)),
        };
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        // Rows come out in `Int` order; saying so lets `order by Int` skip its sort.
        let ordering = projected.index_of("Int").ok().and_then(|index| {
            LexOrdering::new([PhysicalSortExpr::new_default(Arc::new(Column::new(
                "Int", index,
            )))])
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            Arc::clone(&self.schema),
            vec![Arc::new(partition)],
            projection,
            ordering,
            false,
            limit,
        )?))
    }
}

/// Whether the scan can evaluate `expr` itself: comparisons and arithmetic over columns and
/// literals joined by AND/OR/NOT, null and truth tests, BETWEEN, IN lists, LIKE and casts. Anything
/// else (functions, which may be slow or async, subqueries, ...) is left to DataFusion above.
fn evaluable_in_scan(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::And
                    | Operator::Or
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
                    | Operator::Plus
                    | Operator::Minus
                    | Operator::Multiply
                    | Operator::Divide
                    | Operator::Modulo
                    | Operator::StringConcat
            ) && evaluable_in_scan(left)
                && evaluable_in_scan(right)
        }
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::Negative(e) => evaluable_in_scan(e),
        Expr::Between(b) => {
            evaluable_in_scan(&b.expr) && evaluable_in_scan(&b.low) && evaluable_in_scan(&b.high)
        }
        Expr::InList(l) => evaluable_in_scan(&l.expr) && l.list.iter().all(evaluable_in_scan),
        Expr::Like(l) => evaluable_in_scan(&l.expr) && evaluable_in_scan(&l.pattern),
        Expr::Cast(c) => evaluable_in_scan(&c.expr),
        Expr::TryCast(c) => evaluable_in_scan(&c.expr),
        _ => false,
    }
}

impl TableProvider for TestingTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    // `TableProvider::scan` is declared with `#[async_trait]`; this is that macro's expansion
    // written out, since the crate does not depend on `async-trait`. Planning needs no awaiting.
    fn scan<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        state: &'life1 dyn Session,
        projection: Option<&'life2 Vec<usize>>,
        filters: &'life3 [Expr],
        limit: Option<usize>,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ExecutionPlan>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(
            self.plan_scan(state, projection, filters, limit),
        ))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if evaluable_in_scan(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }
}

/// The single partition of a testing-table scan.
#[derive(Debug)]
struct TestingRows {
    rows: u64,
    schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// `Takes500Ms` is read: emit one row per batch, each after [`SLOW_ROW_DELAY`].
    slow: bool,
}

impl PartitionStream for TestingRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let cursor = RowCursor {
            schema: Arc::clone(&self.schema),
            predicate: self.predicate.clone(),
            slow: self.slow,
            next_int: 1,
            last_int: self.rows,
            chunk_rows: u64::try_from(ctx.session_config().batch_size()).unwrap_or(8192),
            pending: None,
        };
        let batches = futures::stream::try_unfold(cursor, |mut cursor| async move {
            Ok(cursor.next_batch().await?.map(|batch| (batch, cursor)))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        ))
    }
}

/// Where a running scan is: the next `Int` to generate and, when slow, matching rows not yet paid for.
struct RowCursor {
    schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    slow: bool,
    next_int: u64,
    last_int: u64,
    chunk_rows: u64,
    pending: Option<RecordBatch>,
}

impl RowCursor {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(row) = self.take_pending_row() {
                tokio::time::sleep(SLOW_ROW_DELAY).await;
                return Ok(Some(row));
            }
            let Some(chunk) = self.next_matching_chunk()? else {
                return Ok(None);
            };
            if !self.slow {
                return Ok(Some(chunk));
            }
            self.pending = Some(chunk);
        }
    }

    fn take_pending_row(&mut self) -> Option<RecordBatch> {
        let pending = self.pending.take()?;
        let rest = pending.num_rows().checked_sub(1)?;
        let row = pending.slice(0, 1);
        if rest > 0 {
            self.pending = Some(pending.slice(1, rest));
        }
        Some(row)
    }

    /// The next chunk of generated rows that has at least one row passing the predicate.
    fn next_matching_chunk(&mut self) -> Result<Option<RecordBatch>> {
        while self.next_int <= self.last_int {
            let first = self.next_int;
            let last = self
                .last_int
                .min(first.saturating_add(self.chunk_rows.max(1) - 1));
            self.next_int = last + 1;
            let chunk = testing_rows(&self.schema, first, last)?;
            let matching = match &self.predicate {
                Some(predicate) => {
                    let mask = predicate.evaluate(&chunk)?.into_array(chunk.num_rows())?;
                    filter_record_batch(&chunk, as_boolean_array(&mask)?)?
                }
                None => chunk,
            };
            if matching.num_rows() > 0 {
                return Ok(Some(matching));
            }
        }
        Ok(None)
    }
}

/// Rows `first..=last` of a testing table, every column.
fn testing_rows(schema: &SchemaRef, first: u64, last: u64) -> Result<RecordBatch> {
    let ints: Vec<i64> = (first..=last)
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ints.clone())),
        Arc::new(StringArray::from_iter_values(
            ints.iter().map(|n| format!("Str{n}")),
        )),
        Arc::new(Float64Array::from_iter_values(
            ints.iter().map(|&n| n as f64 / 4.0),
        )),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            ints.iter()
                .map(|&n| DATE_ORIGIN_MS.saturating_add(n.saturating_mul(MS_PER_HOUR))),
        )),
        Arc::new(BooleanArray::from_iter(
            ints.iter().map(|&n| Some(n % 2 == 0)),
        )),
        Arc::new(BooleanArray::from(vec![true; ints.len()])),
        Arc::new(Int64Array::from(ints)),
    ];
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
