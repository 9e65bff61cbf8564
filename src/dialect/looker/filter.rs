//! Looker filter expressions (`"-NULL"`, `"FOO%,BAR"`, `">10"`, `"[1,5]"`, `"last 7 days"`) turned
//! into sqlparser predicates. A value the client wrote only ever becomes a literal node (a string, or
//! a number or timestamp this module formatted itself), so no filter text can change the statement.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, TimezoneInfo, UnaryOperator, Value,
};

use super::semantic::FieldType;

/// A filter expression that does not parse for its field's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter expression {expression:?} for a {kind} field: {reason}")]
pub struct FilterError {
    pub expression: String,
    pub kind: &'static str,
    pub reason: String,
}

/// The predicate `expression` means for a field computed by `field` of type `field_type`; `None`
/// for an empty expression (no filter). `now` anchors relative dates.
pub fn predicate(
    field: &Expr,
    field_type: FieldType,
    expression: &str,
    now: NaiveDateTime,
) -> Result<Option<Expr>, FilterError> {
    let expression = expression.trim();
    if expression.is_empty() {
        return Ok(None);
    }
    let fail = |reason: String| FilterError {
        expression: shortened(expression),
        kind: field_type.name(),
        reason,
    };
    let length = expression.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(fail(format!(
            "it is {length} characters long; at most {MAX_FILTER_CHARS} are accepted"
        )));
    }
    let terms = match field_type {
        FieldType::String => string_terms(field, expression),
        FieldType::Number => number_terms(field, expression).map_err(fail)?,
        FieldType::Date | FieldType::Time => {
            date_terms(field, field_type, expression, now).map_err(fail)?
        }
        FieldType::Yesno => yesno_terms(field, expression).map_err(fail)?,
    };
    if terms.len() > MAX_FILTER_TERMS {
        return Err(fail(format!(
            "it has {} terms; at most {MAX_FILTER_TERMS} are accepted",
            terms.len()
        )));
    }
    Ok(Some(combine(terms)))
}

/// The longest filter expression accepted, in characters.
pub const MAX_FILTER_CHARS: usize = 64 * 1024;
/// The most comma-separated terms one filter expression may have.
pub const MAX_FILTER_TERMS: usize = 1000;
/// Operands joined in one run before runs are parenthesised (see [`join`]).
const RUN: usize = 64;

/// An expression as quoted in an error: whole when short.
fn shortened(expression: &str) -> String {
    match expression.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &expression[..at]),
        None => expression.to_string(),
    }
}

/// `items` joined by `op` left to right (`a OR b OR c`). Past [`RUN`] items the list is cut into
/// parenthesised runs, and those runs into runs, so the tree (and the SQL parsed back from its
/// text) nests logarithmically, never as deep as the list is long.
fn join(items: Vec<Expr>, op: BinaryOperator) -> Option<Expr> {
    let left_deep = |run: Vec<Expr>| run.into_iter().reduce(|a, b| binary(a, op.clone(), b));
    let mut items = items;
    while items.len() > RUN {
        let mut runs = Vec::with_capacity(items.len() / RUN + 1);
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            let run: Vec<Expr> = rest.by_ref().take(RUN).collect();
            runs.extend(left_deep(run).map(nested));
        }
        items = runs;
    }
    left_deep(items)
}

/// One term of a comma list: positive terms are OR'ed, negated ones AND'ed onto that.
struct Term {
    negated: bool,
    expr: Expr,
}

