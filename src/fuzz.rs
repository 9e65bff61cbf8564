//! A fuzz harness for every SQL entry point and every client-text parser (`polyquery fuzz`; a short
//! run is part of the test suite). Inputs are built from a grammar — SQL with the constructs the
//! parsers find hardest (long operator chains, deep nesting, keywords sqlparser reads two ways,
//! subqueries, CTEs), Luminesce OData filters and Looker filter expressions — and then mutated (cut,
//! spliced, doubled, sprinkled with stray characters). Each input goes through the target under
//! `catch_unwind` and a time budget: a panic or an execution over the budget is a finding. (A stack
//! overflow would abort the process, which is a finding too.) The budget is the fuzzing thread's own
//! CPU time, not wall time: every target runs on the calling thread, and other work on the machine
//! must not turn into findings.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use crate::dialect::asterixdb::sqlpp;
use crate::dialect::kylin::sql::{self as kylin_sql, Project};
use crate::dialect::looker::filter as looker_filter;
use crate::dialect::looker::semantic::FieldType;
use crate::dialect::luminesce::{filter as luminesce_filter, sql as luminesce_sql};
use crate::exec::Executor;
use crate::exec::datafusion::DataFusionExecutor;
use crate::query::{ParamValue, Params};

/// What can be fuzzed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Luminesce SQL (`PUT /SqlBackground`): the SQLite-flavoured rewrite.
    LuminesceSql,
    /// AsterixDB SQL++ (`/query/service`): the translator.
    Sqlpp,
    /// Kylin's Calcite SQL (`/query`, `/async_query`): the project-scoped rewrite.
    KylinSql,
    /// The engine's own check, which Looker's SQL Runner (and every submit) goes through.
    EngineSql,
    /// Luminesce's OData `filter`.
    LuminesceFilter,
    /// Looker filter expressions, for every field type.
    LookerFilter,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::LuminesceSql,
        Target::Sqlpp,
        Target::KylinSql,
        Target::EngineSql,
        Target::LuminesceFilter,
        Target::LookerFilter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::LuminesceSql => "luminesce-sql",
            Target::Sqlpp => "asterixdb-sqlpp",
            Target::KylinSql => "kylin-sql",
            Target::EngineSql => "engine-sql",
            Target::LuminesceFilter => "luminesce-filter",
            Target::LookerFilter => "looker-filter",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One input that panicked or ran past the budget.
#[derive(Debug, Clone)]
pub struct Finding {
    pub input: String,
    pub what: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub executions: u64,
    /// Inputs the target accepted (the rest it refused with its own error).
    pub accepted: u64,
    pub slowest: Duration,
    /// The input that took longest.
    pub slowest_input: String,
    pub elapsed: Duration,
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<17} {:>9} executions ({:>8} accepted) in {:>7.1} s, slowest {:>8.2} ms of CPU, {} findings",
            self.target.name(),
            self.executions,
            self.accepted,
            self.elapsed.as_secs_f64(),
            self.slowest.as_secs_f64() * 1000.0,
            self.findings.len()
        )
    }
}

