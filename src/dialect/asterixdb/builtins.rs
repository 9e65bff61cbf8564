//! SQL++ expressions on the engine: each operator, path and builtin function either becomes the
//! engine expression that answers exactly as AsterixDB does, or the query is refused. What is
//! not listed here is refused, so that polyquery never answers a SQL++ query wrongly.
//!
//! SQL++ facts kept: `^` is power; `/` divides as doubles and `x / 0` is null; `%` by zero is
//! null; array indexes and `substring` offsets count from 0; `position` counts from 0 and is -1
//! when absent; `range(a, b)` includes `b`; an object constructor keeps the first of duplicate
//! field names; a subquery used as a value is a collection (not translated: refused).

use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Query, Subscript, UnaryOperator, Value, visit_expressions_mut,
};

use sqlparser::ast::{SelectItem, SetExpr, Spanned, TableFactor};
use sqlparser::tokenizer::Location;

use super::errors::AsxError;
use super::sqlpp::{Sources, arg_expr, rewrite_source, template_expr};

/// Functions the engine answers as AsterixDB does, under the same name and arguments.
const SAME: &[&str] = &[
    // SQL-92 aggregates in a grouped query.
    "count",
    "sum",
    "min",
    "max",
    "avg",
    // Numeric functions returning doubles for any numeric argument.
    "sqrt",
    "exp",
    "ln",
    "log",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "abs",
    // Strings.
    "lower",
    "upper",
    "length",
    "ltrim",
    "rtrim",
    "reverse",
    "repeat",
    "replace",
    "starts_with",
    "ends_with",
    "contains",
    // polyquery's own, for tests of the wire.
    "sleep",
    "pq_sleep",
    "pq_fail",
    "inject_failure",
    // Temporal constructors, made casts later in translation.
    "datetime",
    "date",
    "time",
];

/// Scalar functions translated by name above whose value is MISSING when an argument is.
const MISSING_OUT: &[&str] = &[
    "round",
    "round_half_to_even",
    "ceiling",
    "ceil",
    "floor",
    "bitand",
    "bitor",
    "bitxor",
    "bitnot",
    "bitcount",
    "bitshift",
    "string_to_codepoint",
    "codepoint_to_string",
];

/// What the expression pass needs for collection functions over `SELECT VALUE` subqueries.
pub(super) struct Collections<'s, 'a> {
    /// Where each nested `SELECT VALUE` query starts; one is taken off when it is translated.
    pub value_queries: Vec<Location>,
    /// What a subquery's FROM names are checked against.
    pub sources: &'s Sources<'a>,
}

/// Functions over a window (`OVER (…)`) that answer as the SQL standard's.
const WINDOW: &[&str] = &[
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "count",
    "sum",
    "min",
    "max",
    "avg",
];

/// Rewrites every expression of `query` to its engine form, or says why it cannot be answered.
pub(super) fn sqlpp_expressions(
    query: &mut Query,
    collections: &mut Collections<'_, '_>,
) -> Result<(), AsxError> {
    let flow = visit_expressions_mut(query, |expr| match rewrite(expr, collections) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    });
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn refuse(what: &str) -> AsxError {
    AsxError::compilation(&format!("{what} is not supported by polyquery"))
}

