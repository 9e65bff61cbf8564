//! AsterixDB prints its responses by hand, not through a JSON library, and clients and its own test
//! harness compare the text: `{` + fields joined by `,\n` + `\n}\n`, each field one tab in, `": "`
//! after every name, records compact or re-indented with tabs. This module is that printer.

use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use serde_json::Value;

use super::Profile;
use super::errors::AsxError;

/// One response: its fields in wire order, each already printed.
#[derive(Default)]
pub struct Envelope {
    fields: Vec<String>,
}

impl Envelope {
    /// A scalar or compact field: `\t"name": value`.
    pub fn field(&mut self, name: &str, value: &Value) -> &mut Self {
        self.fields.push(format!("\t{}: {}", quote(name), value));
        self
    }

    /// A string field.
    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.field(name, &Value::String(value.to_string()))
    }

    /// A field printed exactly as given (already indented after its name).
    pub fn raw(&mut self, text: String) -> &mut Self {
        self.fields.push(text);
        self
    }

    /// `plans`, which AsterixDB prints without a space after the colon.
    pub fn plans(&mut self, plans: &Value) -> &mut Self {
        self.raw(format!("\t\"plans\":{plans}"))
    }

    /// `errors`: one coded message, `code` always 1.
    pub fn errors(&mut self, error: &AsxError) -> &mut Self {
        self.raw(format!(
            "\t\"errors\": [{{ \n\t\t\"code\": 1,\t\t\"msg\": {}\t}} \n\t]",
            quote(&error.message)
        ))
    }

    /// `metrics`: name → value lines, two tabs in.
    pub fn metrics(&mut self, metrics: &[(&str, Value)]) -> &mut Self {
        let lines: Vec<String> = metrics
            .iter()
            .map(|(k, v)| format!("\t\t{}: {}", quote(k), v))
            .collect();
        self.raw(format!("\t\"metrics\": {{\n{}\n\t}}", lines.join(",\n")))
    }

    /// The text of the fields so far, without the braces (for a response streamed in parts).
    pub fn joined(&self) -> String {
        self.fields.join(",\n")
    }

    /// The whole response: `{\n` + fields + `\n}\n`.
    pub fn finish(&self) -> String {
        format!("{{\n{}\n}}\n", self.joined())
    }
}

/// A JSON string literal.
pub fn quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// The opening of the `results` field; records follow joined by `,`.
pub const RESULTS_OPEN: &str = "\t\"results\": [ ";
/// The close of the `results` field, before the next field's `,\n`.
pub const RESULTS_CLOSE: &str = " ]\n\t";

/// How records are printed inside `results`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordStyle {
    /// Clean JSON, compact: `{"i":1,"i2":1}`.
    Compact,
    /// `pretty=true`: Jackson's pretty printer with tab indentation, `" : "` between name and value.
    Pretty,
    /// ADM text with spaces, `{ "v": 1 }` (also the docs profile's bare result array).
    Spaced,
}

/// Prints one record in a style.
pub fn record(value: &Value, style: RecordStyle) -> String {
    let mut out = String::new();
    match style {
        RecordStyle::Compact => compact(value, &mut out),
        RecordStyle::Pretty => pretty(value, 0, &mut out),
        RecordStyle::Spaced => spaced(value, &mut out),
    }
    out
}

/// Jackson `DefaultPrettyPrinter` with AsterixDB's object indenter (`\n` + tabs × (depth + 1)) and
/// its default inline arrays (`[ 1, 2 ]`).
fn pretty(value: &Value, depth: usize, out: &mut String) {
    let indent = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&"\t".repeat(level + 1));
    };
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{ }"),
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&quote(k));
                out.push_str(" : ");
                pretty(v, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pretty(v, depth + 1, out);
            }
            out.push_str(" ]");
        }
        scalar => out.push_str(&scalar_text(scalar)),
    }
}

