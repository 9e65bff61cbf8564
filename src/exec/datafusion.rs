//! The default executor: Apache DataFusion in-process, over the fixtures and the user's tables.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::fixtures::{RegisteredTable, register_fixtures};
use super::in_order;
use super::{Catalog, Described, Executor, StoredResult, classify_error};
use crate::query::{EngineError, ErrorKind, ParamValue, Params};
use crate::sql::resolve::Fold;

/// A table the user serves from a file, named in the configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserTable {
    pub name: String,
    pub path: PathBuf,
    pub format: TableFormat,
}

/// The file formats a user table can be read from.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Csv,
    Parquet,
    Json,
}

/// DataFusion with polyquery's catalog and functions.
pub struct DataFusionExecutor {
    ctx: SessionContext,
    catalog: Catalog,
}

/// The session settings every query runs with. The same query over the same data must return the
/// same rows in the same order on every run, on any number of partitions: plans keep no exchange
/// and partitions are concatenated in order (see `in_order`).
pub fn session_config(partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions.max(1))
        .with_information_schema(false);
    in_order::deterministic_options(config.options_mut());
    config
}

/// Partitions per query when the configuration names none: one per core.
pub fn default_partitions() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A session with these settings whose every operator yields (see `yielding`), so that a cancel,
/// a timeout or a client hanging up stops any query within a few batches.
pub fn session(partitions: usize) -> SessionContext {
    let state = SessionStateBuilder::new()
        .with_config(session_config(partitions))
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(in_order::ConcatInOrder))
        .with_physical_optimizer_rule(Arc::new(super::yielding::YieldEverywhere))
        .build();
    SessionContext::new_with_state(state)
}

impl DataFusionExecutor {
    pub async fn new(partitions: usize, user_tables: &[UserTable]) -> Result<Self, EngineError> {
        let ctx = session(partitions);
        super::functions::register_functions(&ctx);
        let mut tables = register_fixtures(&ctx).await.map_err(classify_error)?;
        for table in user_tables {
            tables.push(register_user_table(&ctx, table).await?);
        }
        Ok(DataFusionExecutor {
            ctx,
            catalog: Catalog::new(tables),
        })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    fn statement(&self, sql: &str) -> Result<sqlparser::ast::Statement, EngineError> {
        let mut statement = crate::sql::parse_query(sql, &GenericDialect {})?;
        self.catalog.resolve(&mut statement, Fold::Preserve);
        Ok(statement)
    }

    /// The logical plan of `sql` with `params` bound.
    async fn plan(&self, sql: &str, params: &Params) -> Result<LogicalPlan, EngineError> {
        let statement = self.statement(sql)?;
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        Ok(if params.is_empty() {
            plan
        } else {
            plan.with_param_values(param_values(params)?)?
        })
    }

    async fn describe(&self, sql: &str, params: &Params) -> Result<Described, EngineError> {
        let plan = self.plan(sql, params).await?;
        let mut tables = Vec::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                tables.push(scan.table_name.table().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(Described {
            tables,
            schema: Arc::new(plan.schema().as_arrow().clone()),
        })
    }

    async fn run(
        &self,
        sql: &str,
        params: &Params,
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let plan = self.plan(sql, params).await?;
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let mut task = frame.task_ctx();
        let mut physical = frame.clone().create_physical_plan().await?;
        if !in_order::is_deterministic(&physical) {
            // An exchange or an outer join over several partitions is left: one partition then.
            let mut config = self.ctx.state().config().clone();
            config.options_mut().execution.target_partitions = 1;
            let state = SessionStateBuilder::new_from_existing(self.ctx.state())
                .with_config(config)
                .build();
            let frame = DataFrame::new(state, frame.into_unoptimized_plan());
            task = frame.task_ctx();
            physical = frame.create_physical_plan().await?;
        }
        Ok(in_order::single_output(physical).execute(0, Arc::new(task))?)
    }
}

impl DataFusionExecutor {
    /// A session of its own that sees only the stored result: from memory when it is cached there,
    /// else straight from its Arrow IPC file, so a large result is never loaded whole.
    async fn run_over(
        &self,
        sql: &str,
        table: &str,
        source: StoredResult,
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let ctx = session(1);
        match source {
            StoredResult::Memory { schema, batches } => {
                let table_data = MemTable::try_new(schema, vec![batches.as_ref().clone()])?;
                ctx.register_table(table, Arc::new(table_data))?;
            }
            StoredResult::ArrowFile { path, .. } => {
                let path = path.to_string_lossy().to_string();
                ctx.register_arrow(table, &path, ArrowReadOptions::default())
                    .await?;
            }
        }
        let frame = ctx.sql(sql).await?;
        Ok(frame.execute_stream().await?)
    }
}

impl Executor for DataFusionExecutor {
    fn check(&self, sql: &str) -> Result<(), EngineError> {
        self.statement(sql).map(|_| ())
    }

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> BoxFuture<'a, Result<SendableRecordBatchStream, EngineError>> {
        Box::pin(self.run(sql, params))
    }

    fn execute_over<'a>(
        &'a self,
        sql: &'a str,
        table: &'a str,
        source: StoredResult,
    ) -> BoxFuture<'a, Result<SendableRecordBatchStream, EngineError>> {
        Box::pin(self.run_over(sql, table, source))
    }

    fn describe<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> BoxFuture<'a, Result<Described, EngineError>> {
        Box::pin(self.describe(sql, params))
    }

    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

