//! SQL++ functions the engine has no exact equivalent of, under `sqlpp_` names, for the AsterixDB
//! front's translation. Each computes what AsterixDB's evaluator computes (the arithmetic read from
//! its runtime: `Math.round`, `Math.rint`, `BigDecimal.setScale`, the online central moments), or
//! refuses while the statement is planned, where the engine's types would change the answer.
//!
//! | function | does |
//! |---|---|
//! | `sqlpp_array(v, …)` | an array, as `make_array`, refused when its items are of different kinds (an integer beside a double would be widened) |
//! | `sqlpp_same_kind(v, probe, …)` | `v`, refused when the probes' kinds differ (a `CASE`'s branches) |
//! | `sqlpp_round(x[, digits])` | SQL++ `round`: half up as Java's `Math.round`, integers become bigints |
//! | `sqlpp_round_half_to_even(x[, digits])` | SQL++ `round_half_to_even` |
//! | `sqlpp_floor(x)`, `sqlpp_ceil(x)` | of the argument's own type |
//! | `sqlpp_skewness(list)`, `sqlpp_kurtosis(list)` | of a list's non-null items, as AsterixDB's moments give them |
//! | `sqlpp_wide(x)` | an integer as a 38-digit decimal, anything else itself |
//! | `sqlpp_checked_sum(sum, wide_sum[, place])` | `sum`, failing with ASX0007 (ending with `place`) where an integer sum overflowed 64 bits |
//! | `sqlpp_string_to_codepoint(s)`, `sqlpp_codepoint_to_string(list)` | a string's code points, and back |
//! | `sqlpp_string_concat(list)` | a list's strings joined; null where one is null |
//! | `sqlpp_substring(s, offset[, length])`, `sqlpp_substring1` | SQL++'s `substring`, offset from 0 (from 1), from the end when negative; null from the end of the string on |
//! | `sqlpp_empty_object()` | `{}`, an object of no fields |
//! | `sqlpp_bitand(a, b, …)`, `_bitor`, `_bitxor`, `_bitnot(a)`, `_bitcount(a)`, `_bitshift(a, n[, rotate])` | SQL++'s bit functions on 64-bit integers (doubles that are whole numbers too); null where an argument is not a whole number |
//! | `sqlpp_add(a, b)`, `sqlpp_subtract`, `sqlpp_multiply`, `sqlpp_divide` | SQL++'s `+`, `-`, `*`, `/` of numbers: the wider operand's type (a double of integers for `/`), integers failing with ASX0007/ASX0008 past their range (the engine's wrap around), floats computed as doubles; null by zero |

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type, Int64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::functions_nested::make_array::MakeArray;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers every `sqlpp_` function.
pub fn register(ctx: &SessionContext) {
    use TypeSignature::Any;
    let any = |n| Signature::any(n, Volatility::Immutable);
    let one_of = |forms| Signature::one_of(forms, Volatility::Immutable);
    let user_defined = || Signature::user_defined(Volatility::Immutable);
    let variadic = || Signature::variadic_any(Volatility::Immutable);
    let functions: Vec<(Signature, Box<dyn Computes>)> = vec![
        (
            user_defined(),
            Box::new(SqlppArray {
                inner: MakeArray::new(),
            }),
        ),
        (user_defined(), Box::new(SameKind)),
        (
            one_of(vec![Any(1), Any(2)]),
            Box::new(Rounding { rule: Rule::Round }),
        ),
        (
            one_of(vec![Any(1), Any(2)]),
            Box::new(Rounding {
                rule: Rule::HalfEven,
            }),
        ),
        (any(1), Box::new(Rounding { rule: Rule::Floor })),
        (any(1), Box::new(Rounding { rule: Rule::Ceil })),
        (any(1), Box::new(Moment { kurtosis: false })),
        (any(1), Box::new(Moment { kurtosis: true })),
        (any(1), Box::new(Wide)),
        (
            one_of(vec![Any(2), Any(3)]),
            Box::new(Substring { base: 0 }),
        ),
        (
            one_of(vec![Any(2), Any(3)]),
            Box::new(Substring { base: 1 }),
        ),
        (one_of(vec![Any(2), Any(3)]), Box::new(CheckedSum)),
        (
            any(2),
            Box::new(Arithmetic {
                op: ArithOp::Divide,
            }),
        ),
        (any(2), Box::new(Arithmetic { op: ArithOp::Add })),
        (
            any(2),
            Box::new(Arithmetic {
                op: ArithOp::Subtract,
            }),
        ),
        (
            any(2),
            Box::new(Arithmetic {
                op: ArithOp::Multiply,
            }),
        ),
        (
            any(1),
            Box::new(Codepoints {
                rule: CodepointRule::FromString,
            }),
        ),
        (
            any(1),
            Box::new(Codepoints {
                rule: CodepointRule::ToString,
            }),
        ),
        (
            any(1),
            Box::new(Codepoints {
                rule: CodepointRule::Concat,
            }),
        ),
        (
            Signature::nullary(Volatility::Immutable),
            Box::new(EmptyObject),
        ),
        (variadic(), Box::new(Bitwise { op: BitOp::And })),
        (variadic(), Box::new(Bitwise { op: BitOp::Or })),
        (variadic(), Box::new(Bitwise { op: BitOp::Xor })),
        (any(1), Box::new(Bitwise { op: BitOp::Not })),
        (any(1), Box::new(Bitwise { op: BitOp::Count })),
        (
            one_of(vec![Any(2), Any(3)]),
            Box::new(Bitwise { op: BitOp::Shift }),
        ),
    ];
    for (signature, computes) in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(SqlppFunction {
            signature,
            computes,
        }));
    }
}