/// Clean JSON without spaces, numbers as [`scalar_text`] prints them.
fn compact(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(k));
                out.push(':');
                compact(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                compact(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar_text(scalar)),
    }
}

/// A scalar as AsterixDB prints it: doubles in Java's `Double.toString` notation, everything
/// else as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| value.to_string(), java_double),
        other => other.to_string(),
    }
}

/// Java's `Double.toString`, which AsterixDB's printers use: plain decimals with at least one
/// fraction digit for magnitudes in [1e-3, 1e7) and zero, otherwise one digit, a fraction and
/// `E` with the exponent (`1.6777216E7`, `1.0E-5`); the digits are the shortest that read back
/// as the same double.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{v}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

fn spaced(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{  }"),
        Value::Object(map) => {
            out.push_str("{ ");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k));
                out.push_str(": ");
                spaced(v, out);
            }
            out.push_str(" }");
        }
        Value::Array(items) if items.is_empty() => out.push_str("[  ]"),
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                spaced(v, out);
            }
            out.push_str(" ]");
        }
        scalar => out.push_str(&scalar_text(scalar)),
    }
}

/// ADM text of a value whose Arrow type is known: as [`RecordStyle::Spaced`], with temporal
/// values in ADM's constructors (`datetime("2010-03-11T08:37:00.000")`, `date("…")`, `time("…")`).
pub fn adm(value: &Value, data_type: &DataType) -> String {
    let mut out = String::new();
    adm_into(value, data_type, &mut out);
    out
}

fn adm_into(value: &Value, data_type: &DataType, out: &mut String) {
    match (value, data_type) {
        (Value::String(text), DataType::Timestamp(..)) => {
            let millis = if text.contains('.') { "" } else { ".000" };
            out.push_str(&format!("datetime({})", quote(&format!("{text}{millis}"))));
        }
        (Value::String(text), DataType::Date32 | DataType::Date64) => {
            out.push_str(&format!("date({})", quote(text)));
        }
        (Value::String(text), DataType::Time32(_) | DataType::Time64(_)) => {
            out.push_str(&format!("time({})", quote(text)));
        }
        (Value::Object(map), DataType::Struct(fields)) if !map.is_empty() => {
            out.push_str("{ ");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k));
                out.push_str(": ");
                match fields.iter().find(|f| f.name() == k) {
                    Some(field) => adm_into(v, field.data_type(), out),
                    None => spaced(v, out),
                }
            }
            out.push_str(" }");
        }
        (
            Value::Array(items),
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _),
        ) if !items.is_empty() => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                adm_into(v, item.data_type(), out);
            }
            out.push_str(" ]");
        }
        (other, _) => spaced(other, out),
    }
}

/// A duration the way the profile prints it: AsterixDB's `Duration.formatNanos` (Go's
/// `time.Duration` text: `20.263371ms`, `1.5s`, `1m2.5s`, `0ns`) in 0.9.9 and master, and the
/// vendor page's fixed six decimals of milliseconds (`12.270570ms`) in the docs profile.
pub fn duration(d: Duration, profile: Profile) -> String {
    match profile {
        Profile::Docs => format!("{:.6}ms", d.as_nanos() as f64 / 1e6),
        Profile::V099 | Profile::Master => format_nanos(d.as_nanos()),
    }
}

