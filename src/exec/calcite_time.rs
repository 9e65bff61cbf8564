//! Calcite's datetime arithmetic, which DataFusion has no exact equivalent of: `FLOOR`/`CEIL(x TO
//! unit)` (weeks start on Sunday), `TIMESTAMPADD` (months clamp to the month's last day) and
//! `TIMESTAMPDIFF` (whole units, truncated toward zero; months count only once the day and time
//! are reached). Kylin's SQL is rewritten to call these as `calcite_floor('MONTH', x)` and so on.
//!
//! A DATE argument gives a DATE for units of a day or more, as Calcite types it; anything else is
//! a TIMESTAMP (microseconds, no zone).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, Timelike, Weekday};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// Calcite's `TimeUnit`s that datetime arithmetic takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    /// A unit as Calcite or a JDBC escape spells it (`MONTH`, `SQL_TSI_MONTH`, `FRAC_SECOND`).
    pub fn parse(name: &str) -> Option<Unit> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SQL_TSI_").unwrap_or(&upper);
        Some(match bare {
            "MICROSECOND" | "FRAC_SECOND" => Unit::Microsecond,
            "MILLISECOND" => Unit::Millisecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Microsecond => "MICROSECOND",
            Unit::Millisecond => "MILLISECOND",
            Unit::Second => "SECOND",
            Unit::Minute => "MINUTE",
            Unit::Hour => "HOUR",
            Unit::Day => "DAY",
            Unit::Week => "WEEK",
            Unit::Month => "MONTH",
            Unit::Quarter => "QUARTER",
            Unit::Year => "YEAR",
        }
    }

    /// Months per unit for the calendar units, else `None`.
    fn months(self) -> Option<u32> {
        match self {
            Unit::Month => Some(1),
            Unit::Quarter => Some(3),
            Unit::Year => Some(12),
            _ => None,
        }
    }

    /// Microseconds per unit for the fixed-length units.
    fn micros(self) -> i64 {
        match self {
            Unit::Microsecond => 1,
            Unit::Millisecond => 1_000,
            Unit::Second => 1_000_000,
            Unit::Minute => 60_000_000,
            Unit::Hour => 3_600_000_000,
            Unit::Day => 86_400_000_000,
            Unit::Week => 7 * 86_400_000_000,
            // Calendar units never reach here; a month's length varies.
            Unit::Month | Unit::Quarter | Unit::Year => 0,
        }
    }

    fn at_least_a_day(self) -> bool {
        !matches!(
            self,
            Unit::Microsecond | Unit::Millisecond | Unit::Second | Unit::Minute | Unit::Hour
        )
    }
}

/// `FLOOR(t TO unit)`: Calcite's weeks start on Sunday.
pub fn floor(t: NaiveDateTime, unit: Unit) -> Option<NaiveDateTime> {
    floor_from(t, unit, Weekday::Sun)
}

/// The start of the unit `t` falls in, weeks starting on `first` (Looker's relative filters start
/// them on Monday).
pub fn floor_from(t: NaiveDateTime, unit: Unit, first: Weekday) -> Option<NaiveDateTime> {
    let date = t.date();
    let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    match unit {
        Unit::Microsecond => Some(t),
        Unit::Millisecond => t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000),
        Unit::Second => t.with_nanosecond(0),
        Unit::Minute => t.with_nanosecond(0)?.with_second(0),
        Unit::Hour => t.with_nanosecond(0)?.with_second(0)?.with_minute(0),
        Unit::Day => day(date),
        Unit::Week => {
            day(date
                .checked_sub_signed(Duration::days(i64::from(date.weekday().days_since(first))))?)
        }
        Unit::Month => day(date.with_day(1)?),
        Unit::Quarter => day(NaiveDate::from_ymd_opt(
            date.year(),
            (date.month0() / 3) * 3 + 1,
            1,
        )?),
        Unit::Year => day(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
    }
}

/// `CEIL(t TO unit)`: `t` itself when it is on a boundary, else the next one.
pub fn ceil(t: NaiveDateTime, unit: Unit) -> Option<NaiveDateTime> {
    let f = floor(t, unit)?;
    if f == t { Some(t) } else { add(f, unit, 1) }
}