/// One expression, its children already rewritten.
fn rewrite(expr: &mut Expr, collections: &mut Collections<'_, '_>) -> Result<(), AsxError> {
    if let Some(value) = with_missing(expr)? {
        *expr = value;
        return Ok(());
    }
    match expr {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Value(_)
        | Expr::Nested(_)
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Wildcard(_)
        | Expr::QualifiedWildcard(_, _) => Ok(()),
        Expr::Like {
            any: false,
            expr: operand,
            pattern,
            escape_char: None,
            ..
        } => like_pattern(pattern, operand.span().start),
        // Membership and existence read a `SELECT VALUE` subquery as the engine does.
        Expr::InSubquery { subquery, .. } | Expr::Exists { subquery, .. } => {
            value_subquery(subquery, collections).map(|_| ())
        }
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            // `CASE WHEN … THEN 1 ELSE 2.5 END` is a bigint or a double by the branch taken in
            // SQL++; the engine widens every branch to the common type.
            let kinds: std::collections::HashSet<&str> = conditions
                .iter()
                .map(|w| &w.result)
                .chain(else_result.as_deref())
                .filter_map(element_kind)
                .collect();
            if kinds.len() > 1 {
                return Err(refuse(
                    "a CASE whose branches are values of different types",
                ));
            }
            Ok(())
        }
        Expr::Array(array) => {
            // `[1, 'a']` is a heterogeneous array, which the engine's typed arrays cannot hold.
            // Integers of every width print alike once widened, but `[1, 2.5]` or an integer
            // next to a float would print the integer as a double (`1.0`).
            // Elements whose types the literals do not show are checked on the planned types
            // (`sqlpp_array`, see `planned_type_checks`).
            let kinds: std::collections::HashSet<&str> =
                array.elem.iter().filter_map(element_kind).collect();
            if kinds.len() > 1 {
                return Err(refuse("an array of values of different types"));
            }
            Ok(())
        }
        // A `SELECT VALUE` subquery is a collection, left for the function that takes it (one
        // left over is refused at the end); a subquery of objects is not translated as a value.
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select)
                if collections
                    .value_queries
                    .contains(&select.select_token.0.span.start) =>
            {
                // `(SELECT VALUE e)` with no clause but its projection is the collection `[e]`.
                let start = select.select_token.0.span.start;
                if let Some(value) = sole_value(query)
                    && let Some(at) = collections.value_queries.iter().position(|l| *l == start)
                {
                    collections.value_queries.remove(at);
                    *expr = Expr::Array(sqlparser::ast::Array {
                        elem: vec![value],
                        named: false,
                    });
                }
                Ok(())
            }
            _ => Err(refuse("a subquery used as a value")),
        },
        // sqlparser reads `floor(x)` and `ceil(x)` as SQL's FLOOR/CEIL forms.
        Expr::Floor { expr: arg, field } | Expr::Ceil { expr: arg, field } => {
            let plain = matches!(
                field,
                sqlparser::ast::CeilFloorKind::DateTimeField(
                    sqlparser::ast::DateTimeField::NoDateTime
                )
            );
            if !plain {
                return Err(refuse("FLOOR or CEIL with a unit or a scale"));
            }
            let arg = (**arg).clone();
            let function = match expr {
                Expr::Floor { .. } => "sqlpp_floor",
                _ => "sqlpp_ceil",
            };
            *expr = template_expr(&format!("SELECT {function}($A)"), &[arg])?;
            Ok(())
        }
        Expr::UnaryOp { op, .. } => match op {
            UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus => Ok(()),
            other => Err(refuse(&format!("the operator {other}"))),
        },
        Expr::BinaryOp { left, op, right } => {
            let replacement = match op {
                BinaryOperator::BitwiseXor => {
                    *expr = power(left, right)?;
                    return Ok(());
                }
                // A double of integers, a float of a float and an integer or float, null by zero.
                BinaryOperator::Divide => "SELECT sqlpp_divide($A, $B)",
                BinaryOperator::Modulo => "SELECT $A % NULLIF($B, 0)",
                // AsterixDB's arithmetic keeps the wider operand's type and fails past its range,
                // where the engine's wraps around; a constant index (`(2 + 1)`) stays as it is.
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply => {
                    let constant = constant_index(left)
                        .zip(constant_index(right))
                        .and_then(|(l, r)| match op {
                            BinaryOperator::Plus => l.checked_add(r),
                            BinaryOperator::Minus => l.checked_sub(r),
                            _ => l.checked_mul(r),
                        })
                        .is_some_and(|v| i64::try_from(v).is_ok());
                    if constant {
                        return Ok(());
                    }
                    let function = match op {
                        BinaryOperator::Plus => "sqlpp_add",
                        BinaryOperator::Minus => "sqlpp_subtract",
                        _ => "sqlpp_multiply",
                    };
                    let args = vec![(**left).clone(), (**right).clone()];
                    *expr = call(function, args)?;
                    return Ok(());
                }
                BinaryOperator::StringConcat
                | BinaryOperator::Gt
                | BinaryOperator::Lt
                | BinaryOperator::GtEq
                | BinaryOperator::LtEq
                | BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::And
                | BinaryOperator::Or => return Ok(()),
                other => return Err(refuse(&format!("the operator {other}"))),
            };
            *expr = template_expr(replacement, &[(**left).clone(), (**right).clone()])?;
            Ok(())
        }
        Expr::CompoundFieldAccess { root, access_chain } => {
            // An index past the end is MISSING in SQL++ and null in the engine: only a constant
            // index into a literal array is translated, past its end as the literal MISSING; so
            // is a field a literal object does not have (`{}.a`).
            if literal_missing(root, access_chain.first()) {
                *expr = missing();
                return Ok(());
            }
            let mut length = match root.as_ref() {
                Expr::Array(array) => Some(array.elem.len() as u64),
                _ => None,
            };
            for access in access_chain.iter_mut() {
                match access {
                    AccessExpr::Subscript(subscript) => {
                        zero_based_subscript(subscript, length)?;
                    }
                    // A field of a computed object (`({"a": 1}).a`): the engine names it as text.
                    AccessExpr::Dot(Expr::Identifier(field)) => {
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::value(Value::SingleQuotedString(field.value.clone())),
                        });
                    }
                    AccessExpr::Dot(_) => {}
                }
                length = None;
            }
            Ok(())
        }
        Expr::Dictionary(fields) => {
            // `{x: 1}` names its field by the value of `x`; only literal names are translated.
            let literal = |f: &&sqlparser::ast::DictionaryField| {
                matches!(f.key.quote_style, Some('\'' | '"'))
            };
            if let Some(computed) = fields.iter().find(|f| !literal(f)) {
                return Err(refuse(&format!(
                    "a computed field name ({}) in an object constructor",
                    computed.key.value
                )));
            }
            let mut seen = std::collections::HashSet::new();
            fields.retain(|f| seen.insert(f.key.value.clone()));
            Ok(())
        }
        Expr::Substring {
            expr: string,
            substring_from: Some(from),
            substring_for,
            special: true,
            ..
        } => {
            // `substring(s, offset[, length])`: the offset counts from 0, from the end when
            // negative; past the end the value is null (see `sqlpp_substring`).
            let args: Vec<Expr> = [Some(&**string), Some(&**from), substring_for.as_deref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            *expr = call("sqlpp_substring", args)?;
            Ok(())
        }
        Expr::Function(function) => {
            if matches!(function.args, FunctionArguments::None) {
                // A keyword read as a function without parentheses is a name (`user`).
                return Ok(());
            }
            if !matches!(function.args, FunctionArguments::List(_)) {
                return Err(refuse("this function call form"));
            }
            // A builtin may be named through a dataverse (`test.tinyint`: polyquery has no
            // user-defined functions to find first) and with `-` for `_` (`starts-with`).
            let name = match function.name.0.as_slice() {
                [ObjectNamePart::Identifier(i)] => i.value.to_ascii_lowercase().replace('-', "_"),
                [
                    ObjectNamePart::Identifier(dv),
                    ObjectNamePart::Identifier(i),
                ] => {
                    if !known_dataverse(&dv.value, collections.sources.dataverse) {
                        return Err(AsxError::compilation(&format!(
                            "Cannot find dataverse with name {}",
                            dv.value
                        ))
                        .at(dv.span.start));
                    }
                    i.value.to_ascii_lowercase().replace('-', "_")
                }
                _ => return Err(refuse(&format!("the function {}", function.name))),
            };
            if function.name.0.len() > 1 || function.name.to_string().contains('-') {
                // The plain name keeps the place of the call, for errors that say where it is.
                let mut plain = Ident::new(&name);
                if let Some(ObjectNamePart::Identifier(first)) = function.name.0.first() {
                    plain.span = first.span;
                }
                function.name = ObjectName::from(vec![plain]);
            }
            if function.filter.is_some() {
                return Err(refuse(&format!("{name} with FILTER")));
            }
            if function.over.is_some() {
                // Window functions are SQL's in SQL++.
                return if WINDOW.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(refuse(&format!("{name} with OVER")))
                };
            }
            match name.as_str() {
                // `range(a, b)` includes `b`, as the engine's generate_series does.
                "range" => {
                    function.name = ObjectName::from(vec![Ident::new("generate_series")]);
                    Ok(())
                }
                // SQL++'s rounding, as AsterixDB's evaluators compute it, on the argument's type.
                "round" | "ceiling" | "ceil" | "floor" | "round_half_to_even" => {
                    let engine = match name.as_str() {
                        "round" => "sqlpp_round",
                        "round_half_to_even" => "sqlpp_round_half_to_even",
                        "floor" => "sqlpp_floor",
                        _ => "sqlpp_ceil",
                    };
                    let takes_digits = matches!(name.as_str(), "round" | "round_half_to_even");
                    let count = match &function.args {
                        FunctionArguments::List(list) => list.args.len(),
                        _ => 0,
                    };
                    let args =
                        function_args(function, if takes_digits && count == 2 { 2 } else { 1 })?;
                    let template = match args.len() {
                        2 => format!("SELECT {engine}($A, $B)"),
                        _ => format!("SELECT {engine}($A)"),
                    };
                    *expr = template_expr(&template, &args)?;
                    Ok(())
                }
                "position" | "position0" | "pos" | "pos0" => {
                    let args = plain_args(function)?;
                    *expr = template_expr("SELECT strpos($A, $B) - 1", &args)?;
                    Ok(())
                }
                // AsterixDB's other names for functions the engine has.
                "string_length" | "lowercase" | "uppercase" => {
                    let engine = match name.as_str() {
                        "string_length" => "length",
                        "lowercase" => "lower",
                        _ => "upper",
                    };
                    function.name = ObjectName::from(vec![Ident::new(engine)]);
                    Ok(())
                }
                // A Java pattern found anywhere in the string, for the patterns whose meaning the
                // engine's regular expressions share (see `java_pattern`).
                // A Java pattern found anywhere in the string (or where it is first found), for
                // the patterns whose meaning the engine's regex shares (see `java_pattern`).
                "matches" | "regexp_contains" | "regexp_position" | "regexp_pos"
                | "regexp_position0" | "regexp_pos0" | "regex_position" | "regex_pos"
                | "regex_position0" | "regex_pos0" | "regexp_position1" | "regexp_pos1"
                | "regex_position1" | "regex_pos1" => {
                    let (string, pattern) = pattern_args(function, &name)?;
                    let template = if matches!(name.as_str(), "matches" | "regexp_contains") {
                        "SELECT regexp_like($A, $B)"
                    } else if name.ends_with('1') {
                        "SELECT CASE WHEN regexp_instr($A, $B) = 0 THEN -1 ELSE regexp_instr($A, $B) END"
                    } else {
                        "SELECT regexp_instr($A, $B) - 1"
                    };
                    *expr = template_expr(template, &[string, pattern])?;
                    Ok(())
                }
                // SQL++'s bit functions; and, or and xor take two arguments or more.
                "bitand" | "bitor" | "bitxor" | "bitnot" | "bitcount" | "bitshift" => {
                    let count = match &function.args {
                        FunctionArguments::List(list) => list.args.len(),
                        _ => 0,
                    };
                    let takes = match name.as_str() {
                        "bitnot" | "bitcount" => 1,
                        "bitshift" if count == 3 => 3,
                        "bitshift" => 2,
                        _ => count.max(2),
                    };
                    let args = function_args(function, takes)?;
                    *expr = call(&format!("sqlpp_{name}"), args)?;
                    Ok(())
                }
                "substr" | "substring1" | "substr1" => {
                    let count = match &function.args {
                        FunctionArguments::List(list) => list.args.len(),
                        _ => 0,
                    };
                    let args = function_args(function, if count == 3 { 3 } else { 2 })?;
                    let engine = if name.ends_with('1') {
                        "sqlpp_substring1"
                    } else {
                        "sqlpp_substring"
                    };
                    *expr = call(engine, args)?;
                    Ok(())
                }
                "string_to_codepoint" | "codepoint_to_string" | "string_concat" => {
                    let arg = one_arg(function)?;
                    *expr = template_expr(&format!("SELECT sqlpp_{name}($A)"), &[arg])?;
                    Ok(())
                }
                "substring_after" | "substring_before" => {
                    let args = plain_args(function)?;
                    let template = if name == "substring_after" {
                        "SELECT CASE WHEN strpos($A, $B) = 0 THEN '' ELSE substr($A, strpos($A, $B) + character_length($B)) END"
                    } else {
                        "SELECT CASE WHEN strpos($A, $B) = 0 THEN '' ELSE substr($A, 1, strpos($A, $B) - 1) END"
                    };
                    *expr = template_expr(template, &args)?;
                    Ok(())
                }
                "string_equal" => {
                    let args = plain_args(function)?;
                    *expr = template_expr("SELECT $A = $B", &args)?;
                    Ok(())
                }
                "position1" | "pos1" => {
                    let args = plain_args(function)?;
                    *expr = template_expr(
                        "SELECT CASE WHEN strpos($A, $B) = 0 THEN -1 ELSE strpos($A, $B) END",
                        &args,
                    )?;
                    Ok(())
                }
                // A SQL-92 aggregate of a subquery aggregates the subquery's collection, as
                // its `array_*` version does.
                n if is_subquery_call(function)
                    && collection_aggregate(&format!("array_{n}"), "").is_some() =>
                {
                    let arg = one_arg(function)?;
                    let place = place_of(function);
                    let Some(aggregate) = collection_aggregate(&format!("array_{n}"), &place)
                    else {
                        return Err(refuse(&format!("the function {n}")));
                    };
                    *expr = aggregate_collection(&aggregate, &arg, collections)?;
                    Ok(())
                }
                "datetime" | "time" => zone_free(function),
                // The engine's integer sum wraps around past 64 bits, where AsterixDB fails.
                "sum" => {
                    let mut wide = function.clone();
                    if let FunctionArguments::List(list) = &mut wide.args {
                        for arg in &mut list.args {
                            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                                *e = template_expr(
                                    "SELECT sqlpp_wide($A)",
                                    std::slice::from_ref(e),
                                )?;
                            }
                        }
                    }
                    let place = Expr::value(Value::SingleQuotedString(place_of(function)));
                    let mut checked = template_expr(
                        "SELECT sqlpp_checked_sum($A, $B, 'place')",
                        &[Expr::Function(function.clone()), Expr::Function(wide)],
                    )?;
                    if let Expr::Function(call) = &mut checked
                        && let FunctionArguments::List(list) = &mut call.args
                        && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(last))) =
                            list.args.last_mut()
                    {
                        *last = place;
                    }
                    *expr = checked;
                    Ok(())
                }
                n if SAME.contains(&n) => Ok(()),
                n if collection_aggregate(n, "").is_some() => {
                    let arg = one_arg(function)?;
                    let place = place_of(function);
                    let Some(aggregate) = collection_aggregate(n, &place) else {
                        return Err(refuse(&format!("the function {n}")));
                    };
                    *expr = aggregate_collection(&aggregate, &arg, collections)?;
                    Ok(())
                }
                n => match constructor(n) {
                    Some(target) => {
                        let arg = one_arg(function)?;
                        *expr = construct(target, &arg)?;
                        Ok(())
                    }
                    None => Err(refuse(&format!("the function {n}"))),
                },
            }
        }
        other => Err(refuse(&format!("the expression {other}"))),
    }
}