fn combine(terms: Vec<Term>) -> Expr {
    let (negative, positive): (Vec<Term>, Vec<Term>) = terms.into_iter().partition(|t| t.negated);
    let several = positive.len() > 1;
    let any = join(
        positive.into_iter().map(|t| t.expr).collect(),
        BinaryOperator::Or,
    )
    .map(|e| if several { nested(e) } else { e });
    let all = join(
        negative.into_iter().map(|t| t.expr).collect(),
        BinaryOperator::And,
    );
    match (any, all) {
        (Some(a), Some(b)) => binary(a, BinaryOperator::And, b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => Expr::Value(Value::Boolean(true).into()),
    }
}

fn nested(e: Expr) -> Expr {
    Expr::Nested(Box::new(e))
}

fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn not(e: Expr) -> Expr {
    Expr::UnaryOp {
        op: UnaryOperator::Not,
        expr: Box::new(nested(e)),
    }
}

/// A string literal that reads back as exactly `text`. sqlparser writes a backslash-quote inside
/// a literal as is (taking it for an escaped quote), so a backslash never goes into the text: it
/// is spliced in as `chr(92)`, which leaves every quote doubled and no way out of the literal.
fn string_literal(text: &str) -> Expr {
    let quoted = |part: &str| Expr::Value(Value::SingleQuotedString(part.to_string()).into());
    let mut parts = text.split('\\');
    let mut pieces = vec![quoted(parts.next().unwrap_or_default())];
    for part in parts {
        pieces.push(backslash());
        if !part.is_empty() {
            pieces.push(quoted(part));
        }
    }
    join(pieces, BinaryOperator::StringConcat).unwrap_or_else(|| quoted(""))
}

/// `chr(92)`: a backslash, without writing one.
fn backslash() -> Expr {
    use sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
        ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("chr")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(
                Value::Number("92".into(), false).into(),
            )))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn is_null(field: &Expr) -> Expr {
    Expr::IsNull(Box::new(field.clone()))
}

// --- strings ----------------------------------------------------------------------------------

/// Splits on unescaped commas; `^` escapes the next character (`^,` `^%` `^_` `^-` `^^`). Each piece
/// is kept as (text, wildcard positions) so an escaped `%` stays literal.
fn split_escaped(expression: &str) -> Vec<Vec<(char, bool)>> {
    let mut pieces = vec![Vec::new()];
    let mut chars = expression.chars();
    while let Some(c) = chars.next() {
        match c {
            '^' => {
                if let (Some(next), Some(p)) = (chars.next(), pieces.last_mut()) {
                    p.push((next, true));
                }
            }
            ',' => pieces.push(Vec::new()),
            c => {
                if let Some(p) = pieces.last_mut() {
                    p.push((c, false));
                }
            }
        }
    }
    pieces
}

fn string_terms(field: &Expr, expression: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    for mut piece in split_escaped(expression) {
        let mut negated = false;
        if let Some((first, escaped)) = piece.first()
            && *first == '-'
            && !escaped
        {
            negated = true;
            piece.remove(0);
        }
        let plain: String = piece.iter().map(|(c, _)| c).collect();
        let unescaped_word = piece.iter().all(|(_, e)| !e);
        let expr = if unescaped_word && plain == "NULL" {
            is_null(field)
        } else if unescaped_word && plain == "EMPTY" {
            nested(binary(
                is_null(field),
                BinaryOperator::Or,
                binary(field.clone(), BinaryOperator::Eq, string_literal("")),
            ))
        } else if piece.iter().any(|(c, e)| !e && (*c == '%' || *c == '_')) {
            // DataFusion's LIKE escapes with a backslash (and takes no other ESCAPE character);
            // the backslashes reach the pattern through `string_literal`, never the SQL text.
            let pattern: String = piece
                .iter()
                .flat_map(|(c, escaped)| match (c, escaped) {
                    ('%' | '_', true) | ('\\', _) => vec!['\\', *c],
                    _ => vec![*c],
                })
                .collect();
            Expr::Like {
                negated: false,
                any: false,
                expr: Box::new(field.clone()),
                pattern: Box::new(string_literal(&pattern)),
                escape_char: None,
            }
        } else {
            binary(field.clone(), BinaryOperator::Eq, string_literal(&plain))
        };
        terms.push(if negated {
            // A negated value keeps NULLs, as Looker's `-foo` does.
            Term {
                negated,
                expr: nested(binary(is_null(field), BinaryOperator::Or, not(expr))),
            }
        } else {
            Term { negated, expr }
        });
    }
    terms
}