async fn register_user_table(
    ctx: &SessionContext,
    table: &UserTable,
) -> Result<RegisteredTable, EngineError> {
    let path = table.path.to_string_lossy().to_string();
    let registered = match table.format {
        TableFormat::Csv => {
            ctx.register_csv(&table.name, &path, CsvReadOptions::new())
                .await
        }
        TableFormat::Parquet => {
            ctx.register_parquet(&table.name, &path, ParquetReadOptions::default())
                .await
        }
        TableFormat::Json => {
            ctx.register_json(&table.name, &path, JsonReadOptions::default())
                .await
        }
    };
    registered.map_err(|e| {
        EngineError::new(
            ErrorKind::Plan,
            format!("table {} ({}): {}", table.name, path, classify_error(e)),
        )
    })?;
    let provider = ctx
        .table_provider(table.name.as_str())
        .await
        .map_err(classify_error)?;
    Ok(RegisteredTable {
        name: table.name.clone(),
        sample: None,
        schema: provider.schema(),
        row_count: None,
        description: format!(
            "{} file {}",
            format!("{:?}", table.format).to_lowercase(),
            path
        ),
    })
}

/// Binds parameters: named ones when any are given, else positional.
fn param_values(params: &Params) -> Result<ParamValues, EngineError> {
    if params.named.is_empty() {
        let values = params
            .positional
            .iter()
            .map(scalar)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParamValues::from(values))
    } else {
        let values = params
            .named
            .iter()
            .map(|(k, v)| Ok((k.clone(), scalar(v)?)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(ParamValues::from(values))
    }
}

fn scalar(value: &ParamValue) -> Result<ScalarValue, EngineError> {
    Ok(match value {
        ParamValue::Null => ScalarValue::Null,
        ParamValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
        ParamValue::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        ParamValue::String(s) => ScalarValue::Utf8(Some(s.clone())),
        other => {
            return Err(EngineError::new(
                ErrorKind::Plan,
                format!("a parameter must be a scalar, not {other}"),
            ));
        }
    })
}

/// Shared by tests and benchmarks: an executor over the fixtures with one partition.
pub async fn default_executor() -> Result<Arc<DataFusionExecutor>, EngineError> {
    Ok(Arc::new(DataFusionExecutor::new(1, &[]).await?))
}