/// The SQL++ type of an array element whose type the translation can see, as far as printing
/// tells types apart.
fn element_kind(expr: &Expr) -> Option<&'static str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) if n.contains(['.', 'e', 'E']) => Some("double"),
            Value::Number(..) => Some("integer"),
            Value::SingleQuotedString(_) => Some("string"),
            Value::Boolean(_) => Some("boolean"),
            _ => None,
        },
        Expr::Cast { data_type, .. } => {
            let name = data_type.to_string().to_ascii_uppercase();
            match name.as_str() {
                "TINYINT" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT" => Some("integer"),
                "REAL" | "FLOAT" => Some("float"),
                "DOUBLE" => Some("double"),
                _ => Some("other"),
            }
        }
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => element_kind(expr),
        Expr::Array(_) => Some("array"),
        Expr::Dictionary(_) => Some("object"),
        _ => None,
    }
}

/// The type a constructor function makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Int { sql: &'static str, bits: u32 },
    Float,
    Double,
    Boolean,
    String,
}

fn constructor(name: &str) -> Option<Target> {
    let int = |sql, bits| Some(Target::Int { sql, bits });
    match name {
        "tinyint" | "int8" => int("TINYINT", 8),
        "smallint" | "int16" => int("SMALLINT", 16),
        "integer" | "int" | "int32" => int("INTEGER", 32),
        "bigint" | "int64" => int("BIGINT", 64),
        "float" => Some(Target::Float),
        "double" => Some(Target::Double),
        "boolean" => Some(Target::Boolean),
        "string" => Some(Target::String),
        _ => None,
    }
}