// --- numbers ----------------------------------------------------------------------------------

/// A number the client wrote, re-rendered by us: the literal is never the client's text.
fn number_literal(text: &str) -> Result<Expr, String> {
    let text = text.trim();
    let rendered = if let Ok(i) = text.parse::<i64>() {
        i.to_string()
    } else {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => format!("{f:?}"),
            _ => return Err(format!("{text:?} is not a number")),
        }
    };
    let (negative, digits) = match rendered.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, rendered),
    };
    let literal = Expr::Value(Value::Number(digits, false).into());
    Ok(if negative {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(literal),
        }
    } else {
        literal
    })
}

/// Splits on commas that are not inside a `[..]`/`(..)` range.
fn split_ranges(expression: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut depth = 0i32;
    for c in expression.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth <= 0 => {
                pieces.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(p) = pieces.last_mut() {
            p.push(c);
        }
    }
    pieces.into_iter().map(|p| p.trim().to_string()).collect()
}

fn number_terms(field: &Expr, expression: &str) -> Result<Vec<Term>, String> {
    split_ranges(expression)
        .iter()
        .map(|piece| number_term(field, piece))
        .collect()
}

fn number_term(field: &Expr, piece: &str) -> Result<Term, String> {
    let upper = piece.to_ascii_uppercase();
    if upper == "NULL" {
        return Ok(Term {
            negated: false,
            expr: is_null(field),
        });
    }
    if upper == "NOT NULL" || upper == "-NULL" {
        return Ok(Term {
            negated: true,
            expr: Expr::IsNotNull(Box::new(field.clone())),
        });
    }
    if let Some(rest) = upper.strip_prefix("NOT ") {
        let inner = number_term(field, rest.trim())?;
        return Ok(Term {
            negated: true,
            expr: nested(binary(is_null(field), BinaryOperator::Or, not(inner.expr))),
        });
    }
    if let Some(rest) = piece.strip_prefix("!=") {
        return Ok(Term {
            negated: true,
            expr: binary(field.clone(), BinaryOperator::NotEq, number_literal(rest)?),
        });
    }
    if upper.contains(" AND ") {
        let mut parts = upper.split(" AND ");
        let first = number_term(field, parts.next().unwrap_or_default().trim())?;
        let mut expr = first.expr;
        for part in parts {
            expr = binary(
                expr,
                BinaryOperator::And,
                number_term(field, part.trim())?.expr,
            );
        }
        return Ok(Term {
            negated: false,
            expr: nested(expr),
        });
    }
    if let Some((low, high)) = upper.split_once(" TO ") {
        return Ok(Term {
            negated: false,
            expr: range(field, low, true, high, true)?,
        });
    }
    if let (Some(open), Some(close)) = (piece.chars().next(), piece.chars().last())
        && matches!(open, '[' | '(')
        && matches!(close, ']' | ')')
        && piece.len() >= 2
    {
        let inner = &piece[1..piece.len() - 1];
        let (low, high) = inner
            .split_once(',')
            .ok_or_else(|| format!("the range {piece:?} needs two bounds"))?;
        return Ok(Term {
            negated: false,
            expr: range(field, low, open == '[', high, close == ']')?,
        });
    }
    for (prefix, op) in [
        (">=", BinaryOperator::GtEq),
        ("<=", BinaryOperator::LtEq),
        (">", BinaryOperator::Gt),
        ("<", BinaryOperator::Lt),
        ("=", BinaryOperator::Eq),
    ] {
        if let Some(rest) = piece.strip_prefix(prefix) {
            return Ok(Term {
                negated: false,
                expr: binary(field.clone(), op, number_literal(rest)?),
            });
        }
    }
    Ok(Term {
        negated: false,
        expr: binary(field.clone(), BinaryOperator::Eq, number_literal(piece)?),
    })
}

