//! SQL helpers built on sqlparser: parse with a dialect, resolve identifiers the way a vendor does,
//! and build the reshaping queries run over stored results.

mod fueled;
pub mod guard;
pub mod reshape;
pub mod resolve;

use sqlparser::ast::Statement;
use sqlparser::dialect::Dialect;

pub use crate::query::syntax_message;
use crate::query::{EngineError, ErrorKind};

/// Parses SQL text into statements within the limits of [`guard`], mapping a parse failure to a
/// `Syntax` error that names the line and column sqlparser stopped at (or the limit).
pub fn parse(sql: &str, dialect: &'static dyn Dialect) -> Result<Vec<Statement>, EngineError> {
    guard::parse_with(dialect, sql, |parser| {
        parser.try_with_sql(sql)?.parse_statements()
    })
    .map_err(|e| EngineError::new(ErrorKind::Syntax, e.message()))
}

/// Parses text that must hold exactly one query (`SELECT`, `WITH`, `VALUES`).
pub fn parse_query(sql: &str, dialect: &'static dyn Dialect) -> Result<Statement, EngineError> {
    let mut statements = parse(sql, dialect)?;
    match statements.len() {
        0 => Err(EngineError::new(
            ErrorKind::Syntax,
            "no SQL statement was given",
        )),
        1 => {
            let statement = statements.remove(0);
            if matches!(statement, Statement::Query(_)) {
                Ok(statement)
            } else {
                Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "only queries are run here, not {}",
                        statement_kind(&statement)
                    ),
                ))
            }
        }
        n => Err(EngineError::new(
            ErrorKind::Unsupported,
            format!("one statement at a time is run here; {n} were given"),
        )),
    }
}

/// A short name for a statement's kind, for error messages ("INSERT", "CREATE TABLE", ...).
pub fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "CREATE" | "DROP" | "ALTER"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "an empty statement".into(),
    }
}