/// A type constructor of a literal, folded now (`tinyint('+80i8')`, `double('-6.5d')`); of
/// anything else, refused (its conversion rules are not the engine's casts).
fn construct(target: Target, arg: &Expr) -> Result<Expr, AsxError> {
    let cannot = || refuse(&format!("this {target:?} constructor argument ({arg})"));
    let (text, quoted) = match arg {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => (s.trim().to_string(), true),
            Value::Number(n, _) => (n.clone(), false),
            Value::Boolean(b) => (b.to_string(), false),
            _ => return Err(cannot()),
        },
        _ => return Err(cannot()),
    };
    match target {
        Target::Int { sql, bits } => {
            let digits = ["i8", "i16", "i32", "i64"]
                .iter()
                .find_map(|suffix| text.strip_suffix(suffix).filter(|_| quoted))
                .unwrap_or(&text);
            let n: i64 = digits
                .strip_prefix('+')
                .unwrap_or(digits)
                .parse()
                .map_err(|_| cannot())?;
            let limit = 1i128 << (bits - 1);
            if i128::from(n) >= limit || i128::from(n) < -limit {
                return Err(cannot());
            }
            let literal = if n < 0 {
                Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr: Box::new(number(n.unsigned_abs())),
                }
            } else {
                number(n.unsigned_abs())
            };
            template_expr(&format!("SELECT CAST($A AS {sql})"), &[literal])
        }
        Target::Double | Target::Float => {
            let (suffix, sql) = match target {
                Target::Float => ('f', "REAL"),
                _ => ('d', "DOUBLE"),
            };
            let digits = text
                .strip_suffix(suffix)
                .filter(|_| quoted)
                .unwrap_or(&text);
            let x: f64 = digits.parse().map_err(|_| cannot())?;
            // A float is the 32-bit value nearest the text, as Java's `Float.parseFloat` reads it.
            let x = match target {
                Target::Float => digits.parse::<f32>().map(f64::from).map_err(|_| cannot())?,
                _ => x,
            };
            if !x.is_finite()
                || digits
                    .chars()
                    .any(|c| c.is_alphabetic() && c != 'e' && c != 'E')
            {
                return Err(cannot());
            }
            template_expr(
                &format!("SELECT CAST($A AS {sql})"),
                &[Expr::value(Value::SingleQuotedString(format!("{x:?}")))],
            )
        }
        Target::Boolean => match (text.as_str(), quoted) {
            ("true", _) => Ok(Expr::value(Value::Boolean(true))),
            ("false", _) => Ok(Expr::value(Value::Boolean(false))),
            _ => Err(cannot()),
        },
        Target::String if quoted => Ok(arg.clone()),
        Target::String => Err(cannot()),
    }
}