fn range(
    field: &Expr,
    low: &str,
    low_inclusive: bool,
    high: &str,
    high_inclusive: bool,
) -> Result<Expr, String> {
    let low_op = if low_inclusive {
        BinaryOperator::GtEq
    } else {
        BinaryOperator::Gt
    };
    let high_op = if high_inclusive {
        BinaryOperator::LtEq
    } else {
        BinaryOperator::Lt
    };
    Ok(nested(binary(
        binary(field.clone(), low_op, number_literal(low)?),
        BinaryOperator::And,
        binary(field.clone(), high_op, number_literal(high)?),
    )))
}

// --- yes/no -----------------------------------------------------------------------------------

fn yesno_terms(field: &Expr, expression: &str) -> Result<Vec<Term>, String> {
    let value = match expression.to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" => false,
        _ => return Err("expected Yes or No".into()),
    };
    Ok(vec![Term {
        negated: false,
        expr: binary(
            field.clone(),
            BinaryOperator::Eq,
            Expr::Value(Value::Boolean(value).into()),
        ),
    }])
}

// --- dates ------------------------------------------------------------------------------------

/// A calendar unit of relative date filters.
#[derive(Clone, Copy)]
enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn parse(word: &str) -> Option<Unit> {
        Some(match word.trim_end_matches('s') {
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return None,
        })
    }

    /// The start of the unit `at` falls in (weeks start on Monday).
    fn start(self, at: NaiveDateTime) -> NaiveDateTime {
        let day = at.date();
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        match self {
            Unit::Minute => at
                .date()
                .and_hms_opt(at.time().hour_of(), at.time().minute_of(), 0)
                .unwrap_or(at),
            Unit::Hour => at
                .date()
                .and_hms_opt(at.time().hour_of(), 0, 0)
                .unwrap_or(at),
            Unit::Day => midnight(day),
            Unit::Week => {
                midnight(day - Duration::days(day.weekday().num_days_from_monday().into()))
            }
            Unit::Month => midnight(day.with_day(1).unwrap_or(day)),
            Unit::Quarter => {
                let month = (day.month0() / 3) * 3 + 1;
                midnight(NaiveDate::from_ymd_opt(day.year(), month, 1).unwrap_or(day))
            }
            Unit::Year => midnight(NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day)),
        }
    }

    /// `at` moved by `n` units (negative = back).
    fn shift(self, at: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
        let months = |m: i64| {
            if m >= 0 {
                at.checked_add_months(Months::new(u32::try_from(m).ok()?))
            } else {
                at.checked_sub_months(Months::new(u32::try_from(m.checked_neg()?).ok()?))
            }
        };
        match self {
            Unit::Minute => at.checked_add_signed(Duration::try_minutes(n)?),
            Unit::Hour => at.checked_add_signed(Duration::try_hours(n)?),
            Unit::Day => at.checked_add_signed(Duration::try_days(n)?),
            Unit::Week => at.checked_add_signed(Duration::try_weeks(n)?),
            Unit::Month => months(n),
            Unit::Quarter => months(n.checked_mul(3)?),
            Unit::Year => months(n.checked_mul(12)?),
        }
    }
}

/// Hours and minutes of a time, without pulling in chrono's `Timelike` at every call site.
trait TimeParts {
    fn hour_of(&self) -> u32;
    fn minute_of(&self) -> u32;
}

impl TimeParts for NaiveTime {
    fn hour_of(&self) -> u32 {
        chrono::Timelike::hour(self)
    }
    fn minute_of(&self) -> u32 {
        chrono::Timelike::minute(self)
    }
}

/// A half-open interval `[start, end)`; either end may be open.
struct Interval {
    start: Option<NaiveDateTime>,
    end: Option<NaiveDateTime>,
}

