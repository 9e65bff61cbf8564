//! Limits on the SQL a client may send, enforced at parse time so that no text can overflow a
//! stack or keep a core busy:
//!
//! - the text is at most [`MAX_SQL_BYTES`] long;
//! - the parser's work is budgeted in proportion to the text's length (see [`super::fueled`]), so
//!   sqlparser's backtracking can never take exponential time;
//! - sqlparser's own recursion limit bounds what it nests while parsing;
//! - after parsing, expressions, subqueries and table factors nest at most [`MAX_SQL_DEPTH`] deep
//!   (a chain `1 + 1 + …` parses without recursion into a tree as deep as it is long, which every
//!   later walk over it — rewriting, printing, planning, dropping — recurses through);
//! - parsing, the depth check and dropping a refused tree run on a stack of [`STACK_SIZE`] bytes
//!   ([`on_big_stack`]), whatever thread asked.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, SetExpr, TableFactor, Visit, Visitor};
use sqlparser::dialect::Dialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::TokenWithSpan;

use super::fueled::Fueled;

/// The longest SQL text accepted, in bytes (a statement, or a fragment such as a filter).
pub const MAX_SQL_BYTES: usize = 256 * 1024;

/// How deep expressions, subqueries and table factors may nest in a parsed statement.
pub const MAX_SQL_DEPTH: usize = 1000;

/// Prefix expressions the parser may start, before the per-byte share.
const FUEL_BASE: u64 = 10_000;
/// Prefix expressions the parser may start per byte of text. The densest SQL there is (`1,1,1,…`,
/// `1+1+…`) starts one per two bytes; the budget leaves twice that.
const FUEL_PER_BYTE: u64 = 1;

/// Work that walks a client's tree runs with at least this much stack left…
pub const STACK_RED_ZONE: usize = 16 << 20;
/// …else on a fresh stack of this size (reserved, not committed, until used).
pub const STACK_SIZE: usize = 64 << 20;

/// Runs `f` with at least [`STACK_RED_ZONE`] bytes of stack, switching to a new stack when the
/// current thread has less left.
pub fn on_big_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, f)
}

/// Runs CPU-heavy work on client text (parsing and translating SQL up to [`MAX_SQL_BYTES`], which
/// takes up to a second) without holding up the async runtime it is called on: on a multi-thread
/// runtime the thread's other tasks move to other threads meanwhile, so no number of such requests
/// stops the server answering others.
pub fn cpu_bound<R>(f: impl FnOnce() -> R) -> R {
    blocking(f)
}

/// Runs work that blocks (a CPU-heavy translation, a round trip to a shared job store) without
/// holding up the multi-thread runtime it is called on.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Why a text was not parsed.
#[derive(Debug)]
pub enum Refused {
    /// It does not parse (sqlparser's error).
    Syntax(ParserError),
    /// It is beyond one of the limits; the message names the limit.
    Limit(String),
}