/// `[i]` counts from 0 in SQL++ and from 1 in the engine; only a literal index below the literal
/// array's `length` is translated.
fn zero_based_subscript(subscript: &mut Subscript, length: Option<u64>) -> Result<(), AsxError> {
    match subscript {
        Subscript::Index { index } => {
            let i = constant_index(index)
                .filter(|i| length.is_some_and(|n| *i < n))
                .ok_or_else(|| refuse("an index other than a literal one into a literal array"))?;
            *index = number(i + 1);
            Ok(())
        }
        Subscript::Slice { .. } => Err(refuse("an array slice")),
    }
}

/// An integer expression of literals (`2 + 1`), 0 or more.
pub(super) fn constant_index(expr: &Expr) -> Option<u64> {
    fn value(expr: &Expr, depth: usize) -> Option<i64> {
        if depth > 32 {
            return None;
        }
        match expr {
            Expr::Value(_) => non_negative(expr).and_then(|n| i64::try_from(n).ok()),
            Expr::Nested(inner) => value(inner, depth + 1),
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => value(expr, depth + 1)?.checked_neg(),
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (value(left, depth + 1)?, value(right, depth + 1)?);
                match op {
                    BinaryOperator::Plus => l.checked_add(r),
                    BinaryOperator::Minus => l.checked_sub(r),
                    BinaryOperator::Multiply => l.checked_mul(r),
                    _ => None,
                }
            }
            _ => None,
        }
    }
    u64::try_from(value(expr, 0)?).ok()
}

/// The first access of a path is MISSING: a constant index at or past a literal array's end, or
/// a name a literal object has no field of.
fn literal_missing(root: &Expr, first: Option<&AccessExpr>) -> bool {
    match (root, first) {
        (Expr::Array(array), Some(AccessExpr::Subscript(Subscript::Index { index }))) => {
            constant_index(index).is_some_and(|i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| array.elem.get(i))
                    .is_none_or(is_missing)
            })
        }
        (Expr::Dictionary(fields), Some(AccessExpr::Dot(Expr::Identifier(name)))) => {
            fields.iter().all(|f| f.key.value != name.value)
        }
        (Expr::Nested(inner), _) => literal_missing(inner, first),
        _ => false,
    }
}

/// The value of a literal integer that is 0 or more.
fn non_negative(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<u64>().ok().filter(|n| *n < i64::MAX as u64),
            _ => None,
        },
        Expr::Nested(inner) => non_negative(inner),
        _ => None,
    }
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// The arguments of a call that has exactly two plain ones.
fn plain_args(function: &sqlparser::ast::Function) -> Result<Vec<Expr>, AsxError> {
    function_args(function, 2)
}

/// The argument of a call that has exactly one plain one.
fn one_arg(function: &sqlparser::ast::Function) -> Result<Expr, AsxError> {
    function_args(function, 1)?
        .pop()
        .ok_or_else(|| refuse("a call without its argument"))
}

/// The arguments of a call that has exactly `n` plain ones.
fn function_args(function: &sqlparser::ast::Function, n: usize) -> Result<Vec<Expr>, AsxError> {
    let FunctionArguments::List(list) = &function.args else {
        return Err(refuse("this function call form"));
    };
    let args: Vec<Expr> = list.args.iter().filter_map(arg_expr).collect();
    if args.len() != n || list.args.len() != n || list.duplicate_treatment.is_some() {
        let at = match function.name.0.first() {
            Some(ObjectNamePart::Identifier(i)) => i.span.start,
            _ => Location::new(0, 0),
        };
        return Err(AsxError::compilation(&format!(
            "Invalid number of arguments for function {}",
            function.name
        ))
        .at(at));
    }
    Ok(args)
}

/// The column a collection's items are in when an aggregate runs over them.
const ITEM: &str = "$item";

