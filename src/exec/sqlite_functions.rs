//! SQLite's scalar functions, as engine UDFs named `sqlite_<name>`, for dialects whose SQL is
//! SQLite's (Luminesce). They are registered under their own names so that DataFusion's built-ins
//! of the same name keep their meaning for the other dialects; the dialect's rewrite maps `substr`
//! to `sqlite_substr` on the AST.
//!
//! Each function works on SQLite's dynamic values ([`Val`]) row by row, with SQLite's conversions
//! (a number used as text is its SQLite text, text used as a number is its numeric prefix), and
//! answers one static Arrow type: text, integer or real.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, Timelike};
use datafusion::common::cast::as_float64_array;
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Accumulator, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, create_udaf,
};
use datafusion::prelude::SessionContext;

/// A SQLite value: the five storage classes.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    /// The SQLite value an engine value stands for: booleans are 0/1, date-times are SQLite's
    /// `YYYY-MM-DD HH:MM:SS[.SSS]` text.
    pub fn from_scalar(value: &ScalarValue) -> Val {
        use ScalarValue as S;
        let ms = |v: Option<i64>, per_second: i64| {
            v.map_or(Val::Null, |v| match per_second {
                1 => datetime_text(v.saturating_mul(1000)),
                1000 => datetime_text(v),
                1_000_000 => datetime_text(v.div_euclid(1000)),
                _ => datetime_text(v.div_euclid(1_000_000)),
            })
        };
        match value {
            S::Null => Val::Null,
            S::Boolean(b) => b.map_or(Val::Null, |b| Val::Int(i64::from(b))),
            S::Int8(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::Int16(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::Int32(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::Int64(v) => v.map_or(Val::Null, Val::Int),
            S::UInt8(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::UInt16(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::UInt32(v) => v.map_or(Val::Null, |v| Val::Int(v.into())),
            S::UInt64(v) => v.map_or(Val::Null, |v| Val::Int(v as i64)),
            S::Float32(v) => v.map_or(Val::Null, |v| Val::Real(v.into())),
            S::Float64(v) => v.map_or(Val::Null, Val::Real),
            S::Utf8(v) | S::LargeUtf8(v) | S::Utf8View(v) => {
                v.as_ref().map_or(Val::Null, |s| Val::Text(s.clone()))
            }
            S::Binary(v) | S::LargeBinary(v) | S::BinaryView(v) => {
                v.as_ref().map_or(Val::Null, |b| Val::Blob(b.clone()))
            }
            S::TimestampSecond(v, _) => ms(*v, 1),
            S::TimestampMillisecond(v, _) => ms(*v, 1000),
            S::TimestampMicrosecond(v, _) => ms(*v, 1_000_000),
            S::TimestampNanosecond(v, _) => ms(*v, 1_000_000_000),
            S::Date32(v) => v.map_or(Val::Null, |d| {
                Val::Text(date_text(i64::from(d).saturating_mul(86_400_000)))
            }),
            S::Date64(v) => v.map_or(Val::Null, |d| Val::Text(date_text(d))),
            other if other.is_null() => Val::Null,
            other => match other.data_type() {
                DataType::Decimal128(..) | DataType::Decimal256(..) => other
                    .cast_to(&DataType::Float64)
                    .ok()
                    .map_or(Val::Null, |f| Val::from_scalar(&f)),
                _ => Val::Text(other.to_string()),
            },
        }
    }

    /// SQLite's text for the value (`CAST(x AS TEXT)`), `None` for NULL.
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(i.to_string()),
            Val::Real(f) => Some(real_text(*f)),
            Val::Text(s) => Some(s.clone()),
            Val::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// SQLite's integer for the value (`sqlite3_value_int64`): text gives its numeric prefix.
    pub fn int(&self) -> i64 {
        match self {
            Val::Null | Val::Blob(_) => 0,
            Val::Int(i) => *i,
            Val::Real(f) => *f as i64,
            Val::Text(s) => numeric_prefix(s).map_or(0, |v| match v {
                Val::Int(i) => i,
                Val::Real(f) => f as i64,
                _ => 0,
            }),
        }
    }

    /// SQLite's real for the value (`sqlite3_value_double`).
    pub fn real(&self) -> f64 {
        match self {
            Val::Null | Val::Blob(_) => 0.0,
            Val::Int(i) => *i as f64,
            Val::Real(f) => *f,
            Val::Text(s) => numeric_prefix(s).map_or(0.0, |v| match v {
                Val::Int(i) => i as f64,
                Val::Real(f) => f,
                _ => 0.0,
            }),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
}

/// The number a text starts with (after blanks), as SQLite reads text in a numeric context.
fn numeric_prefix(s: &str) -> Option<Val> {
    let s = s.trim_start();
    let bytes = s.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let digits_start = end;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let mut real = false;
    if bytes.get(end) == Some(&b'.') {
        real = true;
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if end == digits_start || (real && end == digits_start + 1) {
        return None;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(bytes.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        if bytes.get(e).is_some_and(u8::is_ascii_digit) {
            while bytes.get(e).is_some_and(u8::is_ascii_digit) {
                e += 1;
            }
            real = true;
            end = e;
        }
    }
    let text = &s[..end];
    if real {
        text.parse().ok().map(Val::Real)
    } else {
        text.parse()
            .map(Val::Int)
            .or_else(|_| text.parse().map(Val::Real))
            .ok()
    }
}

/// A real as SQLite prints it (`%!.15g`): `1.0`, `0.25`, `1.0e+20`, `0.333333333333333`.
pub fn real_text(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0.0".into();
    }
    let sci = format!("{:.14e}", f);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if negative { "-" } else { "" };
    if !(-4..15).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}.{rest}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let point = exp as usize + 1;
    if digits.len() <= point {
        format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

/// What a function answers, as one Arrow type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Returns {
    Text,
    Int,
    Real,
}

impl Returns {
    fn data_type(self) -> DataType {
        match self {
            Returns::Text => DataType::Utf8,
            Returns::Int => DataType::Int64,
            Returns::Real => DataType::Float64,
        }
    }
}

type Eval = fn(&[Val]) -> std::result::Result<Val, String>;

/// One SQLite function over [`Val`]s, row by row.
#[derive(Debug)]
struct SqliteFunction {
    /// The SQLite name; the UDF is `sqlite_<name>`.
    sqlite: &'static str,
    udf: String,
    signature: Signature,
    returns: Returns,
    min_args: usize,
    max_args: usize,
    eval: Eval,
}

/// The functions served, by SQLite name: (name, returns, arguments min..=max, evaluation).
const FUNCTIONS: &[(&str, Returns, usize, usize, Eval)] = &[
    ("substr", Returns::Text, 2, 3, substr),
    ("substring", Returns::Text, 2, 3, substr),
    ("instr", Returns::Int, 2, 2, instr),
    ("length", Returns::Int, 1, 1, length),
    ("hex", Returns::Text, 1, 1, hex),
    ("typeof", Returns::Text, 1, 1, type_of),
    ("printf", Returns::Text, 1, usize::MAX, printf),
    ("format", Returns::Text, 1, usize::MAX, printf),
    ("round", Returns::Real, 1, 2, round),
    ("replace", Returns::Text, 3, 3, replace),
    ("char", Returns::Text, 0, usize::MAX, char_fn),
    ("unicode", Returns::Int, 1, 1, unicode),
    ("quote", Returns::Text, 1, 1, quote),
    ("text", Returns::Text, 1, 1, as_text),
    ("date", Returns::Text, 0, usize::MAX, date),
    ("time", Returns::Text, 0, usize::MAX, time),
    ("datetime", Returns::Text, 0, usize::MAX, datetime),
    ("julianday", Returns::Real, 0, usize::MAX, julianday),
    ("unixepoch", Returns::Int, 0, usize::MAX, unixepoch),
    ("strftime", Returns::Text, 1, usize::MAX, strftime),
];

/// The UDF name that serves SQLite's `name`, if polyquery has one. (`sqlite_text` is SQLite's
/// `CAST(x AS TEXT)`, for the rewrite's own use: SQLite has no `text()`.)
pub fn udf_name(name: &str) -> Option<String> {
    FUNCTIONS
        .iter()
        .find(|(f, ..)| f.eq_ignore_ascii_case(name) && *f != "text")
        .map(|(f, ..)| format!("sqlite_{f}"))
}

/// Registers every `sqlite_<name>` function, and `sqlite_total`, SQLite's `total()` aggregate.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(create_udaf(
        "sqlite_total",
        vec![DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Total(0.0)))),
        Arc::new(vec![DataType::Float64]),
    ));
    for &(sqlite, returns, min_args, max_args, eval) in FUNCTIONS {
        ctx.register_udf(ScalarUDF::new_from_impl(SqliteFunction {
            sqlite,
            udf: format!("sqlite_{sqlite}"),
            signature: Signature::variadic_any(Volatility::Immutable),
            returns,
            min_args,
            max_args,
            eval,
        }));
    }
}

/// Functions are the same when their names are (the evaluation is fixed by the name).
impl PartialEq for SqliteFunction {
    fn eq(&self, other: &Self) -> bool {
        self.udf == other.udf
    }
}

impl Eq for SqliteFunction {}

impl std::hash::Hash for SqliteFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.udf.hash(state);
    }
}