/// What one `sqlpp_` function computes; [`SqlppFunction`] gives it its signature.
trait Computes: std::fmt::Debug + Send + Sync {
    fn name(&self) -> &str;

    /// The argument types, for functions whose signature is user-defined.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType>;

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue>;
}

/// One `sqlpp_` engine function: a signature and what it computes (functions are told apart by
/// name).
#[derive(Debug)]
struct SqlppFunction {
    signature: Signature,
    computes: Box<dyn Computes>,
}

impl PartialEq for SqlppFunction {
    fn eq(&self, other: &Self) -> bool {
        self.computes.name() == other.computes.name()
    }
}

impl Eq for SqlppFunction {}

impl std::hash::Hash for SqlppFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.computes.name().hash(state);
    }
}

impl ScalarUDFImpl for SqlppFunction {
    fn name(&self) -> &str {
        self.computes.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.computes.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.computes.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.computes.invoke(args)
    }
}

/// What a value of this type prints as, as far as SQL++ tells types apart: integers of every
/// width alike, floats, doubles and strings apart. `None` for the null type, which goes anywhere.
fn kind(data_type: &DataType) -> Option<String> {
    use DataType::*;
    Some(match data_type {
        Null => return None,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "bigint".into(),
        Float16 | Float32 => "float".into(),
        Float64 => "double".into(),
        Utf8 | LargeUtf8 | Utf8View => "string".into(),
        List(item) | LargeList(item) | FixedSizeList(item, _) => {
            format!("array of {}", kind(item.data_type()).unwrap_or_default())
        }
        Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), kind(f.data_type()).unwrap_or_default()))
                .collect();
            format!("object {{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    })
}

/// Refuses values of more than one kind where the engine would convert them to one type.
fn one_kind(what: &str, types: &[DataType]) -> Result<()> {
    let mut seen: Option<String> = None;
    for k in types.iter().filter_map(kind) {
        match &seen {
            None => seen = Some(k),
            Some(first) if *first == k => {}
            Some(first) => {
                return plan_err!(
                    "{what} of values of different types ({first} and {k}) is not supported by polyquery"
                );
            }
        }
    }
    Ok(())
}

/// `sqlpp_array(v, …)`: `make_array` whose items must be of one kind.
#[derive(Debug)]
struct SqlppArray {
    inner: MakeArray,
}