/// The engine aggregate over a collection's items for a SQL++ collection function: `strict_*`
/// (and the older `coll_*`) see every item, so that one null makes the result null and
/// `strict_count` counts it; `array_*` skip null items.
fn collection_aggregate(name: &str, place: &str) -> Option<String> {
    let (strict, base) = if let Some(b) = name.strip_prefix("strict_") {
        (true, b)
    } else if let Some(b) = name.strip_prefix("coll_") {
        (true, b)
    } else {
        (false, name.strip_prefix("array_")?)
    };
    let engine = match base {
        "sum" => {
            let sum = format!(
                "sqlpp_checked_sum(sum(\"{ITEM}\"), sum(sqlpp_wide(\"{ITEM}\")), '{place}')"
            );
            return Some(strict_of(strict, &sum));
        }
        "skewness" | "kurtosis" => {
            let moment = format!("sqlpp_{base}(array_agg(\"{ITEM}\"))");
            return Some(strict_of(strict, &moment));
        }
        "count" => {
            return Some(
                if strict {
                    "count(*)"
                } else {
                    "count(\"$item\")"
                }
                .into(),
            );
        }
        "min" | "max" | "avg" | "stddev_pop" | "var_pop" | "var_samp" | "stddev_samp" => base,
        "stddev" => "stddev_samp",
        "variance" => "var_samp",
        _ => return None,
    };
    Some(strict_of(strict, &format!("{engine}(\"{ITEM}\")")))
}

/// Where a call is, as AsterixDB ends a runtime error about it: ` (in line L, at column C)`.
fn place_of(function: &sqlparser::ast::Function) -> String {
    match function.name.0.first() {
        Some(ObjectNamePart::Identifier(i)) if i.span.start.line > 0 => format!(
            " (in line {}, at column {})",
            i.span.start.line, i.span.start.column
        ),
        _ => String::new(),
    }
}

/// A collection aggregate that is null where an item is null (`strict_*`), or the aggregate.
fn strict_of(strict: bool, aggregate: &str) -> String {
    if strict {
        format!("CASE WHEN count(*) = count(\"{ITEM}\") THEN {aggregate} END")
    } else {
        aggregate.to_string()
    }
}

/// `(SELECT VALUE e)` with nothing but its projection: `e`.
fn sole_value(query: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let bare_query = query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none();
    let no_groups = match &select.group_by {
        sqlparser::ast::GroupByExpr::Expressions(keys, modifiers) => {
            keys.is_empty() && modifiers.is_empty()
        }
        sqlparser::ast::GroupByExpr::All(_) => false,
    };
    let bare_select = select.from.is_empty()
        && select.selection.is_none()
        && select.having.is_none()
        && select.distinct.is_none()
        && no_groups;
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(e)] if bare_query && bare_select => Some(e.clone()),
        _ => None,
    }
}

/// A call of the engine function `name` (one of polyquery's own, a plain name) with `args`.
fn call(name: &str, args: Vec<Expr>) -> Result<Expr, AsxError> {
    let mut call = template_expr(&format!("SELECT {name}(1)"), &[])?;
    if let Expr::Function(function) = &mut call
        && let FunctionArguments::List(list) = &mut function.args
    {
        list.args = args
            .into_iter()
            .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
            .collect();
    }
    Ok(call)
}

/// Checks made on the planned types rather than on the literals, once every expression is in
/// its engine form: an array's items (`sqlpp_array`) and a `CASE`'s branches
/// (`sqlpp_same_kind`, given never-evaluated copies of them) must be of one kind, since the engine
/// would convert an integer beside a double, or a float beside a double, to one type.
pub(super) fn planned_type_checks(query: &mut Query) -> Result<(), AsxError> {
    let mut failed = None;
    let _ = visit_expressions_mut(query, |expr| {
        let checked = match expr {
            Expr::Array(array) if !array.elem.is_empty() => {
                call("sqlpp_array", std::mem::take(&mut array.elem))
            }
            // `{}`, or an object whose every field was MISSING.
            Expr::Dictionary(fields) if fields.is_empty() => call("sqlpp_empty_object", Vec::new()),
            Expr::Case {
                conditions,
                else_result,
                ..
            } if conditions.len() + usize::from(else_result.is_some()) > 1 => {
                let probes: Vec<Expr> = conditions
                    .iter()
                    .map(|w| &w.result)
                    .chain(else_result.as_deref())
                    .map(|result| {
                        template_expr(
                            "SELECT CASE WHEN false THEN $A END",
                            std::slice::from_ref(result),
                        )
                    })
                    .collect::<Result<_, _>>()
                    .unwrap_or_default();
                call(
                    "sqlpp_same_kind",
                    std::iter::once(expr.clone()).chain(probes).collect(),
                )
            }
            _ => return ControlFlow::Continue(()),
        };
        match checked {
            Ok(checked) => {
                *expr = checked;
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `f(collection)` as a scalar subquery aggregating the collection's items: an array value's
/// items unnested, or a `SELECT VALUE` subquery's values.
fn aggregate_collection(
    aggregate: &str,
    arg: &Expr,
    collections: &mut Collections<'_, '_>,
) -> Result<Expr, AsxError> {
    let Expr::Subquery(query) = arg else {
        return template_expr(
            &format!("SELECT (SELECT {aggregate} FROM (SELECT unnest($A) AS \"{ITEM}\") AS items)"),
            std::slice::from_ref(arg),
        );
    };
    let mut values = (**query).clone();
    let select = value_subquery(&mut values, collections)?;
    let [item] = select.projection.as_mut_slice() else {
        return Err(AsxError::syntax(
            "SELECT VALUE takes exactly one expression",
        ));
    };
    let value = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return Err(refuse("SELECT VALUE *")),
    };
    *item = SelectItem::ExprWithAlias {
        expr: value,
        alias: Ident::with_quote('"', ITEM),
    };
    let mut expr = template_expr(
        &format!("SELECT (SELECT {aggregate} FROM (SELECT 1) AS items)"),
        &[],
    )?;
    if let Expr::Subquery(outer) = &mut expr
        && let SetExpr::Select(outer_select) = outer.body.as_mut()
        && let Some(table) = outer_select.from.first_mut()
        && let TableFactor::Derived { subquery, .. } = &mut table.relation
    {
        **subquery = values;
        return Ok(expr);
    }
    Err(AsxError::compilation(
        "internal template has no derived table",
    ))
}

/// A call whose one argument is a subquery: `count((SELECT VALUE …))`.
fn is_subquery_call(function: &sqlparser::ast::Function) -> bool {
    match &function.args {
        FunctionArguments::List(list) => matches!(
            list.args.as_slice(),
            [arg] if matches!(arg_expr(arg), Some(Expr::Subquery(_)))
        ),
        _ => false,
    }
}

/// A nested `SELECT VALUE` query taken as a collection: its FROM sources translated and its
/// place taken off the list of those still to translate. Its one column holds the values.
fn value_subquery<'q>(
    query: &'q mut Query,
    collections: &mut Collections<'_, '_>,
) -> Result<&'q mut sqlparser::ast::Select, AsxError> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(refuse("a set operation as a collection"));
    };
    let start = select.select_token.0.span.start;
    let Some(at) = collections.value_queries.iter().position(|l| *l == start) else {
        return Err(refuse("a subquery of objects as a collection"));
    };
    for table in &mut select.from {
        rewrite_source(&mut table.relation, collections.sources)?;
        for join in &mut table.joins {
            rewrite_source(&mut join.relation, collections.sources)?;
        }
    }
    collections.value_queries.remove(at);
    Ok(select)
}

/// `a ^ b`, power, binding tighter than every other operator in SQL++ (the parser binds it
/// looser, so an operand that is another operation was grouped wrongly and is refused). An
/// integer to a non-negative integer power is an integer, folded now; with a double literal
/// it is a double; other operands are refused (their type decides the result's).
fn power(left: &Expr, right: &Expr) -> Result<Expr, AsxError> {
    let literal = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    };
    let (Some(base), Some(exponent)) = (literal(left), literal(right)) else {
        return Err(refuse(
            "`^` with an operand other than a number literal (parenthesize operations)",
        ));
    };
    if let (Ok(b), Ok(e)) = (base.parse::<i64>(), exponent.parse::<u32>()) {
        let folded = b
            .checked_pow(e)
            .ok_or_else(|| refuse("an integer power past the 64-bit range"))?;
        return Ok(match u64::try_from(folded) {
            Ok(n) => number(n),
            Err(_) => Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: Box::new(number(folded.unsigned_abs())),
            },
        });
    }
    let is_double = |n: &str| n.contains(['.', 'e', 'E']);
    if is_double(&base) || is_double(&exponent) {
        // AsterixDB prints INF and NaN as words the engine's doubles do not become: a power
        // that is not finite is refused. Other doubles print in Java's notation.
        let value = base
            .parse::<f64>()
            .ok()
            .zip(exponent.parse::<f64>().ok())
            .map(|(b, e)| b.powf(e));
        if !value.is_some_and(f64::is_finite) {
            return Err(refuse("a power that is not a finite double"));
        }
        return template_expr("SELECT power($A, $B)", &[left.clone(), right.clone()]);
    }
    Err(refuse("`^` with a negative integer exponent"))
}