/// Runs `executions` inputs through `target`, from `seed`; stops early after ten findings.
pub fn run(
    executor: &DataFusionExecutor,
    target: Target,
    executions: u64,
    seed: u64,
    budget: Duration,
) -> Report {
    let catalog = executor.catalog();
    let kylin_project = Project::find("learn_kylin").unwrap_or(Project::DEFAULT);
    let params = Params {
        positional: Vec::new(),
        named: [("p".to_string(), ParamValue::from(1))]
            .into_iter()
            .collect(),
    };
    let columns: Vec<String> = ["Int", "Str", "When", "Field Name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let field = sqlparser::ast::Expr::Identifier(sqlparser::ast::Ident::with_quote('"', "f"));
    let now = looker_filter::now();
    let mut rng = Rng(seed.max(1));
    let mut report = Report {
        target,
        executions: 0,
        accepted: 0,
        slowest: Duration::ZERO,
        slowest_input: String::new(),
        elapsed: Duration::ZERO,
        findings: Vec::new(),
    };
    let started = Instant::now();
    for _ in 0..executions {
        let input = match target {
            Target::LuminesceFilter => odata(&mut rng, 0),
            Target::LookerFilter => looker(&mut rng),
            _ => statement(&mut rng, target),
        };
        let mut input = mutate(&mut rng, input);
        if input.len() > MAX_INPUT {
            let mut cut = MAX_INPUT;
            while !input.is_char_boundary(cut) {
                cut -= 1;
            }
            input.truncate(cut);
        }
        let field_type = [
            FieldType::String,
            FieldType::Number,
            FieldType::Date,
            FieldType::Time,
            FieldType::Yesno,
        ][rng.below(5)];
        let one = ThreadTime::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match target {
            Target::LuminesceSql => luminesce_sql::rewrite(&input, &params, catalog, &[]).is_ok(),
            Target::Sqlpp => sqlpp::translate(
                &input,
                sqlpp::Rules {
                    asynchronous: false,
                    readonly: true,
                    multi_statement: true,
                    dataverse: None,
                    catalog: Some(catalog),
                },
            )
            .is_ok(),
            Target::KylinSql => kylin_sql::prepare(&input, kylin_project, catalog, 0, 0).is_ok(),
            Target::EngineSql => executor.check(&input).is_ok(),
            Target::LuminesceFilter => luminesce_filter::translate(&input, &columns).is_ok(),
            Target::LookerFilter => {
                looker_filter::predicate(&field, field_type, &input, now).is_ok_and(|p| p.is_some())
            }
        }));
        let took = one.elapsed();
        report.executions += 1;
        if took > report.slowest {
            report.slowest = took;
            report.slowest_input.clone_from(&input);
        }
        match outcome {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(panic) => report.findings.push(Finding {
                input: input.clone(),
                what: format!("panicked: {}", crate::query::panic_text(panic.as_ref())),
            }),
        }
        if took > budget {
            report.findings.push(Finding {
                input,
                what: format!("took {took:?}, over the budget of {budget:?}"),
            });
        }
        if report.findings.len() >= 10 {
            break;
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// xorshift64*: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Mostly small, sometimes large: how many times to repeat something.
    fn count(&mut self) -> usize {
        match self.below(20) {
            0 => 500 + self.below(3000),
            1..=2 => 20 + self.below(80),
            _ => 1 + self.below(4),
        }
    }
}

const TABLES: [&str; 6] = [
    "Testing1K",
    "[Testing1K]",
    "KYLIN_SALES",
    "\"Testing1K\"",
    "GleambookUsers",
    "nope",
];
const COLUMNS: [&str; 6] = ["[Int]", "Str", "x", "\"Int\"", "PRICE", "@p"];
const BINARY: [&str; 12] = [
    "+", "-", "*", "/", "=", "<>", "<", ">=", "and", "or", "||", "like",
];
/// Keywords sqlparser tries as an operator and again as a function name.
const TWO_WAY: [&str; 7] = [
    "not (",
    "cast(",
    "position(",
    "substring(",
    "ceil(",
    "convert(",
    "extract(year from ",
];

fn expr(rng: &mut Rng, depth: usize) -> String {
    if depth > 6 {
        return atom(rng);
    }
    match rng.below(12) {
        0 => {
            let n = rng.count();
            let op = rng.pick(&BINARY);
            (0..n)
                .map(|_| atom(rng))
                .collect::<Vec<_>>()
                .join(&format!(" {op} "))
        }
        1 => {
            let n = rng.count();
            format!("{}{}{}", "(".repeat(n), expr(rng, depth + 1), ")".repeat(n))
        }
        2 => {
            let n = rng.count();
            let open = rng.pick(&TWO_WAY);
            let n = copies(n, open.len());
            format!(
                "{}{}{}",
                open.repeat(n),
                expr(rng, depth + 1),
                ")".repeat(n)
            )
        }
        3 => format!("not {}", expr(rng, depth + 1)),
        4 => format!("cast({} as int)", expr(rng, depth + 1)),
        5 => format!(
            "case when {} then {} else {} end",
            expr(rng, depth + 1),
            atom(rng),
            atom(rng)
        ),
        6 => format!("({})", query(rng, depth + 1)),
        7 => format!("{} in ({}, {})", atom(rng), expr(rng, depth + 1), atom(rng)),
        8 => format!("coalesce({}, {})", expr(rng, depth + 1), atom(rng)),
        _ => format!(
            "{} {} {}",
            expr(rng, depth + 1),
            rng.pick(&BINARY),
            expr(rng, depth + 1)
        ),
    }
}

fn atom(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng.pick(&COLUMNS).to_string(),
        1 => format!("'{}'", rng.pick(&["a", "it''s", "", "%_", "\\"])),
        2 => rng
            .pick(&["null", "true", "1e308", "-9223372036854775808", "?", "$1"])
            .to_string(),
        _ => (rng.next() % 1000).to_string(),
    }
}

fn query(rng: &mut Rng, depth: usize) -> String {
    let table = rng.pick(&TABLES);
    let mut sql = format!("select {} from {table}", expr(rng, depth + 1));
    if rng.chance(2) {
        sql.push_str(&format!(" where {}", expr(rng, depth + 1)));
    }
    if rng.chance(4) {
        sql.push_str(" group by 1 order by 1 limit 10");
    }
    if rng.chance(5) {
        let n = copies(rng.count(), sql.len());
        sql = vec![sql; n].join(" union all ");
    }
    sql
}