impl Computes for SqlppArray {
    fn name(&self) -> &str {
        "sqlpp_array"
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        one_kind("an array", arg_types)?;
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

/// `sqlpp_same_kind(v, probe, …)`: `v` itself; planned only when the probes (a `CASE`'s
/// branches, never evaluated) are of one kind.
#[derive(Debug)]
struct SameKind;

impl Computes for SameKind {
    fn name(&self) -> &str {
        "sqlpp_same_kind"
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        one_kind("a CASE", arg_types.get(1..).unwrap_or_default())?;
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_type(self.name(), arg_types)
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.into_iter().next() {
            Some(v) => Ok(v),
            None => exec_err!("sqlpp_same_kind takes a value"),
        }
    }
}

/// The type of a function's first argument, which its value has.
fn first_type(function: &str, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types.first() {
        Some(t) => Ok(t.clone()),
        None => plan_err!("{function} takes an argument"),
    }
}

/// The refusal of a function for arguments of these types.
fn refused_types<T>(what: &str, arg_types: &[DataType]) -> Result<T> {
    let types: Vec<String> = arg_types.iter().map(ToString::to_string).collect();
    plan_err!(
        "{what} of {} is not supported by polyquery",
        types.join(", ")
    )
}

fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// The rounding functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    Round,
    HalfEven,
    Floor,
    Ceil,
}

#[derive(Debug)]
struct Rounding {
    rule: Rule,
}

/// Java's `Math.round(double)`: the closest long, ties toward positive infinity; NaN is 0 and
/// values past the range are clamped (as Rust's `as` does).
fn java_round(x: f64) -> i64 {
    let floor = x.floor();
    let rounded = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded as i64
}

/// Java's `Math.round(float)`: the closest int, ties toward positive infinity.
fn java_round_f32(x: f32) -> i32 {
    let floor = x.floor();
    let rounded = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded as i32
}

/// Java's `Math.pow(10, k)` for k >= 0 (exact up to 10^22).
fn pow10(k: i64) -> f64 {
    let k = k.clamp(0, 400);
    if k <= 22 {
        10f64.powi(k as i32)
    } else {
        10f64.powf(k as f64)
    }
}

/// `BigDecimal(shortest text).setScale(scale, HALF_EVEN)` of a finite, non-zero value's shortest
/// decimal text (`{:e}` form): the rounded text, or `None` when the value already has no more
/// digits than `scale` keeps.
fn half_even_text(scientific: &str, scale: i64) -> Option<String> {
    let (negative, body) = match scientific.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, scientific),
    };
    let (mantissa, exponent) = body.split_once('e')?;
    let exponent: i64 = exponent.parse().ok()?;
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let n = digits.len() as i64;
    // The value is digits × 10^lowest.
    let lowest = exponent - (n - 1);
    let scale = scale.clamp(-400, 400);
    if lowest >= -scale {
        return None;
    }
    let drop = -scale - lowest;
    let sign = if negative { "-" } else { "" };
    if drop > n {
        return Some("0".into());
    }
    let keep = (n - drop) as usize;
    let (kept, rest) = digits.split_at(keep);
    let first = rest.first().copied().unwrap_or(b'0');
    let beyond = rest.iter().skip(1).any(|d| *d != b'0');
    let odd = kept.last().is_some_and(|d| (d - b'0') % 2 == 1);
    let up = first > b'5' || (first == b'5' && (beyond || odd));
    let mut kept: Vec<u8> = if kept.is_empty() {
        vec![b'0']
    } else {
        kept.to_vec()
    };
    if up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.iter().all(|d| *d == b'0') {
        // BigDecimal has no negative zero.
        return Some("0".into());
    }
    Some(format!(
        "{sign}{}e{}",
        String::from_utf8_lossy(&kept),
        -scale
    ))
}

fn round_f64(rule: Rule, x: f64, digits: i64) -> f64 {
    match rule {
        Rule::Floor => x.floor(),
        Rule::Ceil => x.ceil(),
        Rule::Round if digits >= 0 => {
            let m = pow10(digits);
            java_round(x * m) as f64 / m
        }
        Rule::Round => {
            let m = pow10(-digits);
            java_round(x / m) as f64 * m
        }
        Rule::HalfEven if digits == 0 => x.round_ties_even(),
        Rule::HalfEven => {
            if !x.is_finite() || x == 0.0 {
                return x;
            }
            match half_even_text(&format!("{x:e}"), digits) {
                Some(text) => text.parse().unwrap_or(x),
                None => x,
            }
        }
    }
}

fn round_f32(rule: Rule, x: f32, digits: i64, explicit_digits: bool) -> f32 {
    match rule {
        Rule::Floor => x.floor(),
        Rule::Ceil => x.ceil(),
        Rule::Round if digits >= 0 => {
            let m = pow10(digits) as f32;
            java_round_f32(x * m) as f32 / m
        }
        Rule::Round => {
            let m = pow10(-digits) as f32;
            java_round_f32(x / m) as f32 * m
        }
        Rule::HalfEven if !explicit_digits => f64::from(x).round_ties_even() as f32,
        Rule::HalfEven => {
            if !x.is_finite() || x == 0.0 {
                return x;
            }
            match half_even_text(&format!("{x:e}"), digits) {
                Some(text) => text.parse().unwrap_or(x),
                None => x,
            }
        }
    }
}

fn round_i64(rule: Rule, x: i64, digits: i64) -> i64 {
    match rule {
        Rule::Round if digits < 0 => {
            let m = pow10(-digits);
            (java_round(x as f64 / m) as f64 * m) as i64
        }
        _ => x,
    }
}

