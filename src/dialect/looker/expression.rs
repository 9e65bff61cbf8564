//! Looker's expression language, as custom filters (`filter_expression`) and table calculations
//! use it: `${view.field}` references, `"text"` and number literals, `yes`/`no`/`null`,
//! `AND`/`OR`/`NOT`, comparisons, arithmetic and a set of Looker's functions, compiled straight
//! onto the sqlparser AST (the client's text is never SQL). A filter over a measure filters groups
//! (`HAVING`), else rows (`WHERE`).

use sqlparser::ast::{
    BinaryOperator, Expr, OrderByExpr, UnaryOperator, Value, WindowFrame, WindowFrameBound,
    WindowFrameUnits, WindowSpec, WindowType,
};

use super::filter::string_literal;
use super::semantic::Explore;
use crate::sql::call;

/// How deeply parentheses, calls and `NOT`s may nest: client input, so recursion is bounded.
const MAX_DEPTH: usize = 64;

/// A compiled expression and whether it reads a measure.
#[derive(Debug)]
pub struct Compiled {
    pub expr: Expr,
    pub over_measures: bool,
}

/// Compiles a filter expression against `explore`'s fields.
pub fn compile(text: &str, explore: &Explore) -> Result<Compiled, String> {
    compile_with(text, None, &|name| {
        explore
            .field(name)
            .map(|f| (Expr::Nested(Box::new(f.expr.clone())), f.is_measure()))
            .ok_or_else(|| format!("field {name:?} does not exist in explore {}", explore.name))
    })
}

/// What a `${name}` reference stands for: its expression and whether it is a measure.
pub type Resolve<'a> = dyn Fn(&str) -> Result<(Expr, bool), String> + 'a;

/// Compiles `text`, each `${name}` resolved by `resolve`. With `rows` (the result's order), the
/// functions over the result's rows are allowed too (table calculations): `offset`,
/// `running_total`, and the column's `sum`, `mean`, `min`, `max`, `count`.
pub fn compile_with(
    text: &str,
    rows: Option<&[OrderByExpr]>,
    resolve: &Resolve<'_>,
) -> Result<Compiled, String> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
        resolve,
        rows,
        over_measures: false,
    };
    let expr = parser.or()?;
    if let Some(extra) = parser.tokens.get(parser.at) {
        return Err(format!("unexpected {extra:?} in filter expression"));
    }
    Ok(Compiled {
        expr,
        over_measures: parser.over_measures,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Field(String),
    Number(String),
    Text(String),
    Word(String),
    Op(&'static str),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '$' && chars.get(i + 1) == Some(&'{') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("a field reference `${` is not closed")?;
            tokens.push(Token::Field(
                chars[i + 2..i + end]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string(),
            ));
            i += end + 1;
        } else if c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a string is not closed".into()),
                    Some('\\') => {
                        value.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Text(value));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            if number.parse::<f64>().is_err() {
                return Err(format!("{number} is not a number"));
            }
            tokens.push(Token::Number(number));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(
                chars[start..i]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase(),
            ));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["<=", ">=", "!=", "<>"]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| {
                    ["=", "<", ">", "+", "-", "*", "/", "(", ")", ","]
                        .into_iter()
                        .find(|o| o.starts_with(c))
                })
                .ok_or_else(|| format!("unexpected {c:?} in filter expression"))?;
            tokens.push(Token::Op(op));
            i += op.len();
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    resolve: &'a Resolve<'a>,
    rows: Option<&'a [OrderByExpr]>,
    over_measures: bool,
}

fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek() == Some(&Token::Word(word.into())) {
            self.at += 1;
            return true;
        }
        false
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(o)) if *o == op) {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(format!("expected `{op}` in filter expression"))
        }
    }

    /// Enters one level of nesting, refusing input nested deeper than `MAX_DEPTH`.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err("the filter expression is nested too deeply".into());
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = binary(left, BinaryOperator::Or, self.and()?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.eat_word("and") {
            left = binary(left, BinaryOperator::And, self.not()?);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_word("not") {
            return self.nested(|p| {
                Ok(Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: Box::new(Expr::Nested(Box::new(p.not()?))),
                })
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.additive()?;
        let op = match self.peek() {
            Some(Token::Op("=")) => BinaryOperator::Eq,
            Some(Token::Op("!=" | "<>")) => BinaryOperator::NotEq,
            Some(Token::Op("<")) => BinaryOperator::Lt,
            Some(Token::Op(">")) => BinaryOperator::Gt,
            Some(Token::Op("<=")) => BinaryOperator::LtEq,
            Some(Token::Op(">=")) => BinaryOperator::GtEq,
            _ => return Ok(left),
        };
        self.at += 1;
        Ok(binary(left, op, self.additive()?))
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat_op("+") {
                BinaryOperator::Plus
            } else if self.eat_op("-") {
                BinaryOperator::Minus
            } else {
                return Ok(left);
            };
            left = binary(left, op, self.multiplicative()?);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            if self.eat_op("*") {
                left = binary(left, BinaryOperator::Multiply, self.unary()?);
            } else if self.eat_op("/") {
                // Looker divides as numbers, never as integers.
                let numerator = Expr::Cast {
                    kind: sqlparser::ast::CastKind::Cast,
                    expr: Box::new(left),
                    data_type: sqlparser::ast::DataType::Double(
                        sqlparser::ast::ExactNumberInfo::None,
                    ),
                    array: false,
                    format: None,
                };
                left = binary(numerator, BinaryOperator::Divide, self.unary()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_op("-") {
            return self.nested(|p| {
                Ok(Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr: Box::new(p.unary()?),
                })
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self
            .peek()
            .cloned()
            .ok_or("the filter expression ends too early")?;
        self.at += 1;
        match token {
            Token::Number(n) => Ok(Expr::value(Value::Number(n, false))),
            Token::Text(t) => Ok(string_literal(&t)),
            Token::Field(name) => {
                let (expr, measure) = (self.resolve)(&name)?;
                self.over_measures |= measure;
                Ok(expr)
            }
            Token::Op("(") => self.nested(|p| {
                let inner = p.or()?;
                p.expect_op(")")?;
                Ok(Expr::Nested(Box::new(inner)))
            }),
            Token::Word(w) if w == "yes" || w == "true" => Ok(Expr::value(Value::Boolean(true))),
            Token::Word(w) if w == "no" || w == "false" => Ok(Expr::value(Value::Boolean(false))),
            Token::Word(w) if w == "null" => Ok(Expr::value(Value::Null)),
            Token::Word(name) if self.eat_op("(") => self.nested(|p| {
                let mut args = Vec::new();
                if !p.eat_op(")") {
                    loop {
                        args.push(p.or()?);
                        if p.eat_op(")") {
                            break;
                        }
                        p.expect_op(",")?;
                    }
                }
                match p.rows {
                    Some(order) if ROW_FUNCTIONS.contains(&name.as_str()) => {
                        row_function(&name, args, order)
                    }
                    _ => function(&name, args),
                }
            }),
            other => Err(format!("unexpected {other:?} in filter expression")),
        }
    }
}

/// The functions over the result's rows (table calculations only).
const ROW_FUNCTIONS: [&str; 7] = [
    "offset",
    "running_total",
    "sum",
    "mean",
    "min",
    "max",
    "count",
];

/// A window function over the result: ordered as the result for `offset` and `running_total`,
/// over the whole column for the aggregates.
fn row_function(name: &str, mut args: Vec<Expr>, order: &[OrderByExpr]) -> Result<Expr, String> {
    let window = |order_by: Vec<OrderByExpr>, window_frame: Option<WindowFrame>| {
        Some(WindowType::WindowSpec(WindowSpec {
            window_name: None,
            partition_by: Vec::new(),
            order_by,
            window_frame,
        }))
    };
    let over = |mut e: Expr, spec| {
        if let Expr::Function(f) = &mut e {
            f.over = spec;
        }
        e
    };
    match (name, args.len()) {
        ("offset", 2) => {
            let rows = match args.pop() {
                Some(Expr::Value(v)) => match &v.value {
                    Value::Number(n, _) => n.parse::<i64>().ok(),
                    _ => None,
                },
                Some(Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr,
                }) => match *expr {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => n.parse::<i64>().ok().map(|n| -n),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }
            .ok_or("offset takes a whole number of rows")?;
            let value = args.pop().ok_or("offset takes 2 arguments")?;
            if rows == 0 {
                return Ok(value);
            }
            let (function, distance) = if rows > 0 {
                ("lead", rows)
            } else {
                ("lag", -rows)
            };
            let distance = Expr::value(Value::Number(distance.to_string(), false));
            Ok(over(
                call(function, vec![value, distance]),
                window(order.to_vec(), None),
            ))
        }
        ("running_total", 1) => Ok(over(
            call("sum", args),
            window(
                order.to_vec(),
                Some(WindowFrame {
                    units: WindowFrameUnits::Rows,
                    start_bound: WindowFrameBound::Preceding(None),
                    end_bound: Some(WindowFrameBound::CurrentRow),
                }),
            ),
        )),
        ("sum" | "min" | "max" | "count", 1) => {
            Ok(over(call(name, args), window(Vec::new(), None)))
        }
        ("mean", 1) => Ok(over(call("avg", args), window(Vec::new(), None))),
        _ => Err(format!(
            "{name} takes {} argument(s)",
            if name == "offset" { 2 } else { 1 }
        )),
    }
}

/// Looker's functions as SQL.
fn function(name: &str, mut args: Vec<Expr>) -> Result<Expr, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{name} takes {n} argument(s), not {}", args.len()))
        }
    };
    Ok(match name {
        "contains" => {
            arity(2)?;
            binary(
                call("strpos", args),
                BinaryOperator::Gt,
                Expr::value(Value::Number("0".into(), false)),
            )
        }
        "starts_with" | "ends_with" => {
            arity(2)?;
            call(name, args)
        }
        "is_null" => {
            arity(1)?;
            Expr::IsNull(Box::new(args.remove(0)))
        }
        "if" => {
            arity(3)?;
            let otherwise = args.pop();
            let then = args.pop();
            let condition = args.pop();
            match (condition, then, otherwise) {
                (Some(condition), Some(then), Some(otherwise)) => Expr::Case {
                    case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    operand: None,
                    conditions: vec![sqlparser::ast::CaseWhen {
                        condition,
                        result: then,
                    }],
                    else_result: Some(Box::new(otherwise)),
                },
                _ => return Err("if takes 3 arguments".into()),
            }
        }
        "upper" | "lower" | "abs" | "floor" | "trim" => {
            arity(1)?;
            call(name, args)
        }
        "length" => {
            arity(1)?;
            call("character_length", args)
        }
        "ceiling" => {
            arity(1)?;
            call("ceil", args)
        }
        "round" if args.len() == 1 || args.len() == 2 => call("round", args),
        "coalesce" | "concat" if !args.is_empty() => call(name, args),
        "now" => {
            arity(0)?;
            call("now", args)
        }
        _ => return Err(format!("unknown function {name} in filter expression")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str, rows: bool) -> Result<String, String> {
        let resolve = |name: &str| -> Result<(Expr, bool), String> {
            match name {
                "users.state" | "orders.count" => Ok((
                    Expr::Identifier(sqlparser::ast::Ident::with_quote('"', name)),
                    name == "orders.count",
                )),
                other => Err(format!("no {other}")),
            }
        };
        let order = [];
        compile_with(text, rows.then_some(&order[..]), &resolve).map(|c| c.expr.to_string())
    }

    #[test]
    fn expressions_compile_onto_the_ast() {
        let cases = [
            (
                r#"${users.state} = "CA" AND NOT ${orders.count} > 5"#,
                r#""users.state" = 'CA' AND NOT ("orders.count" > 5)"#,
            ),
            (
                "${orders.count} / 2 - -1",
                r#"CAST("orders.count" AS DOUBLE) / 2 - -1"#,
            ),
            (
                r#"contains(${users.state}, "a\"b") OR is_null(${users.state})"#,
                r#"strpos("users.state", 'a"b') > 0 OR "users.state" IS NULL"#,
            ),
            (
                "if(${orders.count} >= 1, yes, no)",
                r#"CASE WHEN "orders.count" >= 1 THEN true ELSE false END"#,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(sql(text, false).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        let minus = format!("{}1", "-".repeat(200));
        for text in [
            "${users.nope} = 1",
            "${users.state",
            "\"open",
            "1.2.3",
            "${users.state} = ",
            "frob(1)",
            "offset(${orders.count}, 1)",
            "a ! b",
            deep.as_str(),
            minus.as_str(),
        ] {
            assert!(sql(text, false).is_err(), "{text}");
        }
        assert!(sql("offset(${orders.count}, -1)", true).is_ok());
        assert!(sql("offset(${orders.count}, ${orders.count})", true).is_err());
    }
}
