//! A view's parameters: declared by `--parameters` in its `Sys.Admin.SetupView` call (one line each,
//! `Name,DataType,DefaultValue[,IsTableDataMandatory[,Description]]`), used in its query as
//! `#PARAMETERVALUE(Name)`, and given a value by a query that reads the view with
//! `where Name = <literal>` (else the default applies). The condition binds the parameter and
//! leaves the query's `WHERE`: a parameter is not a column of the view.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{BinaryOperator, Expr, Query, Select, Value, VisitMut, VisitorMut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::query::{EngineError, ErrorKind};

/// The placeholder `#PARAMETERVALUE(Name)` becomes until a value is bound.
pub const PLACEHOLDER_PREFIX: &str = "#";
/// The most parameters one view may declare.
const MAX_PARAMETERS: usize = 100;
/// The data types a parameter may have (Luminesce's names).
const TYPES: [&str; 8] = [
    "Text", "Int", "BigInt", "Double", "Decimal", "Boolean", "Date", "DateTime",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewParameter {
    pub name: String,
    pub data_type: String,
    pub default: String,
    pub description: Option<String>,
}

fn syntax(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorKind::Syntax, message.into())
}

/// The parameters of a `--parameters` option's lines.
pub fn parse(text: &str) -> Result<Vec<ViewParameter>, EngineError> {
    let mut parameters: Vec<ViewParameter> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.splitn(5, ',').map(str::trim).collect();
        let [name, data_type, default, rest @ ..] = fields.as_slice() else {
            return Err(syntax(format!(
                "the parameter line '{line}' must be Name,DataType,DefaultValue[,IsTableDataMandatory[,Description]]"
            )));
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(syntax(format!("'{name}' is not a parameter name")));
        }
        let Some(data_type) = TYPES.iter().find(|t| t.eq_ignore_ascii_case(data_type)) else {
            return Err(syntax(format!(
                "the parameter {name} has the data type '{data_type}'; use one of {}",
                TYPES.join(", ")
            )));
        };
        if parameters.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(syntax(format!("the parameter {name} is declared twice")));
        }
        let parameter = ViewParameter {
            name: name.to_string(),
            data_type: data_type.to_string(),
            default: default.trim_matches('"').to_string(),
            description: rest
                .get(1)
                .map(|d| d.trim_matches('"').to_string())
                .filter(|d| !d.is_empty()),
        };
        literal(
            &parameter,
            &Value::SingleQuotedString(parameter.default.clone()),
        )?;
        parameters.push(parameter);
    }
    if parameters.len() > MAX_PARAMETERS {
        return Err(syntax(format!(
            "a view may declare at most {MAX_PARAMETERS} parameters"
        )));
    }
    Ok(parameters)
}

/// A value given to a parameter as the SQL expression of its type. Text is checked against the
/// type, so a bad value is an error here rather than a surprise in the view's query.
fn literal(parameter: &ViewParameter, value: &Value) -> Result<Expr, EngineError> {
    let text = match value {
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
        Value::Number(n, _) => n.clone(),
        Value::Boolean(b) => b.to_string(),
        other => {
            return Err(syntax(format!(
                "the parameter {} takes a literal value, not {other}",
                parameter.name
            )));
        }
    };
    let bad = || {
        syntax(format!(
            "'{text}' is not a {} value for the parameter {}",
            parameter.data_type, parameter.name
        ))
    };
    let number = |ok: bool| {
        if ok {
            Ok(Expr::Value(
                Value::Number(text.trim().to_string(), false).into(),
            ))
        } else {
            Err(bad())
        }
    };
    match parameter.data_type.as_str() {
        "Int" | "BigInt" => number(text.trim().parse::<i64>().is_ok()),
        "Double" | "Decimal" => number(text.trim().parse::<f64>().is_ok_and(f64::is_finite)),
        "Boolean" => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Expr::Value(Value::Boolean(true).into())),
            "false" | "0" => Ok(Expr::Value(Value::Boolean(false).into())),
            _ => Err(bad()),
        },
        "Date" | "DateTime" => {
            let moment = super::script::date_literal(text.trim()).ok_or_else(bad)?;
            // The text is a rendered literal of a checked date-time, parsed back into the AST.
            let cast = format!("CAST({} AS TIMESTAMP)", Value::SingleQuotedString(moment));
            Parser::new(&GenericDialect {})
                .try_with_sql(&cast)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| EngineError::internal(e.to_string()))
        }
        _ => Ok(Expr::Value(Value::SingleQuotedString(text).into())),
    }
}

