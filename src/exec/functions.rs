//! polyquery's built-in contract-testing SQL functions, usable from every dialect.
//!
//! | function | does |
//! |---|---|
//! | `pq_sleep(ms)` | sleeps `ms` milliseconds per row, returns `ms` |
//! | `pq_fail('message')` | fails at execution with exactly `message` |
//! | `sleep(value, ms)` | AsterixDB's test function: returns `value` after `ms` milliseconds per row |
//! | `inject_failure(value, flag)` | AsterixDB's test function: fails where `flag` is true, else returns `value` |
//!
//! The sleeps are asynchronous (DataFusion async scalar UDFs): dropping the query's stream drops
//! the timer, so a cancelled query stops at once instead of finishing its sleep. All four are
//! volatile, so the planner never evaluates them early: a failure always happens while executing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::ArrayRef;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::cast::{as_boolean_array, as_int64_array};
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The message AsterixDB's `inject_failure` fails with.
pub const ASTERIXDB_INJECTED_FAILURE: &str = "Injected failure in inject-failure";

/// A failure a query asked for (`pq_fail`, `inject_failure`); its Display is exactly the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InjectedFailure {
    pub message: String,
}

impl InjectedFailure {
    /// The injected failure behind a query error, however DataFusion wrapped it on the way out.
    pub fn find(err: &DataFusionError) -> Option<&InjectedFailure> {
        let mut cause: &(dyn std::error::Error + 'static) = err;
        loop {
            if let Some(failure) = cause.downcast_ref::<InjectedFailure>() {
                return Some(failure);
            }
            cause = cause.source()?;
        }
    }

    fn into_error(message: impl Into<String>) -> DataFusionError {
        DataFusionError::External(Box::new(InjectedFailure {
            message: message.into(),
        }))
    }
}

/// Registers polyquery's built-in contract-testing functions and SQLite's (`sqlite_<name>`).
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(AsyncScalarUDF::new(Arc::new(PqSleep::new())).into_scalar_udf());
    ctx.register_udf(ScalarUDF::new_from_impl(PqFail::new()));
    ctx.register_udf(AsyncScalarUDF::new(Arc::new(AsterixSleep::new())).into_scalar_udf());
    ctx.register_udf(ScalarUDF::new_from_impl(InjectFailure::new()));
    super::sqlite_functions::register(ctx);
    super::sqlpp_functions::register(ctx);
    for udf in super::calcite_time::udfs() {
        ctx.register_udf(udf);
    }
}

/// Total time to sleep for a column of per-row millisecond counts (nulls and negatives count 0).
fn total_sleep(ms: &ColumnarValue, rows: usize) -> Result<Duration> {
    let ms = cast(&ms.to_array(rows)?, &DataType::Int64)?;
    let total = as_int64_array(&ms)?
        .iter()
        .map(|v| u64::try_from(v.unwrap_or(0)).unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    Ok(Duration::from_millis(total))
}

/// The boxed future `#[async_trait]` would produce for `invoke_async_with_args`.
type AsyncInvocation<'a> = Pin<Box<dyn Future<Output = Result<ColumnarValue>> + Send + 'a>>;

/// `pq_sleep(ms)`: sleeps `ms` milliseconds for each row, returns `ms`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PqSleep {
    signature: Signature,
}

impl PqSleep {
    fn new() -> Self {
        Self {
            signature: Signature::uniform(1, vec![DataType::Int64], Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for PqSleep {
    fn name(&self) -> &str {
        "pq_sleep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("pq_sleep runs only as an async function")
    }
}

impl AsyncScalarUDFImpl for PqSleep {
    // `#[async_trait]` expansion written out: the crate does not depend on `async-trait`.
    fn invoke_async_with_args<'life0, 'async_trait>(
        &'life0 self,
        args: ScalarFunctionArgs,
    ) -> AsyncInvocation<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let [ms] = args.args.as_slice() else {
                return internal_err!("pq_sleep takes one argument");
            };
            tokio::time::sleep(total_sleep(ms, args.number_rows)?).await;
            let ms: ArrayRef = cast(&ms.to_array(args.number_rows)?, &DataType::Int64)?;
            Ok(ColumnarValue::Array(ms))
        })
    }
}

/// AsterixDB's `sleep(value, ms)`: returns `value` after sleeping `ms` milliseconds for each row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AsterixSleep {
    signature: Signature,
}

impl AsterixSleep {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for AsterixSleep {
    fn name(&self) -> &str {
        "sleep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_argument_type("sleep", arg_types)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("sleep runs only as an async function")
    }
}

impl AsyncScalarUDFImpl for AsterixSleep {
    // `#[async_trait]` expansion written out: the crate does not depend on `async-trait`.
    fn invoke_async_with_args<'life0, 'async_trait>(
        &'life0 self,
        args: ScalarFunctionArgs,
    ) -> AsyncInvocation<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let [value, ms] = args.args.as_slice() else {
                return internal_err!("sleep takes two arguments");
            };
            tokio::time::sleep(total_sleep(ms, args.number_rows)?).await;
            Ok(value.clone())
        })
    }
}

/// `pq_fail('message')`: fails with exactly `message` when it is evaluated for a row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PqFail {
    signature: Signature,
}

impl PqFail {
    fn new() -> Self {
        Self {
            signature: Signature::uniform(1, vec![DataType::Utf8], Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for PqFail {
    fn name(&self) -> &str {
        "pq_fail"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Null)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [message] = args.args.as_slice() else {
            return internal_err!("pq_fail takes one argument");
        };
        if args.number_rows == 0 {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        let message = match message {
            ColumnarValue::Scalar(scalar) => scalar.clone(),
            ColumnarValue::Array(array) => ScalarValue::try_from_array(array, 0)?,
        };
        let text = match message {
            ScalarValue::Utf8(Some(text)) => text,
            _ => String::from("pq_fail"),
        };
        Err(InjectedFailure::into_error(text))
    }
}

/// AsterixDB's `inject_failure(value, flag)`: fails if `flag` is true for any row, else `value`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct InjectFailure {
    signature: Signature,
}

impl InjectFailure {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for InjectFailure {
    fn name(&self) -> &str {
        "inject_failure"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_argument_type("inject_failure", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, flag] = args.args.as_slice() else {
            return internal_err!("inject_failure takes two arguments");
        };
        let flags = cast(&flag.to_array(args.number_rows)?, &DataType::Boolean)?;
        if as_boolean_array(&flags)?.iter().any(|f| f == Some(true)) {
            return Err(InjectedFailure::into_error(ASTERIXDB_INJECTED_FAILURE));
        }
        Ok(value.clone())
    }
}

fn first_argument_type(function: &str, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types.first() {
        Some(data_type) => Ok(data_type.clone()),
        None => internal_err!("{function} takes two arguments"),
    }
}
