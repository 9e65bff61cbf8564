//! Calcite's function and operator library as Kylin exposes it, rewritten on the sqlparser AST into
//! what the engine runs:
//!
//! - `FLOOR`/`CEIL(x TO unit)`, `TIMESTAMPADD`, `TIMESTAMPDIFF` call the engine's Calcite UDFs
//!   (`exec::calcite_time`), which keep Calcite's week start and month arithmetic.
//! - `EXTRACT(part FROM x)` and `YEAR(x)`, `QUARTER`, `MONTH`, `WEEK`, `DAYOFMONTH`, `DAYOFWEEK`,
//!   `DAYOFYEAR`, `HOUR`, `MINUTE`, `SECOND` are BIGINT `date_part`s (`DAYOFWEEK` is 1 on Sunday).
//! - `{fn …}` JDBC escapes lose their braces and take the engine's names (`UCASE` → `upper`,
//!   `CONVERT(x, SQL_INTEGER)` → `CAST`, …).
//! - CAST type names: Calcite's `FLOAT` is a double, `VARCHAR(n)`/`CHAR(n)` carry no length in
//!   the engine, `TIMESTAMP(p)` keeps no precision.
//!
//! `||`, `SUBSTRING(x FROM a FOR b)` and `POSITION(a IN b)` the engine runs as written.
//! Each rewrite happens after its arguments' (post-order), so nested calls compose.

use std::ops::ControlFlow;

use sqlparser::ast::{
    CastKind, CeilFloorKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Value, VisitorMut,
};

use crate::exec::calcite_time::{self, Unit};
use crate::sql::call;

/// Rewrites Calcite's functions; the first problem found is kept in `failure`.
#[derive(Default)]
pub struct Library {
    pub failure: Option<String>,
}

impl VisitorMut for Library {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match rewrite(expr) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(message) => {
                self.failure = Some(message);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// The replacement for `expr`, if Calcite spells it differently from the engine.
fn rewrite(expr: &mut Expr) -> Result<Option<Expr>, String> {
    Ok(match expr {
        Expr::Floor {
            expr: inner,
            field: CeilFloorKind::DateTimeField(field),
        } => Some(call(
            calcite_time::FLOOR,
            vec![unit(&field.to_string())?, take(inner)],
        )),
        Expr::Ceil {
            expr: inner,
            field: CeilFloorKind::DateTimeField(field),
        } => Some(call(
            calcite_time::CEIL,
            vec![unit(&field.to_string())?, take(inner)],
        )),
        Expr::Extract {
            field, expr: inner, ..
        } => Some(date_part(&field.to_string(), take(inner))),
        Expr::Cast { data_type, .. } => {
            if let Some(t) = engine_type(data_type) {
                *data_type = t;
            }
            None
        }
        Expr::Function(function) => {
            function.uses_odbc_syntax = false;
            function_call(function)?
        }
        _ => None,
    })
}

/// Calcite's (and JDBC's) scalar functions the engine names or computes differently.
fn function_call(function: &mut Function) -> Result<Option<Expr>, String> {
    let [name] = function.name.0.as_slice() else {
        return Ok(None);
    };
    let Some(name) = name.as_ident().filter(|i| i.quote_style.is_none()) else {
        return Ok(None);
    };
    let name = name.value.to_ascii_uppercase();
    let FunctionArguments::List(list) = &mut function.args else {
        // `CURRENT_DATE` and friends without parentheses.
        return Ok(None);
    };
    if function.over.is_some() || list.duplicate_treatment.is_some() {
        return Ok(None);
    }
    let Some(mut args) = plain_args(list) else {
        return Ok(None);
    };
    let renamed = |engine: &str, args: Vec<Expr>| Ok(Some(call(engine, args)));
    match (name.as_str(), args.len()) {
        ("TIMESTAMPADD", 3) | ("TIMESTAMPDIFF", 3) => {
            let unit = unit(&unit_word(&args[0])?)?;
            args[0] = unit;
            let udf = if name == "TIMESTAMPADD" {
                calcite_time::TIMESTAMPADD
            } else {
                calcite_time::TIMESTAMPDIFF
            };
            renamed(udf, args)
        }
        (
            "YEAR" | "QUARTER" | "MONTH" | "WEEK" | "DAYOFMONTH" | "DAYOFWEEK" | "DAYOFYEAR"
            | "HOUR" | "MINUTE" | "SECOND",
            1,
        ) => Ok(Some(date_part(&name, args.remove(0)))),
        ("UCASE", 1) => renamed("upper", args),
        ("LCASE", 1) => renamed("lower", args),
        ("LENGTH" | "CHAR_LENGTH" | "CHARACTER_LENGTH", 1) => renamed("character_length", args),
        ("IFNULL", 2) => renamed("coalesce", args),
        // LOCATE(needle, haystack) is POSITION(needle IN haystack).
        ("LOCATE", 2) => {
            args.swap(0, 1);
            renamed("strpos", args)
        }
        ("CEILING", 1) => renamed("ceil", args),
        ("TRUNCATE", 2) => renamed("trunc", args),
        ("LOG", 1) => renamed("ln", args),
        ("CURDATE", 0) => renamed("current_date", args),
        ("CURTIME", 0) => renamed("current_time", args),
        ("NOW", 0) => renamed("now", args),
        ("DATABASE", 0) => Ok(Some(Expr::value(Value::SingleQuotedString(
            super::sql::SCHEMA.into(),
        )))),
        ("CONVERT", 2) => {
            let word = unit_word(&args[1])?;
            let data_type =
                jdbc_type(&word).ok_or_else(|| format!("CONVERT to {word} is not supported"))?;
            Ok(Some(Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(args.remove(0)),
                data_type,
                array: false,
                format: None,
            }))
        }
        _ => Ok(None),
    }
}

/// The arguments when they are all plain expressions (no `*`, names or clauses).
fn plain_args(list: &mut FunctionArgumentList) -> Option<Vec<Expr>> {
    if !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// A unit argument, as the bare word it is written as (`WEEK`, `SQL_TSI_DAY`, `'day'`).
fn unit_word(expr: &Expr) -> Result<String, String> {
    match expr {
        Expr::Identifier(ident) => Ok(ident.value.clone()),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Ok(s.clone()),
            other => Err(format!("'{other}' is not a valid time frame")),
        },
        other => Err(format!("'{other}' is not a valid time frame")),
    }
}

/// A unit as the UDFs take it: its Calcite name as a string literal.
fn unit(word: &str) -> Result<Expr, String> {
    let unit = Unit::parse(word).ok_or_else(|| format!("'{word}' is not a valid time frame"))?;
    Ok(string(unit.name()))
}

/// `EXTRACT(part FROM x)` as Calcite answers it: a BIGINT, Sunday the first day of the week.
fn date_part(part: &str, of: Expr) -> Expr {
    let upper = part.to_ascii_uppercase();
    let (engine, shift) = match upper.as_str() {
        "DAYOFMONTH" => ("day", 0),
        "DAYOFWEEK" | "DOW" => ("dow", 1),
        "DAYOFYEAR" => ("doy", 0),
        other => (other, 0),
    };
    let mut value = call("date_part", vec![string(&engine.to_ascii_lowercase()), of]);
    if shift != 0 {
        value = Expr::BinaryOp {
            left: Box::new(value),
            op: sqlparser::ast::BinaryOperator::Plus,
            right: Box::new(Expr::value(Value::Number(shift.to_string(), false))),
        };
    }
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::Nested(Box::new(value))),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    }
}