/// An absolute date or time as Looker writes them, with the unit it spans:
/// `2024`, `2024-03`, `2024-03-05`, `2024/03/05`, `2024-03-05 10:30`, `2024-03-05 10:30:15`.
fn absolute(text: &str) -> Option<Interval> {
    let text = text.trim().replace('/', "-");
    let span = |start: NaiveDateTime, unit: Unit| {
        Some(Interval {
            start: Some(start),
            end: unit.shift(start, 1),
        })
    };
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S") {
        return Some(Interval {
            start: Some(t),
            end: t.checked_add_signed(Duration::seconds(1)),
        });
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M") {
        return span(t, Unit::Minute);
    }
    if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        return span(d.and_time(NaiveTime::MIN), Unit::Day);
    }
    if let Ok(d) = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        && text.len() == 7
    {
        return span(d.and_time(NaiveTime::MIN), Unit::Month);
    }
    if text.len() == 4
        && let Ok(year) = text.parse::<i32>()
    {
        let d = NaiveDate::from_ymd_opt(year, 1, 1)?;
        return span(d.and_time(NaiveTime::MIN), Unit::Year);
    }
    None
}

/// A relative or absolute moment phrase: an interval in time.
fn interval(text: &str, now: NaiveDateTime) -> Option<Interval> {
    let lower = text.trim().to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let unit_span = |start: NaiveDateTime, unit: Unit, count: i64| {
        Some(Interval {
            start: Some(start),
            end: unit.shift(start, count),
        })
    };
    match words.as_slice() {
        ["today"] => unit_span(Unit::Day.start(now), Unit::Day, 1),
        ["yesterday"] => unit_span(Unit::Day.shift(Unit::Day.start(now), -1)?, Unit::Day, 1),
        ["tomorrow"] => unit_span(Unit::Day.shift(Unit::Day.start(now), 1)?, Unit::Day, 1),
        ["this", unit] => {
            let unit = Unit::parse(unit)?;
            unit_span(unit.start(now), unit, 1)
        }
        ["next", unit] => {
            let unit = Unit::parse(unit)?;
            unit_span(unit.shift(unit.start(now), 1)?, unit, 1)
        }
        ["last", unit] => {
            let unit = Unit::parse(unit)?;
            unit_span(unit.shift(unit.start(now), -1)?, unit, 1)
        }
        // "last 7 days" and "7 days": the current unit and the n-1 before it.
        ["last", n, unit] | [n, unit] => {
            let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
            let unit = Unit::parse(unit)?;
            let end = unit.shift(unit.start(now), 1)?;
            Some(Interval {
                start: unit.shift(end, n.checked_neg()?),
                end: Some(end),
            })
        }
        [n, unit, "ago"] => {
            let n: i64 = n.parse().ok()?;
            let unit = Unit::parse(unit)?;
            unit_span(unit.shift(unit.start(now), n.checked_neg()?)?, unit, 1)
        }
        _ => absolute(text),
    }
}

fn date_interval(text: &str, now: NaiveDateTime) -> Result<Interval, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("before ") {
        let i = interval(rest, now).ok_or_else(|| format!("{rest:?} is not a date"))?;
        return Ok(Interval {
            start: None,
            end: i.start,
        });
    }
    if let Some(rest) = lower.strip_prefix("after ") {
        let i = interval(rest, now).ok_or_else(|| format!("{rest:?} is not a date"))?;
        return Ok(Interval {
            start: i.start,
            end: None,
        });
    }
    if let Some((from, to)) = lower.split_once(" to ") {
        let from = interval(from, now).ok_or_else(|| format!("{from:?} is not a date"))?;
        let to = interval(to, now).ok_or_else(|| format!("{to:?} is not a date"))?;
        return Ok(Interval {
            start: from.start,
            end: to.start,
        });
    }
    interval(text, now).ok_or_else(|| format!("{text:?} is not a date or a date range"))
}

/// A timestamp literal: text chrono formatted, cast to the field's type.
fn time_literal(at: NaiveDateTime, field_type: FieldType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(string_literal(&match field_type {
            FieldType::Date => at.format("%Y-%m-%d").to_string(),
            _ => at.format("%Y-%m-%d %H:%M:%S").to_string(),
        })),
        data_type: match field_type {
            FieldType::Date => DataType::Date,
            _ => DataType::Timestamp(None, TimezoneInfo::None),
        },
        array: false,
        format: None,
    }
}