/// The string and the engine's pattern of a regex function's call: a literal Java pattern (see
/// `java_pattern`) or null, and no flags but the empty ones.
fn pattern_args(function: &sqlparser::ast::Function, name: &str) -> Result<(Expr, Expr), AsxError> {
    let count = match &function.args {
        FunctionArguments::List(list) => list.args.len(),
        _ => 0,
    };
    let mut args = function_args(function, if count == 3 { 3 } else { 2 })?;
    if let Some(flags) = args.get(2) {
        let no_flags =
            matches!(flags, Expr::Value(v) if v.value == Value::SingleQuotedString(String::new()));
        if !no_flags {
            return Err(refuse(&format!("{name} with flags")));
        }
        args.truncate(2);
    }
    let pattern = match &args[1] {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(p) => {
                java_pattern(p).map(|p| Expr::value(Value::SingleQuotedString(p)))
            }
            Value::Null => Some(args[1].clone()),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| refuse(&format!("{name} with this pattern")))?;
    Ok((args[0].clone(), pattern))
}

/// A Java regular expression as the engine's (Rust's) regex syntax, for the patterns both read
/// alike: literal characters, `.`, `^`, `$`, `|`, groups without flags, quantifiers (not
/// possessive), and bracket classes without intersections, nesting or named classes. Java's `.`
/// stops at every line terminator and its `$` also matches before a final one, so both are
/// spelled out. `None` for anything else (`\d`, `\w`, `\p{…}`, lookaround, back references),
/// whose meanings differ.
fn java_pattern(pattern: &str) -> Option<String> {
    const TERMINATORS: &str = "\\n\\r\\x{85}\\x{2028}\\x{2029}";
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    let mut after_quantifier = false;
    while let Some(c) = chars.next() {
        let quantifier = matches!(c, '*' | '+' | '?' | '}') && !in_class;
        match c {
            '\\' => {
                let next = chars.next()?;
                if !next.is_ascii_punctuation() {
                    return None;
                }
                out.push('\\');
                out.push(next);
            }
            '[' if in_class => return None,
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // `[]` and `[^]` open a class with `]` in it in Java and are errors elsewhere.
                if chars.peek() == Some(&']') {
                    return None;
                }
                continue;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' if in_class && chars.peek() == Some(&'&') => return None,
            '(' if !in_class && chars.peek() == Some(&'?') => return None,
            '+' if after_quantifier => return None,
            '.' if !in_class => out.push_str(&format!("[^{TERMINATORS}]")),
            '$' if !in_class => {
                out.push_str(&format!("(?:\\r\\n|[{TERMINATORS}])?\\z"));
            }
            c if in_class && c == '-' && class_start => out.push_str("\\-"),
            c if in_class && !c.is_alphanumeric() && c != '-' && c != ' ' => {
                // Punctuation in a class is itself in Java; escaped, it is in Rust too.
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        class_start = false;
        after_quantifier = quantifier;
    }
    (!in_class).then_some(out)
}

/// The dataverses a function may be named through: the request's (`USE`, `dataverse`) and the
/// fixtures'. polyquery has no other dataverses, and no functions of its own in any.
fn known_dataverse(name: &str, current: Option<&str>) -> bool {
    current == Some(name) || super::sqlpp::DATAVERSES.contains(&name)
}

/// A LIKE pattern is a literal in which `\` escapes only `%`, `_` and itself, as in SQL++; the
/// engine reads such a pattern the same way.
fn like_pattern(pattern: &Expr, at: Location) -> Result<(), AsxError> {
    let Expr::Value(v) = pattern else {
        return Err(refuse("a LIKE pattern that is not a literal"));
    };
    let text = match &v.value {
        Value::SingleQuotedString(text) => text,
        Value::Null => return Ok(()),
        _ => return Err(refuse("a LIKE pattern that is not a string")),
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('%' | '_' | '\\')) {
            return Err(
                AsxError::compilation(&format!("Invalid pattern '{text}' for LIKE")).at(at),
            );
        }
    }
    Ok(())
}

/// `datetime('…')` and `time('…')` of a text with a time zone are instants that compare as
/// AsterixDB's do only with the zone kept, which the engine's casts drop: refused.
fn zone_free(function: &sqlparser::ast::Function) -> Result<(), AsxError> {
    let arg = one_arg(function)?;
    if let Expr::Value(v) = &arg
        && let Value::SingleQuotedString(text) = &v.value
    {
        let time = text.rsplit('T').next().unwrap_or(text);
        if time.contains(['Z', 'z', '+']) || time.rfind('-').is_some_and(|i| i > 0) {
            return Err(refuse("a datetime or time with a time zone"));
        }
    }
    Ok(())
}

/// The literal MISSING, which the engine has no value for: kept as the bare name `missing` while
/// the operations around it are folded, and refused (as an unknown name) wherever it is left.
fn is_missing(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("missing"))
}

