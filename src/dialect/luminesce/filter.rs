//! The ODATA-style `filter` of the fetch endpoints (Finbourne.Filtering), translated into an SQL
//! expression on the sqlparser AST.
//!
//! Grammar: `or` / `and` / `not`, parentheses, comparisons `eq ne gt ge lt le`, the functions
//! `startswith endswith contains (field, value)`, and the literals `'text'` (`''` inside for a
//! quote), numbers, `true`, `false`, `null`, and date-times (`2024-01-02`, `2024-01-02T03:04:05Z`,
//! or `datetime'…'`). Field names match the result's columns ignoring case (`[Field Name]` for one
//! with spaces). A bad filter is an error that names the position it failed at.

use sqlparser::ast::{BinaryOperator, Expr, Ident, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;

/// Why a filter could not be read: what was expected, and where (1-based character position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter at position {position}: {message}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

/// Translates `filter` into an SQL boolean expression over `columns`.
/// The SQL condition for a fetch's `filter` parameter over a result with `schema`; a filter that
/// does not translate is the client's mistake, reported with where it went wrong.
pub fn to_sql(
    filter: &str,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<String, super::errors::LuminesceError> {
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let expr = translate(filter, &columns).map_err(|e| {
        super::errors::LuminesceError::bad_parameter("filter", format!("{e} (filter: {filter})"))
            .with_detail("position", e.position.to_string())
    })?;
    Ok(expr.to_string())
}

/// How deep parentheses (and function calls) may nest in a filter.
pub const MAX_FILTER_DEPTH: usize = 16;
/// The longest filter accepted, in characters.
pub const MAX_FILTER_CHARS: usize = 64 * 1024;

pub fn translate(filter: &str, columns: &[String]) -> Result<Expr, FilterError> {
    let length = filter.chars().count();
    if length > MAX_FILTER_CHARS {
        return Err(FilterError {
            position: MAX_FILTER_CHARS + 1,
            message: format!(
                "the filter is {length} characters long; at most {MAX_FILTER_CHARS} are accepted"
            ),
        });
    }
    let tokens = tokenize(filter)?;
    let mut parser = FilterParser {
        tokens,
        at: 0,
        columns,
        end: length + 1,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) => Err(parser.error_at(t.position, format!("unexpected {}", t.kind))),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LParen,
    RParen,
    Comma,
    Text(String),
    Number(String),
    Word(String),
    /// `[Field Name]`
    Bracketed(String),
    /// `datetime'…'` or a bare ISO date/date-time.
    DateTime(String),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::LParen => f.write_str("'('"),
            Kind::RParen => f.write_str("')'"),
            Kind::Comma => f.write_str("','"),
            Kind::Text(s) => write!(f, "the text '{s}'"),
            Kind::Number(n) => write!(f, "the number {n}"),
            Kind::Word(w) => write!(f, "'{w}'"),
            Kind::Bracketed(w) => write!(f, "'[{w}]'"),
            Kind::DateTime(d) => write!(f, "the date-time {d}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    kind: Kind,
    position: usize,
}

fn tokenize(filter: &str) -> Result<Vec<Tok>, FilterError> {
    let chars: Vec<char> = filter.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: &str| FilterError {
        position: position + 1,
        message: message.to_string(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Kind::LParen
            }
            ')' => {
                i += 1;
                Kind::RParen
            }
            ',' => {
                i += 1;
                Kind::Comma
            }
            '\'' => {
                let (text, next) =
                    quoted(&chars, i).ok_or_else(|| err(start, "a text literal is not closed"))?;
                i = next;
                Kind::Text(text)
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or_else(|| err(start, "a [field name] is not closed"))?;
                let name: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                Kind::Bracketed(name)
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric()
                        || matches!(chars[j], '.' | ':' | '-' | '+'))
                {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                i = j;
                if looks_like_date(&text) {
                    Kind::DateTime(text)
                } else if text.parse::<f64>().is_ok() {
                    Kind::Number(text)
                } else {
                    return Err(err(
                        start,
                        &format!("'{text}' is neither a number nor a date-time"),
                    ));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                if word.eq_ignore_ascii_case("datetime") && chars.get(j) == Some(&'\'') {
                    let (text, next) = quoted(&chars, j)
                        .ok_or_else(|| err(start, "a datetime'…' literal is not closed"))?;
                    i = next;
                    Kind::DateTime(text)
                } else {
                    i = j;
                    Kind::Word(word)
                }
            }
            other => return Err(err(start, &format!("unexpected character '{other}'"))),
        };
        tokens.push(Tok {
            kind,
            position: start + 1,
        });
    }
    Ok(tokens)
}

/// Reads a `'…'` literal starting at `open`; `''` is a quote. Answers the text and the index after it.
fn quoted(chars: &[char], open: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        if chars[i] == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                text.push('\'');
                i += 2;
                continue;
            }
            return Some((text, i + 1));
        }
        text.push(chars[i]);
        i += 1;
    }
    None
}