fn date_terms(
    field: &Expr,
    field_type: FieldType,
    expression: &str,
    now: NaiveDateTime,
) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    for piece in expression.split(',').map(str::trim) {
        let upper = piece.to_ascii_uppercase();
        if upper == "NULL" {
            terms.push(Term {
                negated: false,
                expr: is_null(field),
            });
            continue;
        }
        if upper == "NOT NULL" || upper == "-NULL" {
            terms.push(Term {
                negated: true,
                expr: Expr::IsNotNull(Box::new(field.clone())),
            });
            continue;
        }
        let (negated, text) = match upper.strip_prefix("NOT ") {
            Some(_) => (true, &piece[4..]),
            None => (false, piece),
        };
        let i = date_interval(text.trim(), now)?;
        let start = i.start.map(|s| {
            binary(
                field.clone(),
                BinaryOperator::GtEq,
                time_literal(s, field_type),
            )
        });
        let end = i.end.map(|e| {
            binary(
                field.clone(),
                BinaryOperator::Lt,
                time_literal(e, field_type),
            )
        });
        let expr = match (start, end) {
            (Some(s), Some(e)) => nested(binary(s, BinaryOperator::And, e)),
            (Some(s), None) => s,
            (None, Some(e)) => e,
            (None, None) => return Err(format!("{piece:?} bounds nothing")),
        };
        terms.push(Term {
            negated,
            expr: if negated {
                nested(binary(is_null(field), BinaryOperator::Or, not(expr)))
            } else {
                expr
            },
        });
    }
    Ok(terms)
}