impl Computes for Rounding {
    fn name(&self) -> &str {
        match self.rule {
            Rule::Round => "sqlpp_round",
            Rule::HalfEven => "sqlpp_round_half_to_even",
            Rule::Floor => "sqlpp_floor",
            Rule::Ceil => "sqlpp_ceil",
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let Some(value) = arg_types.first() else {
            return plan_err!("{} takes a number", self.name());
        };
        if let Some(digits) = arg_types.get(1)
            && !(digits.is_numeric() || digits.is_null())
        {
            return plan_err!(
                "{} with a number of digits that is not a number is not supported by polyquery",
                self.name()
            );
        }
        match value {
            DataType::Null | DataType::Float32 | DataType::Float64 => Ok(value.clone()),
            t if is_integer(t) && self.rule == Rule::Round => Ok(DataType::Int64),
            t if is_integer(t) => Ok(t.clone()),
            other => plan_err!(
                "{} of a {other} value is not supported by polyquery",
                self.name()
            ),
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut values = args.args.iter();
        let Some(value) = values.next() else {
            return exec_err!("{} takes a number", self.name());
        };
        let value = value.to_array(rows)?;
        // The digits of each row: `None` makes the result null (a null, or a number that is not
        // a whole one, as AsterixDB answers).
        let digits: Vec<Option<i64>> = match values.next() {
            None => vec![Some(0); rows],
            Some(d) => {
                let d = cast(&d.to_array(rows)?, &DataType::Float64)?;
                let d = d.as_primitive::<Float64Type>();
                (0..rows)
                    .map(|i| {
                        let x = d.value(i);
                        (!d.is_null(i) && x.fract() == 0.0 && x.is_finite())
                            .then(|| x.clamp(-1e6, 1e6) as i64)
                    })
                    .collect()
            }
        };
        let explicit = args.args.len() > 1;
        let rule = self.rule;
        let out: ArrayRef = match value.data_type() {
            DataType::Null => return Ok(ColumnarValue::Scalar(ScalarValue::Null)),
            DataType::Float64 => {
                let a = value.as_primitive::<Float64Type>();
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let d = digits[i].filter(|_| !a.is_null(i))?;
                            Some(round_f64(rule, a.value(i), d))
                        })
                        .collect::<Float64Array>(),
                )
            }
            DataType::Float32 => {
                let a = value.as_primitive::<Float32Type>();
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let d = digits[i].filter(|_| !a.is_null(i))?;
                            Some(round_f32(rule, a.value(i), d, explicit))
                        })
                        .collect::<Float32Array>(),
                )
            }
            t if is_integer(t) => {
                let wide = cast(&value, &DataType::Int64)?;
                let a = wide.as_primitive::<Int64Type>();
                let rounded: ArrayRef = Arc::new(
                    (0..rows)
                        .map(|i| {
                            let d = digits[i].filter(|_| !a.is_null(i))?;
                            Some(round_i64(rule, a.value(i), d))
                        })
                        .collect::<Int64Array>(),
                );
                if rule == Rule::Round {
                    rounded
                } else {
                    cast(&rounded, t)?
                }
            }
            other => return exec_err!("{} of a {other} value", self.name()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// AsterixDB's running central moments of a sample (count, mean, and the sums of the 2nd, 3rd
/// and 4th powers of the deviations), updated one value at a time in its order of operations.
#[derive(Default)]
struct Moments {
    count: i64,
    m1: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Moments {
    fn push(&mut self, value: f64) {
        self.count += 1;
        let count = self.count as f64;
        let delta = value - self.m1;
        let delta_n = delta / count;
        let term1 = delta * delta_n * (count - 1.0);
        self.m1 += delta / count;
        let c = self.count;
        let poly = c
            .saturating_mul(c)
            .saturating_sub(c.saturating_mul(3))
            .saturating_add(3) as f64;
        self.m4 += term1 * delta_n * delta_n * poly;
        self.m4 += 6.0 * delta_n * delta_n * self.m2 - 4.0 * delta_n * self.m3;
        self.m3 += term1 * delta_n * (count - 2.0) - 3.0 * delta_n * self.m2;
        self.m2 += term1;
    }

    /// Skewness or (excess) kurtosis; null for fewer than three values or no spread.
    fn finish(&self, kurtosis: bool) -> Option<f64> {
        if self.count <= 2 || self.m2 == 0.0 {
            return None;
        }
        let count = self.count as f64;
        Some(if kurtosis {
            self.m4 * count / (self.m2 * self.m2) - 3.0
        } else {
            count.sqrt() * self.m3 / self.m2.powf(1.5)
        })
    }
}

/// `sqlpp_skewness(list)` / `sqlpp_kurtosis(list)` of the list's non-null items.
#[derive(Debug)]
struct Moment {
    kurtosis: bool,
}

impl Computes for Moment {
    fn name(&self) -> &str {
        if self.kurtosis {
            "sqlpp_kurtosis"
        } else {
            "sqlpp_skewness"
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::List(item))
                if item.data_type().is_numeric() || item.data_type().is_null() =>
            {
                Ok(DataType::Float64)
            }
            Some(DataType::Null) => Ok(DataType::Float64),
            Some(other) => plan_err!(
                "{} of a {other} value is not supported by polyquery",
                self.name()
            ),
            None => plan_err!("{} takes a collection", self.name()),
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(list) = args.args.first() else {
            return exec_err!("{} takes a collection", self.name());
        };
        let list = list.to_array(rows)?;
        if list.data_type().is_null() {
            return Ok(ColumnarValue::Scalar(ScalarValue::Float64(None)));
        }
        let list = list.as_list::<i32>();
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            if list.is_null(i) {
                out.push(None);
                continue;
            }
            let items = cast(&list.value(i), &DataType::Float64)?;
            let items = items.as_primitive::<Float64Type>();
            let mut moments = Moments::default();
            for x in items.iter().flatten() {
                moments.push(x);
            }
            out.push(moments.finish(self.kurtosis));
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(out))))
    }
}