fn looks_like_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[8..10].iter().all(u8::is_ascii_digit)
}

struct FilterParser<'a> {
    tokens: Vec<Tok>,
    at: usize,
    columns: &'a [String],
    /// The position just past the end, for "ended too soon".
    end: usize,
    /// Parentheses open around the token being read.
    depth: usize,
}

impl FilterParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self, expected: &str) -> Result<Tok, FilterError> {
        match self.tokens.get(self.at) {
            Some(t) => {
                self.at += 1;
                Ok(t.clone())
            }
            None => Err(self.error_at(
                self.end,
                format!("expected {expected}, but the filter ended"),
            )),
        }
    }

    fn error_at(&self, position: usize, message: String) -> FilterError {
        FilterError { position, message }
    }

    fn keyword(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(word));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = binary(left, BinaryOperator::Or, right);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            let right = self.not()?;
            left = binary(left, BinaryOperator::And, right);
        }
        Ok(left)
    }

    /// `not not x` is `x` (also for NULL), so a run of `not`s is read in a loop and only its
    /// parity kept: no input nests the translation deeper than its parentheses.
    fn not(&mut self) -> Result<Expr, FilterError> {
        let mut negated = false;
        while self.keyword("not") {
            negated = !negated;
        }
        let inner = self.comparison()?;
        Ok(if negated {
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: Box::new(nested(inner)),
            }
        } else {
            inner
        })
    }

    /// Enters one level of parentheses at `position`, refusing to go past the limit.
    fn open(&mut self, position: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error_at(
                position,
                format!("parentheses nest more than {MAX_FILTER_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        let left = self.operand()?;
        let Some(Tok {
            kind: Kind::Word(word),
            position,
        }) = self.peek().cloned()
        else {
            return Ok(left);
        };
        let op = match word.to_ascii_lowercase().as_str() {
            "eq" => BinaryOperator::Eq,
            "ne" => BinaryOperator::NotEq,
            "gt" => BinaryOperator::Gt,
            "ge" => BinaryOperator::GtEq,
            "lt" => BinaryOperator::Lt,
            "le" => BinaryOperator::LtEq,
            "and" | "or" => return Ok(left),
            _ => {
                return Err(self.error_at(
                    position,
                    format!("expected an operator (eq, ne, gt, ge, lt, le), found '{word}'"),
                ));
            }
        };
        self.at += 1;
        let right = self.operand()?;
        let is_null = |e: &Expr| matches!(e, Expr::Value(v) if v.value == Value::Null);
        Ok(match (op, is_null(&left), is_null(&right)) {
            (BinaryOperator::Eq, _, true) => Expr::IsNull(Box::new(left)),
            (BinaryOperator::NotEq, _, true) => Expr::IsNotNull(Box::new(left)),
            (BinaryOperator::Eq, true, _) => Expr::IsNull(Box::new(right)),
            (BinaryOperator::NotEq, true, _) => Expr::IsNotNull(Box::new(right)),
            (op, _, _) => binary(left, op, right),
        })
    }

    fn operand(&mut self) -> Result<Expr, FilterError> {
        let t = self.next("a field, a value or '('")?;
        match t.kind {
            Kind::LParen => {
                self.open(t.position)?;
                let inner = self.or()?;
                self.expect(Kind::RParen, "')'")?;
                self.depth -= 1;
                Ok(nested(inner))
            }
            Kind::Text(s) => Ok(value(Value::SingleQuotedString(s))),
            Kind::Number(n) => Ok(value(Value::Number(n, false))),
            Kind::DateTime(d) => render(&format!(
                "CAST({} AS TIMESTAMP)",
                Value::SingleQuotedString(d.trim_end_matches(['Z', 'z']).to_string())
            ))
            .map_err(|m| self.error_at(t.position, m)),
            Kind::Bracketed(name) => self.field(&name, t.position),
            Kind::Word(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(value(Value::Boolean(true))),
                "false" => Ok(value(Value::Boolean(false))),
                "null" => Ok(value(Value::Null)),
                "startswith" | "endswith" | "contains" => self.function(&word, t.position),
                _ => self.field(&word, t.position),
            },
            other => Err(self.error_at(
                t.position,
                format!("expected a field, a value or '(', found {other}"),
            )),
        }
    }

    fn function(&mut self, name: &str, position: usize) -> Result<Expr, FilterError> {
        let sql_name = match name.to_ascii_lowercase().as_str() {
            "startswith" => "starts_with",
            "endswith" => "ends_with",
            _ => "contains",
        };
        self.expect(Kind::LParen, &format!("'(' after {name}"))?;
        self.open(position)?;
        let subject = self.operand()?;
        self.expect(Kind::Comma, "','")?;
        let needle = self.operand()?;
        self.expect(Kind::RParen, "')'")?;
        self.depth -= 1;
        render(&format!("{sql_name}({subject}, {needle})")).map_err(|m| self.error_at(position, m))
    }

    fn field(&self, name: &str, position: usize) -> Result<Expr, FilterError> {
        let canonical = self
            .columns
            .iter()
            .find(|c| *c == name)
            .or_else(|| self.columns.iter().find(|c| c.eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                self.error_at(
                    position,
                    format!(
                        "'{name}' is not a column of the result (columns: {})",
                        self.columns.join(", ")
                    ),
                )
            })?;
        Ok(Expr::Identifier(Ident::with_quote('"', canonical)))
    }

    fn expect(&mut self, kind: Kind, what: &str) -> Result<(), FilterError> {
        let t = self.next(what)?;
        if t.kind == kind {
            Ok(())
        } else {
            Err(self.error_at(t.position, format!("expected {what}, found {}", t.kind)))
        }
    }
}

fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

/// `(e)`, unless `e` already is.
fn nested(e: Expr) -> Expr {
    match e {
        Expr::Nested(_) => e,
        e => Expr::Nested(Box::new(e)),
    }
}

fn value(v: Value) -> Expr {
    Expr::Value(v.into())
}

/// Parses an expression made only of rendered AST pieces (quoted names, literals).
fn render(text: &str) -> Result<Expr, String> {
    crate::sql::guard::parse_expr(&GenericDialect {}, text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<String> {
        ["Int", "Str", "When", "Field Name"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn sql(filter: &str) -> String {
        translate(filter, &columns()).unwrap().to_string()
    }

    #[test]
    fn comparisons_and_logic_become_sql() {
        assert_eq!(
            sql("int gt 5 and (Str eq 'it''s' or not [Field Name] ne null)"),
            r#""Int" > 5 AND ("Str" = 'it''s' OR NOT ("Field Name" IS NOT NULL))"#
        );
        assert_eq!(sql("Str eq null"), r#""Str" IS NULL"#);
        assert_eq!(sql("Int le -3.5"), r#""Int" <= -3.5"#);
    }

    #[test]
    fn functions_and_dates() {
        assert_eq!(
            sql("startswith(Str, 'ab') or contains(Str,'x')"),
            r#"starts_with("Str", 'ab') OR contains("Str", 'x')"#
        );
        assert_eq!(
            sql("When ge 2024-01-02T03:04:05Z and When lt datetime'2024-02-01'"),
            r#""When" >= CAST('2024-01-02T03:04:05' AS TIMESTAMP) AND "When" < CAST('2024-02-01' AS TIMESTAMP)"#
        );
    }

    #[test]
    fn runs_of_not_keep_their_parity_and_parentheses_their_limit() {
        let not = |n: usize| format!("{}Int eq 1", "not ".repeat(n));
        assert_eq!(sql(&not(3000)), r#""Int" = 1"#);
        assert_eq!(sql(&not(3001)), r#"NOT ("Int" = 1)"#);
        assert_eq!(sql("((((Int eq 1))))"), r#"("Int" = 1)"#);
        let depth = |n: usize| format!("{}Int eq 1{}", "(".repeat(n), ")".repeat(n));
        assert!(translate(&depth(MAX_FILTER_DEPTH), &columns()).is_ok());
        let e = translate(&depth(MAX_FILTER_DEPTH * 10), &columns()).unwrap_err();
        assert_eq!(e.position, MAX_FILTER_DEPTH + 1);
        assert!(e.message.contains("nest"), "{e}");
        let e = translate(&"x".repeat(MAX_FILTER_CHARS + 1), &columns()).unwrap_err();
        assert!(e.message.contains("characters long"), "{e}");
    }

    #[test]
    fn errors_say_where() {
        let e = translate("Int gt", &columns()).unwrap_err();
        assert_eq!(e.position, 7);
        let e = translate("Int eqq 5", &columns()).unwrap_err();
        assert_eq!(e.position, 5);
        assert!(e.message.contains("eqq"), "{e}");
        let e = translate("Nope eq 1", &columns()).unwrap_err();
        assert_eq!(e.position, 1);
        let e = translate("Str eq 'open", &columns()).unwrap_err();
        assert_eq!(e.position, 8);
        let e = translate("(Int eq 1", &columns()).unwrap_err();
        assert!(e.to_string().contains("position 10"), "{e}");
        let e = translate("Int eq 1 2", &columns()).unwrap_err();
        assert_eq!(e.position, 10);
    }
}