/// Puts each parameter's value (bound, else its default) where the query has
/// `#PARAMETERVALUE(Name)`; a name no parameter has is an error.
pub fn bind(
    query: &mut Query,
    parameters: &[ViewParameter],
    bound: &HashMap<String, Expr>,
) -> Result<(), EngineError> {
    let mut values = HashMap::with_capacity(parameters.len());
    for p in parameters {
        let key = p.name.to_lowercase();
        let value = match bound.get(&key) {
            Some(v) => v.clone(),
            None => literal(p, &Value::SingleQuotedString(p.default.clone()))?,
        };
        values.insert(key, value);
    }
    let mut binder = Binder {
        values: &values,
        missing: None,
    };
    let _ = query.visit(&mut binder);
    match binder.missing {
        Some(name) => Err(syntax(format!(
            "#PARAMETERVALUE({name}) names no parameter of the view: declare it with --parameters"
        ))),
        None => Ok(()),
    }
}

struct Binder<'a> {
    values: &'a HashMap<String, Expr>,
    missing: Option<String>,
}

impl VisitorMut for Binder<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &v.value
            && let Some(name) = p.strip_prefix(PLACEHOLDER_PREFIX)
        {
            match self.values.get(&name.to_lowercase()) {
                Some(value) => *expr = Expr::Nested(Box::new(value.clone())),
                None => {
                    self.missing = Some(name.to_string());
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Takes the conditions `Name = <literal>` (or `<qualifier>.Name = <literal>`, either way round)
/// on `parameters` out of a select's `WHERE` (each becomes `TRUE`): the values they bind.
pub fn take_bindings(
    select: &mut Select,
    qualifier: &str,
    parameters: &[ViewParameter],
) -> Result<HashMap<String, Expr>, EngineError> {
    let mut bound = HashMap::new();
    if let Some(selection) = &mut select.selection {
        take(selection, qualifier, parameters, &mut bound)?;
    }
    Ok(bound)
}

fn take(
    expr: &mut Expr,
    qualifier: &str,
    parameters: &[ViewParameter],
    bound: &mut HashMap<String, Expr>,
) -> Result<(), EngineError> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            take(left, qualifier, parameters, bound)?;
            take(right, qualifier, parameters, bound)
        }
        Expr::Nested(inner) => take(inner, qualifier, parameters, bound),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let pair = match (left.as_ref(), right.as_ref()) {
                (name, Expr::Value(v)) | (Expr::Value(v), name) => {
                    parameter(name, qualifier, parameters).map(|p| (p, v.value.clone()))
                }
                _ => None,
            };
            if let Some((p, value)) = pair {
                bound.insert(p.name.to_lowercase(), literal(p, &value)?);
                *expr = Expr::Value(Value::Boolean(true).into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The parameter an expression names: `Name` or `<qualifier>.Name`, ignoring case.
fn parameter<'a>(
    expr: &Expr,
    qualifier: &str,
    parameters: &'a [ViewParameter],
) -> Option<&'a ViewParameter> {
    let name = match expr {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, n] if q.value.eq_ignore_ascii_case(qualifier) => &n.value,
            _ => return None,
        },
        _ => return None,
    };
    parameters
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_checked() {
        let ps = parse(
            "Limit,Int,3,true\n  Name, text ,Str1,false,\"A name\"\nFrom,DateTime,2000-01-01",
        )
        .unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[1].data_type, "Text");
        assert_eq!(ps[1].description.as_deref(), Some("A name"));
        for (bad, says) in [
            ("Limit,Int", "must be Name"),
            ("1x,Int,1", "not a parameter name"),
            ("L,Blob,1", "data type"),
            ("L,Int,x", "not a Int value"),
            ("L,Int,1\nl,Int,2", "declared twice"),
            ("D,Date,2020-13-01", "not a Date value"),
        ] {
            let e = parse(bad).unwrap_err().message;
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