/// `TIMESTAMPADD(unit, n, t)`.
pub fn add(t: NaiveDateTime, unit: Unit, n: i64) -> Option<NaiveDateTime> {
    match unit.months() {
        Some(per) => {
            let months = n.checked_mul(i64::from(per))?;
            let magnitude = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
            if months >= 0 {
                t.checked_add_months(magnitude)
            } else {
                t.checked_sub_months(magnitude)
            }
        }
        None => t.checked_add_signed(Duration::microseconds(n.checked_mul(unit.micros())?)),
    }
}

/// `TIMESTAMPDIFF(unit, a, b)`: whole units from `a` to `b`, truncated toward zero.
pub fn diff(a: NaiveDateTime, b: NaiveDateTime, unit: Unit) -> Option<i64> {
    match unit.months() {
        Some(per) => {
            let index = |t: NaiveDateTime| i64::from(t.year()) * 12 + i64::from(t.month0());
            let mut months = index(b) - index(a);
            // The rest of the timestamp (day, then time) decides whether the last month is whole.
            let rest = |t: NaiveDateTime| (t.day(), t.time());
            if months > 0 && rest(b) < rest(a) {
                months -= 1;
            } else if months < 0 && rest(b) > rest(a) {
                months += 1;
            }
            Some(months / i64::from(per))
        }
        None => Some((b - a).num_microseconds()? / unit.micros()),
    }
}

/// Which of the four functions a UDF computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Floor,
    Ceil,
    Add,
    Diff,
}

/// One of Calcite's datetime functions as a DataFusion UDF; the first argument is the unit, a
/// string literal.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CalciteTime {
    op: Op,
    signature: Signature,
}

/// The UDFs, to register on a session.
pub fn udfs() -> Vec<ScalarUDF> {
    [(Op::Floor, 2), (Op::Ceil, 2), (Op::Add, 3), (Op::Diff, 3)]
        .into_iter()
        .map(|(op, arity)| {
            ScalarUDF::new_from_impl(CalciteTime {
                op,
                signature: Signature::any(arity, Volatility::Immutable),
            })
        })
        .collect()
}

/// The UDF names Kylin's SQL rewrite calls.
pub const FLOOR: &str = "calcite_floor";
pub const CEIL: &str = "calcite_ceil";
pub const TIMESTAMPADD: &str = "calcite_timestampadd";
pub const TIMESTAMPDIFF: &str = "calcite_timestampdiff";

const MICROS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

fn unit_of(value: Option<&ScalarValue>) -> Result<Unit> {
    match value {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => match Unit::parse(s) {
            Some(unit) => Ok(unit),
            None => plan_err!("'{s}' is not a valid time frame"),
        },
        _ => plan_err!("the time unit must be a literal such as MONTH"),
    }
}

fn is_date(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Date64)
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