/// Inputs grow to about twice the longest SQL accepted, no further: enough to cross every limit.
const MAX_INPUT: usize = 2 * crate::sql::guard::MAX_SQL_BYTES;

/// How many copies of a text of `len` bytes fit in [`MAX_INPUT`], at most `wanted`.
fn copies(wanted: usize, len: usize) -> usize {
    wanted.min(MAX_INPUT / len.max(1)).max(1)
}

fn statement(rng: &mut Rng, target: Target) -> String {
    let body = query(rng, 0);
    let sql = match rng.below(6) {
        0 => format!("with \"Testing1K\" as (select 1 as x) {body}"),
        1 => format!("select * from ({body}) q cross join {}", rng.pick(&TABLES)),
        _ => body,
    };
    match target {
        Target::Sqlpp if rng.chance(3) => format!("use TinySocial; {sql};"),
        Target::Sqlpp if rng.chance(3) => {
            format!("from [1, 2] as v select value v + {};", atom(rng))
        }
        _ => sql,
    }
}

fn odata(rng: &mut Rng, depth: usize) -> String {
    let comparison = |rng: &mut Rng| {
        format!(
            "{} {} {}",
            rng.pick(&["Int", "Str", "[Field Name]", "When", "nope"]),
            rng.pick(&["eq", "ne", "gt", "ge", "lt", "le", "eqq"]),
            rng.pick(&[
                "1",
                "'a'",
                "null",
                "true",
                "2024-01-02T03:04:05Z",
                "datetime'2024-01-01'",
                "-1.5"
            ])
        )
    };
    if depth > 4 {
        return comparison(rng);
    }
    match rng.below(7) {
        0 => format!("{}{}", "not ".repeat(rng.count()), odata(rng, depth + 1)),
        1 => {
            let n = rng.count();
            format!(
                "{}{}{}",
                "(".repeat(n),
                odata(rng, depth + 1),
                ")".repeat(n)
            )
        }
        2 => format!(
            "{} {} {}",
            odata(rng, depth + 1),
            rng.pick(&["and", "or"]),
            odata(rng, depth + 1)
        ),
        3 => format!(
            "{}(Str, {})",
            rng.pick(&["startswith", "endswith", "contains"]),
            rng.pick(&["'a'", "Str", "(Str)", "1"])
        ),
        _ => comparison(rng),
    }
}

fn looker(rng: &mut Rng) -> String {
    let term = |rng: &mut Rng| {
        rng.pick(&[
            "CA",
            "-CA",
            "NULL",
            "-NULL",
            "EMPTY",
            "FOO%",
            "50^%",
            "a^,b",
            "\\",
            ">10",
            "[1,5]",
            "(1,5]",
            "NOT 3",
            "last 7 days",
            "3 days ago",
            "this month",
            "2024-01-01",
            "2024-01-01 to 2024-02-01",
            "before 2024-01-01",
            "yes",
            "no",
            "-9223372036854775808 days ago",
            "9223372036854775807 years",
        ])
        .to_string()
    };
    let n = rng.count();
    (0..n).map(|_| term(rng)).collect::<Vec<_>>().join(",")
}

/// Cuts, splices, doubles or sprinkles stray characters into `input`.
fn mutate(rng: &mut Rng, input: String) -> String {
    if rng.chance(2) {
        return input;
    }
    let chars: Vec<char> = input.chars().collect();
    let at = rng.below(chars.len() + 1);
    let to = (at + rng.below(16)).min(chars.len());
    let stray = [
        "(", ")", "'", "\"", "[", "]", ",", ";", "--", "/*", "\\", "\0", "é", " not ", " select ",
    ];
    let mut out: String = match rng.below(4) {
        0 => chars[..at].iter().collect(),
        1 => chars[..at].iter().chain(chars[to..].iter()).collect(),
        2 => chars[..to].iter().chain(chars[at..].iter()).collect(),
        _ => {
            let mut s: String = chars[..at].iter().collect();
            s.push_str(rng.pick(&stray));
            s.extend(chars[at..].iter());
            s
        }
    };
    if rng.chance(50) {
        out = out.repeat(copies(2 + rng.below(40), out.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short run of the test suite: every target, a few hundred inputs each, nothing found.
    #[tokio::test]
    async fn a_short_fuzz_run_finds_nothing() {
        let executor = DataFusionExecutor::new(1, &[]).await.unwrap();
        for target in Target::ALL {
            let report = run(&executor, target, 300, 0x5eed, Duration::from_secs(5));
            assert!(
                report.findings.is_empty(),
                "{report}\n{:#?}",
                report.findings
            );
            assert_eq!(report.executions, 300);
        }
    }
}