/// The moment relative date filters count from: now, UTC, as wall-clock time.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Ident;

    fn sql(field_type: FieldType, expression: &str) -> String {
        let field = Expr::Identifier(Ident::with_quote('"', "f"));
        let now = NaiveDate::from_ymd_opt(2024, 3, 13)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .unwrap();
        predicate(&field, field_type, expression, now)
            .unwrap()
            .unwrap()
            .to_string()
    }

    #[test]
    fn strings() {
        assert_eq!(sql(FieldType::String, "a"), r#""f" = 'a'"#);
        assert_eq!(sql(FieldType::String, "a,b"), r#"("f" = 'a' OR "f" = 'b')"#);
        assert_eq!(sql(FieldType::String, "NULL"), r#""f" IS NULL"#);
        assert_eq!(
            sql(FieldType::String, "-a"),
            r#"("f" IS NULL OR NOT ("f" = 'a'))"#
        );
        assert_eq!(sql(FieldType::String, "FOO%"), r#""f" LIKE 'FOO%'"#);
        assert_eq!(
            sql(FieldType::String, r"\' OR 1=1 --"),
            r#""f" = '' || chr(92) || ''' OR 1=1 --'"#,
            "a backslash never reaches the SQL text"
        );
        assert_eq!(sql(FieldType::String, "50^%"), r#""f" = '50%'"#);
        assert_eq!(sql(FieldType::String, "a^,b"), r#""f" = 'a,b'"#);
        assert_eq!(
            sql(FieldType::String, "it's"),
            r#""f" = 'it''s'"#,
            "a quote stays inside the literal"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(sql(FieldType::Number, ">10"), r#""f" > 10"#);
        assert_eq!(
            sql(FieldType::Number, "[1,5]"),
            r#"("f" >= 1 AND "f" <= 5)"#
        );
        assert_eq!(sql(FieldType::Number, "(1,5]"), r#"("f" > 1 AND "f" <= 5)"#);
        assert_eq!(
            sql(FieldType::Number, "NOT 3"),
            r#"("f" IS NULL OR NOT ("f" = 3))"#
        );
        assert_eq!(sql(FieldType::Number, "1,3"), r#"("f" = 1 OR "f" = 3)"#);
        assert_eq!(sql(FieldType::Number, "-1.5"), r#""f" = -1.5"#);
        assert_eq!(
            sql(FieldType::Number, "1 to 5"),
            r#"("f" >= 1 AND "f" <= 5)"#
        );
        let field = Expr::Identifier(Ident::new("f"));
        for bad in ["abc", "1; DROP TABLE x", "[1]", ">x"] {
            assert!(
                predicate(&field, FieldType::Number, bad, now()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            sql(FieldType::Time, "2024-01-01"),
            r#"("f" >= CAST('2024-01-01 00:00:00' AS TIMESTAMP) AND "f" < CAST('2024-01-02 00:00:00' AS TIMESTAMP))"#
        );
        assert_eq!(
            sql(FieldType::Time, "2024-01-01 to 2024-02-01"),
            r#"("f" >= CAST('2024-01-01 00:00:00' AS TIMESTAMP) AND "f" < CAST('2024-02-01 00:00:00' AS TIMESTAMP))"#
        );
        assert_eq!(
            sql(FieldType::Time, "last 7 days"),
            r#"("f" >= CAST('2024-03-07 00:00:00' AS TIMESTAMP) AND "f" < CAST('2024-03-14 00:00:00' AS TIMESTAMP))"#
        );
        assert_eq!(
            sql(FieldType::Date, "this month"),
            r#"("f" >= CAST('2024-03-01' AS DATE) AND "f" < CAST('2024-04-01' AS DATE))"#
        );
        assert_eq!(
            sql(FieldType::Time, "before 2024-01-01"),
            r#""f" < CAST('2024-01-01 00:00:00' AS TIMESTAMP)"#
        );
        let field = Expr::Identifier(Ident::new("f"));
        assert!(predicate(&field, FieldType::Time, "someday", now()).is_err());
    }

    #[test]
    fn client_numbers_never_overflow() {
        let field = Expr::Identifier(Ident::new("f"));
        for expression in [
            "-9223372036854775808 days ago",
            "-9223372036854775808 months ago",
            "9223372036854775807 years ago",
            "last 9223372036854775807 quarters",
            "9223372036854775807 months",
        ] {
            // An answer or a refusal, but never a panic.
            let _ = predicate(&field, FieldType::Time, expression, now());
        }
        assert!(
            predicate(
                &field,
                FieldType::Time,
                "-9223372036854775808 days ago",
                now()
            )
            .is_err()
        );
    }

    /// How deep a tree nests (its longest chain of boxed children), counted without recursion.
    fn depth(expr: &Expr) -> usize {
        let mut deepest = 0;
        let mut pending = vec![(expr, 1)];
        while let Some((e, d)) = pending.pop() {
            deepest = deepest.max(d);
            match e {
                Expr::BinaryOp { left, right, .. } => {
                    pending.push((left, d + 1));
                    pending.push((right, d + 1));
                }
                Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
                    pending.push((inner, d + 1))
                }
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn long_lists_stay_shallow_and_are_bounded() {
        let field = Expr::Identifier(Ident::new("f"));
        let list = |n: usize| vec!["CA"; n].join(",");
        let e = predicate(&field, FieldType::String, &list(MAX_FILTER_TERMS), now())
            .unwrap()
            .unwrap();
        assert!(depth(&e) < 200, "{}", depth(&e));
        let e = predicate(
            &field,
            FieldType::String,
            &list(MAX_FILTER_TERMS * 10),
            now(),
        )
        .unwrap_err();
        assert!(e.reason.contains("terms"), "{e}");
        let e = predicate(&field, FieldType::String, &"\\".repeat(3000), now())
            .unwrap()
            .unwrap();
        assert!(depth(&e) < 200, "{}", depth(&e));
        let e = predicate(
            &field,
            FieldType::String,
            &"x".repeat(MAX_FILTER_CHARS + 1),
            now(),
        )
        .unwrap_err();
        assert!(e.reason.contains("characters"), "{e}");
    }
}