/// The engine's spelling of a Calcite CAST type, when it differs.
fn engine_type(t: &DataType) -> Option<DataType> {
    match t {
        // Calcite's FLOAT is an 8-byte double.
        DataType::Float(_) => Some(DataType::Double(sqlparser::ast::ExactNumberInfo::None)),
        DataType::Varchar(Some(_)) | DataType::Char(Some(_)) | DataType::Character(Some(_)) => {
            Some(DataType::Varchar(None))
        }
        DataType::Timestamp(Some(_), tz) => Some(DataType::Timestamp(None, *tz)),
        _ => None,
    }
}

/// `CONVERT`'s JDBC type names (`SQL_INTEGER`, `SQL_VARCHAR`, …).
fn jdbc_type(word: &str) -> Option<DataType> {
    use sqlparser::ast::ExactNumberInfo;
    let upper = word.to_ascii_uppercase();
    Some(match upper.strip_prefix("SQL_").unwrap_or(&upper) {
        "BIGINT" => DataType::BigInt(None),
        "INTEGER" => DataType::Integer(None),
        "SMALLINT" => DataType::SmallInt(None),
        "TINYINT" => DataType::TinyInt(None),
        "DOUBLE" | "FLOAT" => DataType::Double(ExactNumberInfo::None),
        "REAL" => DataType::Real,
        "DECIMAL" | "NUMERIC" => DataType::Decimal(ExactNumberInfo::None),
        "VARCHAR" | "CHAR" | "LONGVARCHAR" | "WVARCHAR" | "WCHAR" => DataType::Varchar(None),
        "BOOLEAN" | "BIT" => DataType::Boolean,
        "DATE" => DataType::Date,
        "TIMESTAMP" => DataType::Timestamp(None, sqlparser::ast::TimezoneInfo::None),
        _ => return None,
    })
}

fn string(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}

fn take(expr: &mut Box<Expr>) -> Expr {
    std::mem::replace(expr.as_mut(), Expr::value(Value::Null))
}