impl ScalarUDFImpl for SqliteFunction {
    fn name(&self) -> &str {
        &self.udf
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < self.min_args || arg_types.len() > self.max_args {
            return plan_err!("wrong number of arguments to function {}()", self.sqlite);
        }
        Ok(self.returns.data_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalar { 1 } else { rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut out = Vec::with_capacity(n);
        let mut row_args = Vec::with_capacity(arrays.len());
        for row in 0..n {
            row_args.clear();
            for array in &arrays {
                row_args.push(Val::from_scalar(&ScalarValue::try_from_array(array, row)?));
            }
            match (self.eval)(&row_args) {
                Ok(v) => out.push(v),
                Err(e) => return exec_err!("{e}"),
            }
        }
        let array: ArrayRef = match self.returns {
            Returns::Text => Arc::new(out.iter().map(Val::text).collect::<StringArray>()),
            Returns::Int => Arc::new(
                out.iter()
                    .map(|v| (!v.is_null()).then(|| v.int()))
                    .collect::<Int64Array>(),
            ),
            Returns::Real => Arc::new(
                out.iter()
                    .map(|v| (!v.is_null()).then(|| v.real()))
                    .collect::<Float64Array>(),
            ),
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// `total(X)`: the sum as a real, 0.0 over no rows or only NULLs.
#[derive(Debug)]
struct Total(f64);

impl Accumulator for Total {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if let Some(values) = values.first() {
            self.0 += as_float64_array(values)?.iter().flatten().sum::<f64>();
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(Some(self.0)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Float64(Some(self.0))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

type Answer = std::result::Result<Val, String>;

fn arg(args: &[Val], i: usize) -> &Val {
    args.get(i).unwrap_or(&Val::Null)
}

fn any_null(args: &[Val]) -> bool {
    args.iter().any(Val::is_null)
}

/// `substr(X, Y[, Z])`, with SQLite's rules for a zero or negative start and a negative length.
fn substr(args: &[Val]) -> Answer {
    if any_null(args) {
        return Ok(Val::Null);
    }
    let text = arg(args, 0).text().unwrap_or_default();
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let mut p1 = arg(args, 1).int();
    let (mut p2, negative) = match args.get(2) {
        Some(z) => {
            let z = z.int();
            (z.saturating_abs(), z < 0)
        }
        None => (i64::MAX / 2, false),
    };
    if p1 < 0 {
        p1 += len;
        if p1 < 0 {
            p2 += p1;
            p2 = p2.max(0);
            p1 = 0;
        }
    } else if p1 > 0 {
        p1 -= 1;
    } else if p2 > 0 {
        p2 -= 1;
    }
    if negative {
        p1 -= p2;
        if p1 < 0 {
            p2 += p1;
            p1 = 0;
        }
    }
    let start = p1.clamp(0, len) as usize;
    let end = p1.saturating_add(p2).clamp(0, len) as usize;
    Ok(Val::Text(chars[start..end.max(start)].iter().collect()))
}

/// `instr(X, Y)`: the 1-based character position of Y in X, 0 when absent.
fn instr(args: &[Val]) -> Answer {
    if any_null(args) {
        return Ok(Val::Null);
    }
    let haystack = arg(args, 0).text().unwrap_or_default();
    let needle = arg(args, 1).text().unwrap_or_default();
    Ok(Val::Int(
        haystack
            .find(&needle)
            .map_or(0, |at| haystack[..at].chars().count() as i64 + 1),
    ))
}

/// `length(X)`: characters of text (a number's text), bytes of a blob.
fn length(args: &[Val]) -> Answer {
    Ok(match arg(args, 0) {
        Val::Null => Val::Null,
        Val::Blob(b) => Val::Int(b.len() as i64),
        v => Val::Int(v.text().unwrap_or_default().chars().count() as i64),
    })
}

/// `hex(X)`: the upper-case hex of X's bytes (a number's text); NULL gives ''.
fn hex(args: &[Val]) -> Answer {
    let bytes = match arg(args, 0) {
        Val::Blob(b) => b.clone(),
        v => v.text().unwrap_or_default().into_bytes(),
    };
    Ok(Val::Text(
        bytes.iter().map(|b| format!("{b:02X}")).collect(),
    ))
}

fn type_of(args: &[Val]) -> Answer {
    Ok(Val::Text(
        match arg(args, 0) {
            Val::Null => "null",
            Val::Int(_) => "integer",
            Val::Real(_) => "real",
            Val::Text(_) => "text",
            Val::Blob(_) => "blob",
        }
        .into(),
    ))
}

fn as_text(args: &[Val]) -> Answer {
    Ok(arg(args, 0).text().map_or(Val::Null, Val::Text))
}

/// `round(X[, N])`: a real, half away from zero on X's shortest decimal digits, N in 0..=30.
fn round(args: &[Val]) -> Answer {
    if arg(args, 0).is_null() {
        return Ok(Val::Null);
    }
    let places = args.get(1).map_or(0, Val::int).clamp(0, 30) as usize;
    let x = arg(args, 0).real();
    if places == 0 && x.abs() < 4_503_599_627_370_496.0 {
        return Ok(Val::Real((x + if x < 0.0 { -0.5 } else { 0.5 }).trunc()));
    }
    // Round the exact decimal value of the double, half away from zero, as SQLite's printf does.
    let sci = format!("{:.40e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let keep = exp + 1 + places as i64;
    if keep >= digits.len() as i64 {
        return Ok(Val::Real(x));
    }
    let mut exp = exp;
    if keep < 0 {
        return Ok(Val::Real(0.0));
    }
    let keep = keep as usize;
    let up = digits[keep] >= 5;
    digits.truncate(keep);
    if up {
        let mut i = keep;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                exp += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let value: f64 = format!(
        "0.{}e{}",
        if text.is_empty() { "0" } else { &text },
        exp + 1
    )
    .parse()
    .unwrap_or(x.abs());
    Ok(Val::Real(if x < 0.0 { -value } else { value }))
}

/// `replace(X, Y, Z)`: every Y in X becomes Z; an empty Y changes nothing.
fn replace(args: &[Val]) -> Answer {
    if any_null(args) {
        return Ok(Val::Null);
    }
    let x = arg(args, 0).text().unwrap_or_default();
    let y = arg(args, 1).text().unwrap_or_default();
    if y.is_empty() {
        return Ok(Val::Text(x));
    }
    Ok(Val::Text(
        x.replace(&y, &arg(args, 2).text().unwrap_or_default()),
    ))
}

fn char_fn(args: &[Val]) -> Answer {
    Ok(Val::Text(
        args.iter()
            .map(|v| {
                u32::try_from(v.int())
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}')
            })
            .collect(),
    ))
}

fn unicode(args: &[Val]) -> Answer {
    Ok(match arg(args, 0).text() {
        None => Val::Null,
        Some(t) => t.chars().next().map_or(Val::Null, |c| Val::Int(c as i64)),
    })
}

fn quote(args: &[Val]) -> Answer {
    Ok(Val::Text(match arg(args, 0) {
        Val::Null => "NULL".into(),
        Val::Int(i) => i.to_string(),
        Val::Real(f) => real_text(*f),
        Val::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Val::Blob(b) => format!(
            "X'{}'",
            b.iter().map(|b| format!("{b:02X}")).collect::<String>()
        ),
    }))
}

// ---- printf ----

/// `printf(FORMAT, ...)` / `format(...)`: SQLite's printf conversions.
fn printf(args: &[Val]) -> Answer {
    let Some(format) = arg(args, 0).text() else {
        return Ok(Val::Null);
    };
    let mut values = args.iter().skip(1);
    let mut next = || values.next().cloned().unwrap_or(Val::Null);
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut plus, mut space, mut zero, mut alt, mut comma) =
            (false, false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '+' => plus = true,
                ' ' => space = true,
                '0' => zero = true,
                '#' => alt = true,
                ',' => comma = true,
                '!' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = 0usize;
        if chars.peek() == Some(&'*') {
            chars.next();
            let w = next().int();
            if w < 0 {
                left = true;
            }
            width = w.unsigned_abs().min(1_000_000) as usize;
        } else {
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                width = (width * 10 + d as usize).min(1_000_000);
                chars.next();
            }
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                precision = Some(next().int().clamp(0, 1_000_000) as usize);
            } else {
                let mut p = 0usize;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    p = (p * 10 + d as usize).min(1_000_000);
                    chars.next();
                }
                precision = Some(p);
            }
        }
        while matches!(chars.peek(), Some('l')) {
            chars.next();
        }
        let Some(conversion) = chars.next() else {
            break;
        };
        let sign = |negative: bool| {
            if negative {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let (prefix, body, numeric) = match conversion {
            '%' => {
                out.push('%');
                continue;
            }
            'd' | 'i' | 'u' => {
                let v = next().int();
                let mut digits = v.unsigned_abs().to_string();
                if let Some(p) = precision
                    && digits.len() < p
                {
                    digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                }
                if comma {
                    digits = group_thousands(&digits);
                }
                (sign(v < 0).to_string(), digits, true)
            }
            'x' | 'X' | 'o' => {
                let v = next().int() as u64;
                let body = match conversion {
                    'x' => format!("{v:x}"),
                    'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                let prefix = match (alt && v != 0, conversion) {
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    (true, _) => "0",
                    _ => "",
                };
                (prefix.to_string(), body, true)
            }
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
                let v = next().real();
                let p = precision.unwrap_or(6);
                let body = match conversion {
                    'f' | 'F' => format!("{:.p$}", v.abs()),
                    'e' | 'E' => c_exp(v.abs(), p, conversion == 'E'),
                    _ => c_general(v.abs(), p, alt, conversion == 'G'),
                };
                let body = if comma && matches!(conversion, 'f' | 'F') {
                    match body.split_once('.') {
                        Some((i, f)) => format!("{}.{f}", group_thousands(i)),
                        None => group_thousands(&body),
                    }
                } else {
                    body
                };
                (sign(v < 0.0).to_string(), body, true)
            }
            's' | 'z' => {
                let text = next().text().unwrap_or_default();
                let text: String = match precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                };
                (String::new(), text, false)
            }
            'c' => {
                let text = next().text().unwrap_or_default();
                let c = text.chars().next().map(String::from).unwrap_or_default();
                (String::new(), c, false)
            }
            'q' | 'Q' | 'w' => {
                let v = next();
                let quote_char = if conversion == 'w' { '"' } else { '\'' };
                let body = match (&v, conversion) {
                    (Val::Null, 'Q') => "NULL".to_string(),
                    (Val::Null, _) => "(NULL)".to_string(),
                    _ => {
                        let t = v
                            .text()
                            .unwrap_or_default()
                            .replace(quote_char, &format!("{quote_char}{quote_char}"));
                        if conversion == 'Q' {
                            format!("'{t}'")
                        } else {
                            t
                        }
                    }
                };
                (String::new(), body, false)
            }
            // An unknown conversion ends the output, as SQLite's printf does.
            _ => break,
        };
        let len = prefix.chars().count() + body.chars().count();
        let pad = width.saturating_sub(len);
        if left {
            out.push_str(&prefix);
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else if zero && numeric {
            out.push_str(&prefix);
            out.push_str(&"0".repeat(pad));
            out.push_str(&body);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&prefix);
            out.push_str(&body);
        }
    }
    Ok(Val::Text(out))
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// C's `%e`: `1.234568e+04`.
fn c_exp(v: f64, precision: usize, upper: bool) -> String {
    let s = format!("{v:.precision$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}{e}{esign}{:02}", exp.abs())
}

/// C's `%g`: `%e` or `%f` by exponent, trailing zeros dropped unless `#`.
fn c_general(v: f64, precision: usize, alt: bool, upper: bool) -> String {
    let p = precision.max(1);
    let exp = if v == 0.0 {
        0
    } else {
        let s = format!("{v:.*e}", p - 1);
        s.split_once('e')
            .and_then(|(_, e)| e.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let strip = |s: String| {
        if alt || !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let s = c_exp(v, p - 1, upper);
        let (mantissa, e) = s.split_at(s.find(['e', 'E']).unwrap_or(s.len()));
        format!("{}{e}", strip(mantissa.to_string()))
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip(format!("{v:.decimals$}"))
    }
}

// ---- date and time ----

const MS_PER_DAY: i64 = 86_400_000;
/// The Julian day number of 1970-01-01 00:00:00.
const UNIX_EPOCH_JD: f64 = 2_440_587.5;

fn datetime_at(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}

fn datetime_text(ms: i64) -> Val {
    match datetime_at(ms) {
        Some(d) if d.nanosecond() == 0 => Val::Text(d.format("%Y-%m-%d %H:%M:%S").to_string()),
        Some(d) => Val::Text(d.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
        None => Val::Null,
    }
}

fn date_text(ms: i64) -> String {
    datetime_at(ms).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// A time value and its modifiers, as SQLite's date functions take them: milliseconds since the
/// Unix epoch, or `None` (NULL) when any part is not understood.
fn moment(args: &[Val]) -> Option<i64> {
    let (value, modifiers) = match args.split_first() {
        None => (Val::Text("now".into()), &[][..]),
        Some((v, rest)) => (v.clone(), rest),
    };
    let mut modifiers = modifiers.iter().peekable();
    let numeric = match &value {
        Val::Int(i) => Some(*i as f64),
        Val::Real(f) => Some(*f),
        Val::Text(t) => match numeric_prefix(t) {
            Some(Val::Int(i)) if t.trim() == i.to_string() => Some(i as f64),
            Some(Val::Real(f)) if t.trim().parse::<f64>().is_ok() => Some(f),
            _ => None,
        },
        _ => None,
    };
    let mut ms = match (numeric, modifiers.peek().and_then(|m| m.text())) {
        (Some(n), Some(m)) if m.trim().eq_ignore_ascii_case("unixepoch") => {
            modifiers.next();
            (n * 1000.0).round() as i64
        }
        (Some(n), Some(m)) if m.trim().eq_ignore_ascii_case("julianday") => {
            modifiers.next();
            julian_to_ms(n)?
        }
        (Some(n), _) => julian_to_ms(n)?,
        (None, _) => parse_time(&value.text()?)?,
    };
    for m in modifiers {
        ms = apply_modifier(ms, &m.text()?)?;
    }
    // SQLite's range: years 0000 to 9999.
    let d = datetime_at(ms)?;
    (0..=9999).contains(&d.year()).then_some(ms)
}

fn julian_to_ms(jd: f64) -> Option<i64> {
    let ms = ((jd - UNIX_EPOCH_JD) * MS_PER_DAY as f64).round();
    ms.is_finite().then_some(ms as i64)
}

fn ms_to_julian(ms: i64) -> f64 {
    ms as f64 / MS_PER_DAY as f64 + UNIX_EPOCH_JD
}

/// SQLite's time strings: `YYYY-MM-DD[ HH:MM[:SS[.SSS]]]` (or `T`), `HH:MM[:SS[.SSS]]`, `now`,
/// with an optional `Z` or `±HH:MM` zone.
fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Some(chrono::Utc::now().timestamp_millis());
    }
    let (t, offset_ms) = split_zone(t);
    let (date, time) = match t.find([' ', 'T']) {
        Some(at) if t[..at].contains('-') => (Some(&t[..at]), Some(t[at + 1..].trim())),
        _ if t.contains('-') => (Some(t), None),
        _ => (None, Some(t)),
    };
    let day = match date {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?,
        None => NaiveDate::from_ymd_opt(2000, 1, 1)?,
    };
    if d_has_bad_shape(date) {
        return None;
    }
    let mut ms = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    if let Some(time) = time.filter(|t| !t.is_empty()) {
        let mut parts = time.split(':');
        let h: i64 = two_digits(parts.next()?)?;
        let m: i64 = two_digits(parts.next()?)?;
        let s: f64 = match parts.next() {
            Some(s)
                if s.get(..2)
                    .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit())) =>
            {
                s.parse().ok()?
            }
            Some(_) => return None,
            None => 0.0,
        };
        if parts.next().is_some() || h > 24 || m > 59 || s >= 60.0 {
            return None;
        }
        ms += h * 3_600_000 + m * 60_000 + (s * 1000.0).round() as i64;
    }
    Some(ms - offset_ms)
}

fn d_has_bad_shape(date: Option<&str>) -> bool {
    date.is_some_and(|d| d.len() != 10)
}

fn two_digits(s: &str) -> Option<i64> {
    (s.len() == 2 && s.chars().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn split_zone(t: &str) -> (&str, i64) {
    if let Some(rest) = t.strip_suffix(['Z', 'z']) {
        return (rest, 0);
    }
    if t.len() > 6 && t.is_char_boundary(t.len() - 6) {
        let (head, zone) = t.split_at(t.len() - 6);
        let bytes = zone.as_bytes();
        if matches!(bytes[0], b'+' | b'-')
            && bytes[3] == b':'
            && head.contains(':')
            && let (Some(h), Some(m)) = (two_digits(&zone[1..3]), two_digits(&zone[4..6]))
        {
            let offset = (h * 60 + m) * 60_000;
            return (head, if bytes[0] == b'-' { -offset } else { offset });
        }
    }
    (t, 0)
}

fn apply_modifier(ms: i64, modifier: &str) -> Option<i64> {
    let m = modifier.trim().to_ascii_lowercase();
    let at = datetime_at(ms)?;
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    match m.as_str() {
        "start of day" => return midnight(at.date()),
        "start of month" => return midnight(at.date().with_day(1)?),
        "start of year" => return midnight(NaiveDate::from_ymd_opt(at.year(), 1, 1)?),
        // The server runs in UTC: local time and UTC are the same instant here.
        "localtime" | "utc" | "auto" | "subsec" | "subsecond" => return Some(ms),
        _ => {}
    }
    if let Some(n) = m.strip_prefix("weekday ") {
        let want: i64 = n.trim().parse().ok().filter(|n| (0..=6).contains(n))?;
        let have = i64::from(at.weekday().num_days_from_sunday());
        return Some(ms + (want - have).rem_euclid(7) * MS_PER_DAY);
    }
    let (number, unit) = m.split_once(' ')?;
    let unit = unit.trim();
    let unit = unit.strip_suffix('s').unwrap_or(unit);
    let n: f64 = number.trim().parse().ok()?;
    let per = match unit {
        "day" => MS_PER_DAY as f64,
        "hour" => 3_600_000.0,
        "minute" => 60_000.0,
        "second" => 1000.0,
        "month" | "year" => {
            let months = if unit == "year" { n * 12.0 } else { n };
            let whole = months.trunc() as i64;
            let total = i64::from(at.year()) * 12 + i64::from(at.month0()) + whole;
            let year = i32::try_from(total.div_euclid(12)).ok()?;
            let first = NaiveDate::from_ymd_opt(year, total.rem_euclid(12) as u32 + 1, 1)?;
            // Day overflow rolls into the next month, as SQLite normalises it.
            let day = first + ChronoDuration::days(i64::from(at.day()) - 1);
            let time = at.time();
            let base = day.and_time(time).and_utc().timestamp_millis();
            let frac = months - months.trunc();
            return Some(base + (frac * 30.0 * MS_PER_DAY as f64).round() as i64);
        }
        _ => return None,
    };
    Some(ms + (n * per).round() as i64)
}

fn format_moment(args: &[Val], pattern: &str) -> Answer {
    Ok(moment(args)
        .and_then(datetime_at)
        .map_or(Val::Null, |d| Val::Text(d.format(pattern).to_string())))
}

fn date(args: &[Val]) -> Answer {
    format_moment(args, "%Y-%m-%d")
}

fn time(args: &[Val]) -> Answer {
    format_moment(args, "%H:%M:%S")
}

fn datetime(args: &[Val]) -> Answer {
    format_moment(args, "%Y-%m-%d %H:%M:%S")
}

fn julianday(args: &[Val]) -> Answer {
    Ok(moment(args).map_or(Val::Null, |ms| Val::Real(ms_to_julian(ms))))
}

fn unixepoch(args: &[Val]) -> Answer {
    Ok(moment(args).map_or(Val::Null, |ms| Val::Int(ms.div_euclid(1000))))
}

/// `strftime(FORMAT, TIME, MODIFIERS...)` with SQLite's substitutions.
fn strftime(args: &[Val]) -> Answer {
    let Some(format) = arg(args, 0).text() else {
        return Ok(Val::Null);
    };
    let Some(ms) = moment(&args[1.min(args.len())..]) else {
        return Ok(Val::Null);
    };
    let Some(d) = datetime_at(ms) else {
        return Ok(Val::Null);
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Ok(Val::Null);
        };
        let piece = match spec {
            'd' => format!("{:02}", d.day()),
            'e' => format!("{:2}", d.day()),
            'f' => format!(
                "{:06.3}",
                d.second() as f64 + (ms.rem_euclid(1000)) as f64 / 1000.0
            ),
            'F' => d.format("%Y-%m-%d").to_string(),
            'H' => format!("{:02}", d.hour()),
            'k' => format!("{:2}", d.hour()),
            'I' => format!("{:02}", (d.hour() + 11) % 12 + 1),
            'l' => format!("{:2}", (d.hour() + 11) % 12 + 1),
            'j' => format!("{:03}", d.ordinal()),
            'J' => real_text(ms_to_julian(ms)),
            'm' => format!("{:02}", d.month()),
            'M' => format!("{:02}", d.minute()),
            'p' => if d.hour() < 12 { "AM" } else { "PM" }.into(),
            'P' => if d.hour() < 12 { "am" } else { "pm" }.into(),
            'R' => d.format("%H:%M").to_string(),
            's' => ms.div_euclid(1000).to_string(),
            'S' => format!("{:02}", d.second()),
            'T' => d.format("%H:%M:%S").to_string(),
            'u' => d.weekday().number_from_monday().to_string(),
            'w' => d.weekday().num_days_from_sunday().to_string(),
            'W' => d.format("%W").to_string(),
            'U' => d.format("%U").to_string(),
            'V' => d.format("%V").to_string(),
            'G' => d.format("%G").to_string(),
            'g' => d.format("%g").to_string(),
            'Y' => format!("{:04}", d.year()),
            '%' => "%".into(),
            _ => return Ok(Val::Null),
        };
        out.push_str(&piece);
    }
    Ok(Val::Text(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Val {
        Val::Text(s.into())
    }

    #[test]
    fn reals_print_as_sqlite_prints_them() {
        for (v, text) in [
            (1.0, "1.0"),
            (0.25, "0.25"),
            (100.0, "100.0"),
            (1e20, "1.0e+20"),
            (1e15, "1.0e+15"),
            (1e-5, "1.0e-05"),
            (1.0 / 3.0, "0.333333333333333"),
            (-2.5, "-2.5"),
            (0.30000000000000004, "0.3"),
        ] {
            assert_eq!(real_text(v), text, "{v}");
        }
    }

    #[test]
    fn substr_follows_sqlite() {
        for (y, z, want) in [
            (-3, Some(2), "ll"),
            (0, Some(2), "h"),
            (2, Some(-1), "h"),
            (-10, Some(3), ""),
            (2, None, "ello"),
        ] {
            let mut args = vec![t("hello"), Val::Int(y)];
            args.extend(z.map(Val::Int));
            assert_eq!(substr(&args).unwrap(), t(want), "{y} {z:?}");
        }
    }

    #[test]
    fn printf_conversions() {
        let args = [
            t("%5.2f|%-5d|%05d|%s|%x|%e|%g|%,d"),
            Val::Real(3.25159),
            Val::Int(42),
            Val::Int(42),
            Val::Null,
            Val::Int(255),
            Val::Real(12345.678),
            Val::Real(0.0001234),
            Val::Int(1234567),
        ];
        assert_eq!(
            printf(&args).unwrap(),
            t(" 3.25|42   |00042||ff|1.234568e+04|0.0001234|1,234,567")
        );
    }

    #[test]
    fn dates_with_modifiers() {
        assert_eq!(
            date(&[t("2000-01-31"), t("+1 month")]).unwrap(),
            t("2000-03-02")
        );
        assert_eq!(
            datetime(&[Val::Real(2451545.0)]).unwrap(),
            t("2000-01-01 12:00:00")
        );
        assert_eq!(julianday(&[t("2000-01-01")]).unwrap(), Val::Real(2451544.5));
        assert_eq!(
            strftime(&[t("%j %W %w %s %f"), t("2000-03-05 10:11:12.345")]).unwrap(),
            t("065 09 0 952251072 12.345")
        );
        assert_eq!(time(&[t("12:30")]).unwrap(), t("12:30:00"));
        assert_eq!(
            date(&[t("2020-02-29"), t("+1 year")]).unwrap(),
            t("2021-03-01")
        );
        assert_eq!(
            datetime(&[t("2000-01-01"), t("weekday 1")]).unwrap(),
            t("2000-01-03 00:00:00")
        );
        assert_eq!(date(&[t("not a date")]).unwrap(), Val::Null);
        // Text that is not ASCII where digits belong is no date, never a panic.
        assert_eq!(date(&[t("2020-01-01 10:é0")]).unwrap(), Val::Null);
        assert_eq!(date(&[t("2020-01-01 10:00:é")]).unwrap(), Val::Null);
        assert_eq!(date(&[t("2020-01-01 10:00+0é:00")]).unwrap(), Val::Null);
    }

    #[test]
    fn round_is_exact_decimal_half_away_from_zero() {
        // 2.675 is 2.67499999… as a double; 0.125 is an exact tie.
        let r = |x: f64, n: i64| round(&[Val::Real(x), Val::Int(n)]).unwrap();
        assert_eq!(r(2.675, 2), Val::Real(2.67));
        assert_eq!(r(0.125, 2), Val::Real(0.13));
        assert_eq!(r(-2.5, 0), Val::Real(-3.0));
    }
}