fn missing() -> Expr {
    Expr::Identifier(Ident::new("missing"))
}

/// A boolean or NULL literal: `Some(Some(b))`, `Some(None)`.
fn truth(expr: &Expr) -> Option<Option<bool>> {
    match expr {
        Expr::Value(v) => match v.value {
            Value::Boolean(b) => Some(Some(b)),
            Value::Null => Some(None),
            _ => None,
        },
        Expr::Nested(inner) => truth(inner),
        _ => None,
    }
}

/// SQL++'s MISSING, folded where it is a literal operand: an operator or a scalar function of
/// MISSING is MISSING; AND is false beside a false, else MISSING; OR is true beside a true, null
/// beside a null, else MISSING; an object leaves a MISSING field out.
fn with_missing(expr: &mut Expr) -> Result<Option<Expr>, AsxError> {
    let literal = |b: bool| Expr::value(Value::Boolean(b));
    Ok(match expr {
        Expr::Nested(inner) if is_missing(inner) => Some(missing()),
        Expr::UnaryOp { expr: operand, .. } if is_missing(operand) => Some(missing()),
        Expr::Floor { expr: operand, .. } | Expr::Ceil { expr: operand, .. }
            if is_missing(operand) =>
        {
            Some(missing())
        }
        Expr::BinaryOp { left, op, right } if is_missing(left) || is_missing(right) => {
            let other = if is_missing(left) { right } else { left };
            let both = is_missing(other);
            let other = if both { Some(None) } else { truth(other) };
            match (op, other) {
                (BinaryOperator::And, Some(Some(false))) => Some(literal(false)),
                (BinaryOperator::Or, Some(Some(true))) => Some(literal(true)),
                // `null or missing` is null, `null and missing` MISSING.
                (BinaryOperator::Or, Some(None)) if !both => Some(Expr::value(Value::Null)),
                (BinaryOperator::And | BinaryOperator::Or, None) => {
                    return Err(refuse(
                        "AND or OR of MISSING and a value that is not a literal",
                    ));
                }
                _ => Some(missing()),
            }
        }
        Expr::Function(function) => {
            let name = function.name.to_string().to_ascii_lowercase();
            let scalar = (SAME.contains(&name.as_str()) && !WINDOW.contains(&name.as_str())
                || constructor(&name).is_some()
                || MISSING_OUT.contains(&name.as_str()))
                && !matches!(
                    name.as_str(),
                    "sleep" | "pq_sleep" | "pq_fail" | "inject_failure"
                );
            let of_missing = match &function.args {
                FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .any(|a| arg_expr(a).is_some_and(|e| is_missing(&e))),
                _ => false,
            };
            (scalar && of_missing).then(missing)
        }
        Expr::Dictionary(fields) => {
            fields.retain(|f| !is_missing(&f.value));
            None
        }
        _ => None,
    })
}

/// An array printed in a result holds a MISSING item as null: in the values a query prints (its
/// projections, and the arrays and objects inside them), a MISSING array item becomes null.
/// Anywhere else (an index, a FROM source, a function's argument) it stays MISSING, and so is
/// refused.
pub(super) fn printed_missing_as_null(items: &mut [SelectItem]) {
    fn printed(expr: &mut Expr) {
        match expr {
            Expr::Array(array) => {
                for e in &mut array.elem {
                    if is_missing(e) {
                        *e = Expr::value(Value::Null);
                    } else {
                        printed(e);
                    }
                }
            }
            Expr::Dictionary(fields) => fields.iter_mut().for_each(|f| printed(&mut f.value)),
            Expr::Nested(inner) => printed(inner),
            _ => {}
        }
    }
    for item in items {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            printed(e);
        }
    }
}