fn days(t: NaiveDateTime) -> Option<i32> {
    i32::try_from((t.date() - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days()).ok()
}

impl ScalarUDFImpl for CalciteTime {
    fn name(&self) -> &str {
        match self.op {
            Op::Floor => FLOOR,
            Op::Ceil => CEIL,
            Op::Add => TIMESTAMPADD,
            Op::Diff => TIMESTAMPDIFF,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        // `return_field_from_args` decides; this is only asked without the arguments' values.
        Ok(MICROS)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let unit = unit_of(args.scalar_arguments.first().copied().flatten())?;
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        let data_type = match self.op {
            Op::Diff => DataType::Int64,
            _ => {
                let t = args.arg_fields.last().map(|f| f.data_type().clone());
                if t.as_ref().is_some_and(is_date) && unit.at_least_a_day() {
                    DataType::Date32
                } else {
                    MICROS
                }
            }
        };
        Ok(Arc::new(Field::new(self.name(), data_type, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let unit = match args.args.first() {
            Some(ColumnarValue::Scalar(s)) => unit_of(Some(s))?,
            _ => return plan_err!("the time unit must be a literal such as MONTH"),
        };
        let rows = args.number_rows;
        let array = |i: usize, to: &DataType| -> Result<ArrayRef> {
            match args.args.get(i) {
                Some(v) => Ok(cast(&v.to_array(rows)?, to)?),
                None => exec_err!("{} is missing an argument", self.name()),
            }
        };
        let times = |i: usize| -> Result<TimestampMicrosecondArray> {
            Ok(array(i, &MICROS)?
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .clone())
        };
        let out: Vec<Option<NaiveDateTime>> = match self.op {
            Op::Diff => {
                let (a, b) = (times(1)?, times(2)?);
                let values: Int64Array = (0..rows)
                    .map(|r| {
                        if a.is_null(r) || b.is_null(r) {
                            return None;
                        }
                        diff(naive(a.value(r))?, naive(b.value(r))?, unit)
                    })
                    .collect();
                return Ok(ColumnarValue::Array(Arc::new(values)));
            }
            Op::Add => {
                let n = array(1, &DataType::Int64)?;
                let n = n.as_primitive::<arrow::datatypes::Int64Type>();
                let t = times(2)?;
                (0..rows)
                    .map(|r| {
                        if n.is_null(r) || t.is_null(r) {
                            return None;
                        }
                        add(naive(t.value(r))?, unit, n.value(r))
                    })
                    .collect()
            }
            Op::Floor | Op::Ceil => {
                let t = times(1)?;
                let f = if self.op == Op::Floor { floor } else { ceil };
                (0..rows)
                    .map(|r| {
                        (!t.is_null(r))
                            .then(|| f(naive(t.value(r))?, unit))
                            .flatten()
                    })
                    .collect()
            }
        };
        let date_in = args
            .arg_fields
            .last()
            .is_some_and(|f| is_date(f.data_type()));
        let result: ArrayRef = if date_in && unit.at_least_a_day() {
            Arc::new(
                out.into_iter()
                    .map(|t| t.and_then(days))
                    .collect::<Date32Array>(),
            )
        } else {
            Arc::new(
                out.into_iter()
                    .map(|t| t.map(|t| t.and_utc().timestamp_micros()))
                    .collect::<TimestampMicrosecondArray>(),
            )
        };
        Ok(ColumnarValue::Array(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn floor_and_ceil_follow_calcite() {
        let t = at("2024-05-15 13:47:09");
        let cases = [
            (Unit::Second, "2024-05-15 13:47:09", "2024-05-15 13:47:09"),
            (Unit::Minute, "2024-05-15 13:47:00", "2024-05-15 13:48:00"),
            (Unit::Hour, "2024-05-15 13:00:00", "2024-05-15 14:00:00"),
            (Unit::Day, "2024-05-15 00:00:00", "2024-05-16 00:00:00"),
            // 2024-05-15 is a Wednesday; Calcite's week starts on the Sunday before.
            (Unit::Week, "2024-05-12 00:00:00", "2024-05-19 00:00:00"),
            (Unit::Month, "2024-05-01 00:00:00", "2024-06-01 00:00:00"),
            (Unit::Quarter, "2024-04-01 00:00:00", "2024-07-01 00:00:00"),
            (Unit::Year, "2024-01-01 00:00:00", "2025-01-01 00:00:00"),
        ];
        for (unit, f, c) in cases {
            assert_eq!(floor(t, unit), Some(at(f)), "floor {unit:?}");
            assert_eq!(ceil(t, unit), Some(at(c)), "ceil {unit:?}");
        }
        assert_eq!(
            ceil(at("2024-05-01 00:00:00"), Unit::Month),
            Some(at("2024-05-01 00:00:00"))
        );
    }

    #[test]
    fn add_and_diff_follow_calcite() {
        let jan31 = at("2024-01-31 10:00:00");
        assert_eq!(add(jan31, Unit::Month, 1), Some(at("2024-02-29 10:00:00")));
        assert_eq!(
            add(jan31, Unit::Quarter, -1),
            Some(at("2023-10-31 10:00:00"))
        );
        assert_eq!(add(jan31, Unit::Week, 2), Some(at("2024-02-14 10:00:00")));
        assert_eq!(add(jan31, Unit::Hour, -11), Some(at("2024-01-30 23:00:00")));
        let cases = [
            (Unit::Month, "2024-02-29 09:59:59", 0),
            (Unit::Month, "2024-02-29 10:00:00", 0),
            (Unit::Month, "2024-03-31 10:00:00", 2),
            (Unit::Year, "2025-01-31 09:00:00", 0),
            (Unit::Year, "2025-01-31 10:00:00", 1),
            (Unit::Day, "2024-01-30 10:00:01", 0),
            (Unit::Day, "2024-01-29 10:00:00", -2),
            (Unit::Hour, "2024-01-31 12:30:00", 2),
        ];
        for (unit, b, n) in cases {
            assert_eq!(diff(jan31, at(b), unit), Some(n), "{unit:?} to {b}");
        }
        assert_eq!(Unit::parse("sql_tsi_quarter"), Some(Unit::Quarter));
        assert_eq!(Unit::parse("fortnight"), None);
    }
}