impl Refused {
    /// The message for the client (sqlparser's prefix dropped).
    pub fn message(&self) -> String {
        match self {
            Refused::Syntax(e) => super::syntax_message(&e.to_string()),
            Refused::Limit(m) => m.clone(),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Checks the length of a text before any work is done on it.
pub fn check_length(text: &str) -> Result<(), Refused> {
    if text.len() > MAX_SQL_BYTES {
        return Err(Refused::Limit(format!(
            "the SQL text is {} bytes long; at most {MAX_SQL_BYTES} bytes are accepted",
            text.len()
        )));
    }
    Ok(())
}

/// Parses `text` with `dialect` through `parse` (which tokenizes it, or is handed tokens made from
/// it, and parses what it needs), within every limit of this module.
pub fn parse_with<T: Visit>(
    dialect: &'static dyn Dialect,
    text: &str,
    parse: impl FnOnce(Parser<'_>) -> Result<T, ParserError>,
) -> Result<T, Refused> {
    check_length(text)?;
    budgeted(dialect, text.len(), parse)
}

/// Like [`parse_with`], for a text already split into tokens (a statement of a Luminesce script):
/// the budget follows the tokens' own text.
pub fn parse_tokens<T: Visit>(
    dialect: &'static dyn Dialect,
    tokens: Vec<TokenWithSpan>,
    parse: impl FnOnce(Parser<'_>) -> Result<T, ParserError>,
) -> Result<T, Refused> {
    let bytes: usize = tokens.iter().map(|t| t.token.to_string().len() + 1).sum();
    if bytes > MAX_SQL_BYTES {
        return Err(Refused::Limit(format!(
            "the SQL text is {bytes} bytes long; at most {MAX_SQL_BYTES} bytes are accepted"
        )));
    }
    budgeted(dialect, bytes, |parser| {
        parse(parser.with_tokens_with_locations(tokens))
    })
}

/// Runs a parse on a big stack with a budget for `bytes` of text, then checks the tree's depth.
fn budgeted<T: Visit>(
    dialect: &'static dyn Dialect,
    bytes: usize,
    parse: impl FnOnce(Parser<'_>) -> Result<T, ParserError>,
) -> Result<T, Refused> {
    let fuel = FUEL_BASE + FUEL_PER_BYTE * bytes as u64;
    on_big_stack(|| {
        let fueled = Fueled::new(dialect, fuel);
        let parsed = parse(Parser::new(&fueled));
        if fueled.spent() {
            drop(parsed);
            return Err(Refused::Limit(
                "the SQL is too complex to parse (too much nesting that could be read two ways)"
                    .into(),
            ));
        }
        let parsed = parsed.map_err(|e| match e {
            ParserError::RecursionLimitExceeded => Refused::Limit(format!(
                "the SQL nests deeper than the parser's limit (recursion limit exceeded; at most \
                 {MAX_SQL_DEPTH} levels are accepted once parsed)"
            )),
            e => Refused::Syntax(e),
        })?;
        check_depth(&parsed)?;
        Ok(parsed)
    })
}

/// Parses one expression (a filter, a fragment) within the limits; it must use all of `text`.
pub fn parse_expr(dialect: &'static dyn Dialect, text: &str) -> Result<Expr, Refused> {
    parse_with(dialect, text, |parser| {
        let mut parser = parser.try_with_sql(text)?;
        let expr = parser.parse_expr()?;
        parser.expect_token(&sqlparser::tokenizer::Token::EOF)?;
        Ok(expr)
    })
}

/// Refuses a tree nested deeper than [`MAX_SQL_DEPTH`]. Checking stops at the limit, so the check
/// itself never recurses further than that.
pub fn check_depth<T: Visit>(tree: &T) -> Result<(), Refused> {
    let mut depth = Depth { now: 0, what: "" };
    match on_big_stack(|| tree.visit(&mut depth)) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(what) => Err(Refused::Limit(format!(
            "the SQL nests {what} more than {MAX_SQL_DEPTH} levels deep"
        ))),
    }
}

struct Depth {
    now: usize,
    what: &'static str,
}

impl Depth {
    fn enter(&mut self, what: &'static str) -> ControlFlow<&'static str> {
        self.now += 1;
        self.what = what;
        if self.now > MAX_SQL_DEPTH {
            ControlFlow::Break(what)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<&'static str> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Depth {
    type Break = &'static str;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Self::Break> {
        // UNION chains nest as set operations, which have no visitor hook of their own.
        if set_operation_depth(&query.body) > MAX_SQL_DEPTH {
            return ControlFlow::Break("set operations (UNION, INTERSECT, EXCEPT)");
        }
        self.enter("queries")
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<Self::Break> {
        self.leave()
    }

    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<Self::Break> {
        self.enter("tables and joins")
    }

    fn post_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<Self::Break> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<Self::Break> {
        self.enter("expressions")
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<Self::Break> {
        self.leave()
    }
}

/// How deep set operations nest in a query body, measured without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 1)];
    while let Some((set, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = set {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work in `cpu_bound` leaves the runtime's thread to the other tasks: with one runtime thread,
    /// a task that waits inside `cpu_bound` for another task to signal it would otherwise wait for
    /// ever.
    #[test]
    fn cpu_bound_work_does_not_hold_the_runtime_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let waited = runtime.block_on(async move {
            let busy = tokio::spawn(async move {
                cpu_bound(|| rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok())
            });
            tokio::task::yield_now().await;
            let signal = tokio::spawn(async move { tx.send(()).is_ok() });
            (busy.await.unwrap(), signal.await.unwrap())
        });
        assert_eq!(waited, (true, true));
    }
    use sqlparser::dialect::GenericDialect;
    use std::time::{Duration, Instant};

    fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, Refused> {
        parse_with(&GenericDialect {}, sql, |p| {
            p.try_with_sql(sql)?.parse_statements()
        })
    }

    fn chain(op: &str, n: usize) -> String {
        format!("SELECT {}", vec!["1"; n].join(op))
    }

    #[test]
    fn long_chains_parse_up_to_the_limit_and_are_refused_beyond() {
        assert!(parse(&chain(" + ", MAX_SQL_DEPTH - 1)).is_ok());
        let e = parse(&chain(" + ", MAX_SQL_DEPTH * 10)).unwrap_err();
        assert!(matches!(e, Refused::Limit(_)), "{e}");
        assert!(e.message().contains("expressions"), "{e}");
        let unions = vec!["SELECT 1"; MAX_SQL_DEPTH * 10].join(" UNION ALL ");
        let e = parse(&unions).unwrap_err();
        assert!(e.message().contains("set operations"), "{e}");
    }

    #[test]
    fn text_past_the_length_limit_is_refused_before_parsing() {
        let e = parse(&format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES))).unwrap_err();
        assert!(e.message().contains("bytes"), "{e}");
    }

    #[test]
    fn backtracking_is_budgeted() {
        // Each level is tried as a keyword and again as a function: 3^n without a budget.
        for opener in ["position(", "not (", "cast(", "substring("] {
            let sql = format!("SELECT {}1 +{}", opener.repeat(40), ")".repeat(40));
            let started = Instant::now();
            assert!(parse(&sql).is_err());
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{opener} took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn real_sql_uses_at_most_half_the_parse_budget() {
        let samples = [
            "select 1".to_string(),
            format!("select * from t where x in ({})", vec!["1"; 5000].join(",")),
            format!("select {} from t", vec!["a"; 5000].join(",")),
            format!("select {}", vec!["1"; 900].join("+")),
            "select lstg_format_name, sum(price) as gmv, count(*) as trans_cnt from kylin_sales where part_dt between date '2012-01-01' and date '2012-12-31' group by lstg_format_name order by lstg_format_name".to_string(),
            format!("select {} from t", vec!["cast(a as int)"; 1000].join(",")),
            format!("select {} from t", vec!["case when a = 1 then 'x' else 'y' end as c"; 1000].join(",")),
            format!("select {} from t", vec!["coalesce(nullif(trim(lower(a)),''), 'z')"; 1000].join(",")),
            format!("select {} from t", vec!["not (a = 1)"; 1000].join(" and ")),
            format!("select {} from t", vec!["substring(a from 1 for 2)"; 1000].join(",")),
            format!("select {} from t", vec!["extract(year from a)"; 1000].join(",")),
        ];
        for sql in samples {
            let fueled = Fueled::new(&GenericDialect {}, u64::MAX);
            let _ = Parser::new(&fueled)
                .try_with_sql(&sql)
                .unwrap()
                .parse_statements()
                .unwrap();
            let used = u64::MAX - fueled.left();
            assert!(
                used * 2 <= FUEL_PER_BYTE * sql.len() as u64 + 2,
                "{used} prefix expressions for {} bytes: {}",
                sql.len(),
                &sql[..40.min(sql.len())]
            );
        }
    }

    #[test]
    fn nesting_within_the_parser_limit_still_parses() {
        let sql = format!("SELECT {}1{}", "(".repeat(20), ")".repeat(20));
        assert!(parse(&sql).is_ok());
        let sql = format!("SELECT {}1 = 1{}", "not (".repeat(10), ")".repeat(10));
        assert!(parse(&sql).is_ok());
    }
}