/// 0 for the null type, 1 integers, 2 float, 3 double; `None` for a type `/` is not translated for.
fn numeric_rank(data_type: &DataType) -> Option<u8> {
    match data_type {
        DataType::Null => Some(0),
        t if is_integer(t) => Some(1),
        DataType::Float32 => Some(2),
        DataType::Float64 => Some(3),
        _ => None,
    }
}

/// The string functions over code points and lists of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CodepointRule {
    FromString,
    ToString,
    Concat,
}

#[derive(Debug)]
struct Codepoints {
    rule: CodepointRule,
}

impl Computes for Codepoints {
    fn name(&self) -> &str {
        match self.rule {
            CodepointRule::FromString => "sqlpp_string_to_codepoint",
            CodepointRule::ToString => "sqlpp_codepoint_to_string",
            CodepointRule::Concat => "sqlpp_string_concat",
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let arg = arg_types.first().cloned().unwrap_or(DataType::Null);
        let item = match &arg {
            DataType::List(item) => Some(item.data_type().clone()),
            _ => None,
        };
        match (self.rule, &arg, item) {
            (CodepointRule::FromString, DataType::Utf8 | DataType::Null, _) => {
                Ok(DataType::new_list(DataType::Int64, true))
            }
            (CodepointRule::ToString, DataType::Null, _) => Ok(DataType::Utf8),
            (CodepointRule::ToString, _, Some(t)) if is_integer(&t) || t.is_null() => {
                Ok(DataType::Utf8)
            }
            (CodepointRule::Concat, DataType::Null, _) => Ok(DataType::Utf8),
            (CodepointRule::Concat, _, Some(DataType::Utf8 | DataType::Null)) => Ok(DataType::Utf8),
            _ => plan_err!(
                "{} of a {arg} value is not supported by polyquery",
                self.name()
            ),
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(arg) = args.args.first() else {
            return exec_err!("{} takes one argument", self.name());
        };
        let arg = arg.to_array(rows)?;
        if arg.data_type().is_null() {
            let null = match self.rule {
                CodepointRule::FromString => ScalarValue::try_from(args.return_field.data_type())?,
                _ => ScalarValue::Utf8(None),
            };
            return Ok(ColumnarValue::Scalar(null));
        }
        let out: ArrayRef = match self.rule {
            CodepointRule::FromString => {
                let strings = arg.as_string::<i32>();
                let lists = (0..rows).map(|i| {
                    (!strings.is_null(i)).then(|| {
                        strings
                            .value(i)
                            .chars()
                            .map(|c| Some(i64::from(u32::from(c))))
                            .collect::<Vec<_>>()
                    })
                });
                Arc::new(arrow::array::ListArray::from_iter_primitive::<
                    Int64Type,
                    _,
                    _,
                >(lists))
            }
            CodepointRule::ToString | CodepointRule::Concat => {
                let lists = arg.as_list::<i32>();
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    if lists.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    out.push(self.joined(&lists.value(i))?);
                }
                Arc::new(arrow::array::StringArray::from(out))
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

impl Codepoints {
    /// One list's string: its code points as characters, or its strings joined; null where an
    /// item is null.
    fn joined(&self, items: &ArrayRef) -> Result<Option<String>> {
        // A list of the null type (`[null]`) has no validity buffer: its nulls are logical.
        if items.logical_null_count() > 0 {
            return Ok(None);
        }
        let mut text = String::new();
        if self.rule == CodepointRule::Concat {
            let strings = cast(items, &DataType::Utf8)?;
            for s in strings.as_string::<i32>().iter().flatten() {
                text.push_str(s);
            }
            return Ok(Some(text));
        }
        let points = cast(items, &DataType::Int64)?;
        for point in points.as_primitive::<Int64Type>().iter().flatten() {
            match u32::try_from(point).ok().and_then(char::from_u32) {
                Some(c) => text.push(c),
                None => {
                    return exec_err!(
                        "codepoint_to_string of {point}, which is no character, is not supported by polyquery"
                    );
                }
            }
        }
        Ok(Some(text))
    }
}

/// `sqlpp_substring(s, offset[, length])` (offset from 0) and `sqlpp_substring1` (from 1), in
/// code points as AsterixDB's substring evaluator counts: a negative offset counts from the end,
/// an offset before the start is the start, and an offset at or past the end (or a negative
/// length) makes the value null.
#[derive(Debug)]
struct Substring {
    base: i64,
}

impl Computes for Substring {
    fn name(&self) -> &str {
        if self.base == 0 {
            "sqlpp_substring"
        } else {
            "sqlpp_substring1"
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let string = arg_types
            .first()
            .is_some_and(|t| matches!(t, DataType::Utf8 | DataType::Null));
        let numbers = arg_types
            .iter()
            .skip(1)
            .all(|t| t.is_numeric() || t.is_null());
        if string && numbers {
            Ok(DataType::Utf8)
        } else {
            refused_types("substring", arg_types)
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(string) = args.args.first() else {
            return exec_err!("{} takes a string", self.name());
        };
        let string = cast(&string.to_array(rows)?, &DataType::Utf8)?;
        let strings = string.as_string::<i32>();
        let numbers: Vec<Vec<Option<i64>>> = args
            .args
            .iter()
            .skip(1)
            .map(|a| whole_numbers(&a.to_array(rows)?))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let start = numbers.first().and_then(|n| n[i]);
            let length = match numbers.get(1) {
                Some(n) => n[i],
                None => Some(i64::MAX),
            };
            let (Some(start), Some(length)) = (start, length) else {
                out.push(None);
                continue;
            };
            if strings.is_null(i) {
                out.push(None);
                continue;
            }
            let text = strings.value(i);
            let count = text.chars().count() as i64;
            let actual = if start >= 0 {
                (start - self.base).max(0)
            } else {
                count.saturating_add(start)
            };
            if actual < 0 || length < 0 || actual >= count {
                out.push(None);
                continue;
            }
            let taken: String = text
                .chars()
                .skip(actual as usize)
                .take(usize::try_from(length).unwrap_or(usize::MAX))
                .collect();
            out.push(Some(taken));
        }
        Ok(ColumnarValue::Array(Arc::new(
            arrow::array::StringArray::from(out),
        )))
    }
}

/// `sqlpp_empty_object()`: `{}`, which `named_struct` cannot make.
#[derive(Debug)]
struct EmptyObject;

impl Computes for EmptyObject {
    fn name(&self) -> &str {
        "sqlpp_empty_object"
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(arrow::datatypes::Fields::empty()))
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Array(Arc::new(
            arrow::array::StructArray::new_empty_fields(args.number_rows, None),
        )))
    }
}

/// The bit functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
    Count,
    Shift,
}

#[derive(Debug)]
struct Bitwise {
    op: BitOp,
}

/// Each row's value of a numeric column as a 64-bit integer: `None` for a null, or a double that
/// is not a whole number in the range.
fn whole_numbers(column: &ArrayRef) -> Result<Vec<Option<i64>>> {
    if is_integer(column.data_type()) {
        let ints = cast(column, &DataType::Int64)?;
        return Ok(ints.as_primitive::<Int64Type>().iter().collect());
    }
    let doubles = cast(column, &DataType::Float64)?;
    Ok(doubles
        .as_primitive::<Float64Type>()
        .iter()
        .map(|x| {
            let x = x?;
            // Whole numbers in [-2^63, 2^63).
            let range = -9.223_372_036_854_776e18..9.223_372_036_854_776e18;
            (x.fract() == 0.0 && range.contains(&x)).then_some(x as i64)
        })
        .collect())
}

impl Computes for Bitwise {
    fn name(&self) -> &str {
        match self.op {
            BitOp::And => "sqlpp_bitand",
            BitOp::Or => "sqlpp_bitor",
            BitOp::Xor => "sqlpp_bitxor",
            BitOp::Not => "sqlpp_bitnot",
            BitOp::Count => "sqlpp_bitcount",
            BitOp::Shift => "sqlpp_bitshift",
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        for (i, t) in arg_types.iter().enumerate() {
            let rotate = self.op == BitOp::Shift && i == 2;
            let fits = if rotate {
                matches!(t, DataType::Boolean | DataType::Null)
            } else {
                t.is_numeric() || t.is_null()
            };
            if !fits {
                return plan_err!(
                    "{} of a {t} value is not supported by polyquery",
                    self.name()
                );
            }
        }
        Ok(DataType::Int64)
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let numbers = if self.op == BitOp::Shift {
            2
        } else {
            args.args.len()
        };
        let columns: Vec<Vec<Option<i64>>> = args
            .args
            .iter()
            .take(numbers)
            .map(|a| whole_numbers(&a.to_array(rows)?))
            .collect::<Result<_>>()?;
        let rotate = match args.args.get(2) {
            Some(r) => {
                let r = cast(&r.to_array(rows)?, &DataType::Boolean)?;
                r.as_boolean().iter().collect()
            }
            None => vec![Some(false); rows],
        };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let values: Option<Vec<i64>> = columns.iter().map(|c| c[row]).collect();
            let Some(values) = values else {
                out.push(None);
                continue;
            };
            let first = values.first().copied().unwrap_or_default();
            out.push(match self.op {
                BitOp::And => values.iter().copied().reduce(|a, b| a & b),
                BitOp::Or => values.iter().copied().reduce(|a, b| a | b),
                BitOp::Xor => values.iter().copied().reduce(|a, b| a ^ b),
                BitOp::Not => Some(!first),
                BitOp::Count => Some(i64::from(first.count_ones())),
                BitOp::Shift => {
                    let by = values.get(1).copied().unwrap_or_default();
                    match rotate[row] {
                        None => None,
                        Some(true) => Some(first.rotate_left(by.rem_euclid(64) as u32)),
                        Some(false) if by.unsigned_abs() >= 64 => {
                            return exec_err!(
                                "bitshift by 64 bits or more is not supported by polyquery"
                            );
                        }
                        Some(false) if by >= 0 => Some(first << by),
                        Some(false) => Some(((first as u64) >> by.unsigned_abs()) as i64),
                    }
                }
            });
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(out))))
    }
}

/// `+`, `-` and `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// SQL++'s `+`, `-`, `*`, `/` of numbers, as AsterixDB's arithmetic evaluators compute them:
/// the result has the wider operand's type (but integers divide as doubles); integers are
/// computed exactly and fail past the range of that type; a float result is the double result
/// made a float, failing past the float range; a quotient by zero is null.
#[derive(Debug)]
struct Arithmetic {
    op: ArithOp,
}

/// The integer type of `bits` bits.
fn integer_of(bits: usize) -> DataType {
    match bits {
        8 => DataType::Int8,
        16 => DataType::Int16,
        32 => DataType::Int32,
        _ => DataType::Int64,
    }
}

fn integer_bits(data_type: &DataType) -> usize {
    match data_type {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 => 32,
        _ => 64,
    }
}

impl Computes for Arithmetic {
    fn name(&self) -> &str {
        match self.op {
            ArithOp::Add => "sqlpp_add",
            ArithOp::Subtract => "sqlpp_subtract",
            ArithOp::Multiply => "sqlpp_multiply",
            ArithOp::Divide => "sqlpp_divide",
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let ranks: Option<Vec<u8>> = arg_types.iter().map(numeric_rank).collect();
        match ranks.and_then(|r| r.into_iter().max()) {
            Some(0) => Ok(DataType::Null),
            Some(1) if self.op == ArithOp::Divide => Ok(DataType::Float64),
            Some(1) => Ok(integer_of(
                arg_types
                    .iter()
                    .filter(|t| is_integer(t))
                    .map(integer_bits)
                    .max()
                    .unwrap_or(64),
            )),
            Some(2) => Ok(DataType::Float32),
            Some(_) => Ok(DataType::Float64),
            None => refused_types("arithmetic", arg_types),
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [a, b] = args.args.as_slice() else {
            return exec_err!("{} takes two numbers", self.name());
        };
        let result = args.return_field.data_type().clone();
        if result.is_null() {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        let (a, b) = (a.to_array(rows)?, b.to_array(rows)?);
        let function = match self.op {
            ArithOp::Add => "numeric-add",
            ArithOp::Subtract => "numeric-subtract",
            ArithOp::Multiply => "numeric-multiply",
            ArithOp::Divide => "numeric-divide",
        };
        if is_integer(&result) {
            let (a, b) = (cast(&a, &DataType::Int64)?, cast(&b, &DataType::Int64)?);
            let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
            let bits = integer_bits(&result) as u32;
            let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
            let mut out = Vec::with_capacity(rows);
            for i in 0..rows {
                if a.is_null(i) || b.is_null(i) {
                    out.push(None);
                    continue;
                }
                let (x, y) = (i128::from(a.value(i)), i128::from(b.value(i)));
                let exact = match self.op {
                    ArithOp::Add => x + y,
                    ArithOp::Subtract => x - y,
                    // `/` is never of integers: integer operands divide as doubles.
                    ArithOp::Multiply | ArithOp::Divide => x * y,
                };
                if exact > max {
                    return exec_err!("ASX0007: Overflow in {function}");
                }
                if exact < min {
                    return exec_err!("ASX0008: Underflow in {function}");
                }
                out.push(i64::try_from(exact).ok());
            }
            let out: ArrayRef = Arc::new(Int64Array::from(out));
            return Ok(ColumnarValue::Array(cast(&out, &result)?));
        }
        let (a, b) = (cast(&a, &DataType::Float64)?, cast(&b, &DataType::Float64)?);
        let (a, b) = (
            a.as_primitive::<Float64Type>(),
            b.as_primitive::<Float64Type>(),
        );
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let by_zero = self.op == ArithOp::Divide && b.value(i) == 0.0;
            if a.is_null(i) || b.is_null(i) || by_zero {
                out.push(None);
                continue;
            }
            let x = match self.op {
                ArithOp::Add => a.value(i) + b.value(i),
                ArithOp::Subtract => a.value(i) - b.value(i),
                ArithOp::Multiply => a.value(i) * b.value(i),
                ArithOp::Divide => a.value(i) / b.value(i),
            };
            if result == DataType::Float32 && x.is_finite() {
                if x > f64::from(f32::MAX) {
                    return exec_err!("ASX0007: Overflow in {function}");
                }
                if x < -f64::from(f32::MAX) {
                    return exec_err!("ASX0008: Underflow in {function}");
                }
            }
            out.push(Some(x));
        }
        let out: ArrayRef = Arc::new(Float64Array::from(out));
        Ok(ColumnarValue::Array(cast(&out, &result)?))
    }
}

const WIDE: DataType = DataType::Decimal128(38, 0);

/// `sqlpp_wide(x)`: an integer as a 38-digit decimal (whose sum cannot overflow), else `x`.
#[derive(Debug)]
struct Wide;

impl Computes for Wide {
    fn name(&self) -> &str {
        "sqlpp_wide"
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) if is_integer(t) => Ok(WIDE),
            Some(t) => Ok(t.clone()),
            None => plan_err!("sqlpp_wide takes a value"),
        }
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(value) = args.args.into_iter().next() else {
            return exec_err!("sqlpp_wide takes a value");
        };
        if !is_integer(&value.data_type()) {
            return Ok(value);
        }
        Ok(ColumnarValue::Array(cast(
            &value.to_array(args.number_rows)?,
            &WIDE,
        )?))
    }
}

/// `sqlpp_checked_sum(sum, wide_sum)`: `sum`, or AsterixDB's overflow error where the sum is of
/// integers and the exact sum is past the 64-bit range (the engine's sum wraps around).
#[derive(Debug)]
struct CheckedSum;

impl Computes for CheckedSum {
    fn name(&self) -> &str {
        "sqlpp_checked_sum"
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_type(self.name(), arg_types)
    }

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (sum, wide, place) = match args.args.as_slice() {
            [sum, wide] => (sum, wide, String::new()),
            [
                sum,
                wide,
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(place))),
            ] => (sum, wide, place.clone()),
            _ => return exec_err!("sqlpp_checked_sum takes two sums and a place"),
        };
        if is_integer(&sum.data_type()) {
            let exact = cast(&wide.to_array(rows)?, &WIDE)?;
            let exact = exact.as_primitive::<Decimal128Type>();
            let range = i128::from(i64::MIN)..=i128::from(i64::MAX);
            if exact.iter().flatten().any(|x| !range.contains(&x)) {
                return exec_err!("ASX0007: Overflow in agg-sum{place}");
            }
        }
        Ok(sum.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_java() {
        // (rule, value, digits, expected), from SQL++'s documented examples and Java's rules.
        let cases: &[(Rule, f64, i64, f64)] = &[
            (Rule::Round, 0.8, 0, 1.0),
            (Rule::Round, -2013.9, 0, -2014.0),
            (Rule::Round, -2.5, 0, -2.0),
            (Rule::Round, 2.5, 0, 3.0),
            (Rule::Round, 0.49999999999999994, 0, 0.0),
            (Rule::Round, 456.456, 2, 456.46),
            (Rule::Round, 456.456, -1, 460.0),
            (Rule::Round, -456.456, -2, -500.0),
            (Rule::HalfEven, 2.5, 0, 2.0),
            (Rule::HalfEven, 3.5, 0, 4.0),
            (Rule::HalfEven, -2.5, 0, -2.0),
            (Rule::HalfEven, 0.125, 2, 0.12),
            (Rule::HalfEven, 0.135, 2, 0.14),
            (Rule::HalfEven, 1.2345e-3, 3, 0.001),
            (Rule::HalfEven, 99.5, -1, 100.0),
            (Rule::HalfEven, 0.0009, 2, 0.0),
            (Rule::Floor, -2013.2, 0, -2014.0),
            (Rule::Ceil, 0.3, 0, 1.0),
        ];
        for &(rule, x, digits, want) in cases {
            assert_eq!(round_f64(rule, x, digits), want, "{rule:?}({x}, {digits})");
        }
        assert_eq!(round_i64(Rule::Round, 123456, -1), 123460);
        assert_eq!(round_f32(Rule::Round, -2013.256, 0, false), -2013.0);
        assert_eq!(half_even_text("-1.5e-3", 2), Some("0".into()));
        assert_eq!(half_even_text("9.96e0", 1), Some("100e-1".into()));
    }

    #[test]
    fn moments_are_asterixdbs() {
        let mut m = Moments::default();
        for x in [1.0, 2.0, 3.0] {
            m.push(x);
        }
        assert_eq!(m.finish(false), Some(0.0));
        assert_eq!(m.finish(true), Some(-1.5));
        let mut two = Moments::default();
        two.push(1.0);
        two.push(2.0);
        assert_eq!(two.finish(false), None);
    }

    #[test]
    fn kinds_tell_integers_floats_and_doubles_apart() {
        assert!(
            one_kind(
                "an array",
                &[DataType::Int8, DataType::Int64, DataType::Null]
            )
            .is_ok()
        );
        assert!(one_kind("an array", &[DataType::Int64, DataType::Float64]).is_err());
        assert!(one_kind("an array", &[DataType::Float32, DataType::Float64]).is_err());
        assert!(one_kind("an array", &[DataType::Utf8, DataType::Int64]).is_err());
    }
}