fn format_nanos(nanos: u128) -> String {
    const US: u128 = 1_000;
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000_000_000;
    if nanos < US {
        return format!("{nanos}ns");
    }
    if nanos < MS {
        return format!("{}µs", fraction(nanos, US));
    }
    if nanos < S {
        return format!("{}ms", fraction(nanos, MS));
    }
    let hours = nanos / (3600 * S);
    let minutes = nanos / (60 * S) % 60;
    let seconds = fraction(nanos % (60 * S), S);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with the remainder as decimals, trailing zeros dropped.
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(java_double(16_777_216.0), "1.6777216E7");
        assert_eq!(java_double(9_999_999.0), "9999999.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.000_5), "5.0E-4");
        assert_eq!(java_double(-2.056e-29), "-2.056E-29");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(java_double(3.0), "3.0");
        assert_eq!(java_double(-80.2), "-80.2");
        assert_eq!(
            record(
                &json!({"a": 1, "b": 1e10, "c": [0.25]}),
                RecordStyle::Compact
            ),
            r#"{"a":1,"b":1.0E10,"c":[0.25]}"#
        );
    }

    #[test]
    fn durations_print_as_asterixdb_prints_them() {
        let p = Profile::Master;
        assert_eq!(duration(Duration::from_nanos(20_263_371), p), "20.263371ms");
        assert_eq!(duration(Duration::from_nanos(5_100_000), p), "5.1ms");
        assert_eq!(duration(Duration::from_millis(1500), p), "1.5s");
        assert_eq!(duration(Duration::from_millis(62_500), p), "1m2.5s");
        assert_eq!(duration(Duration::ZERO, p), "0ns");
        assert_eq!(duration(Duration::from_nanos(1_500), p), "1.5µs");
        assert_eq!(
            duration(Duration::from_nanos(12_270_570), Profile::Docs),
            "12.270570ms"
        );
    }

    #[test]
    fn pretty_records_indent_with_tabs_and_space_colon_space() {
        let r = record(&json!({"$1": 1}), RecordStyle::Pretty);
        assert_eq!(r, "{\n\t\t\"$1\" : 1\n\t}");
        // The vendor page's resultSize for this record.
        assert_eq!(r.chars().count(), 15);
        let nested = record(&json!({"a": {"b": [1, 2]}, "c": {}}), RecordStyle::Pretty);
        assert_eq!(
            nested,
            "{\n\t\t\"a\" : {\n\t\t\t\"b\" : [ 1, 2 ]\n\t\t},\n\t\t\"c\" : { }\n\t}"
        );
    }

    #[test]
    fn compact_and_spaced_records() {
        let v = json!({"i": 1, "l": ["foo", "bar"]});
        assert_eq!(
            record(&v, RecordStyle::Compact),
            r#"{"i":1,"l":["foo","bar"]}"#
        );
        assert_eq!(
            record(&v, RecordStyle::Spaced),
            r#"{ "i": 1, "l": [ "foo", "bar" ] }"#
        );
    }

    #[test]
    fn adm_prints_temporal_constructors_by_type() {
        use datafusion::arrow::datatypes::{Field, Fields, TimeUnit};
        let ty = DataType::Struct(Fields::from(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "since",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "jobs",
                DataType::List(std::sync::Arc::new(Field::new(
                    "item",
                    DataType::Struct(Fields::from(vec![Field::new(
                        "start",
                        DataType::Date32,
                        false,
                    )])),
                    true,
                ))),
                true,
            ),
        ]));
        let v = json!({"id": 1, "since": "2010-03-11T08:37:00", "jobs": [{"start": "2004-06-05"}]});
        assert_eq!(
            adm(&v, &ty),
            r#"{ "id": 1, "since": datetime("2010-03-11T08:37:00.000"), "jobs": [ { "start": date("2004-06-05") } ] }"#
        );
    }

    #[test]
    fn errors_and_metrics_use_the_tab_layout() {
        let mut e = Envelope::default();
        e.errors(&AsxError::no_statement())
            .string("status", "fatal")
            .metrics(&[("elapsedTime", json!("1ms")), ("errorCount", json!(1))]);
        assert_eq!(
            e.finish(),
            "{\n\t\"errors\": [{ \n\t\t\"code\": 1,\t\t\"msg\": \"ASX0040: No statement provided\"\t} \n\t],\n\t\"status\": \"fatal\",\n\t\"metrics\": {\n\t\t\"elapsedTime\": \"1ms\",\n\t\t\"errorCount\": 1\n\t}\n}\n"
        );
        let parsed: Value = serde_json::from_str(&e.finish()).unwrap();
        assert_eq!(parsed["errors"][0]["code"], 1);
    }
}
