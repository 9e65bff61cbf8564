//! SQLite as the oracle for Luminesce SQL: every query of `dialects/luminesce/sqlite-oracle.sql`
//! runs through the Luminesce rewrite on the engine and through SQLite itself over the same rows
//! of `Testing1K`; both must name the same columns and answer the same values.
//!
//! The case file holds one query per line; a following line `  sqlite: <sql>` gives SQLite's
//! spelling where Luminesce's syntax is its own (variables, `#date#` literals). Rows are compared
//! in order when the query says `order by`, else as multisets. Engine booleans are SQLite's 0/1
//! and date-times its `YYYY-MM-DD HH:MM:SS` text, as SQLite holds them.

use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use futures::TryStreamExt;
use rusqlite::types::ValueRef;

use super::sql::rewrite;
use crate::exec::Executor;
use crate::exec::datafusion::default_executor;
use crate::exec::sqlite_functions::Val;
use crate::query::Params;

const CASES: &str = include_str!("../../../dialects/luminesce/sqlite-oracle.sql");

/// The columns of `Testing1K` loaded into SQLite, with SQLite's type for each.
const COLUMNS: [(&str, &str); 5] = [
    ("Int", "INTEGER"),
    ("Str", "TEXT"),
    ("Dbl", "REAL"),
    ("Date", "TEXT"),
    ("Bool", "INTEGER"),
];

struct Case {
    line: usize,
    luminesce: String,
    sqlite: String,
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in CASES.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        if let Some(sqlite) = trimmed.strip_prefix("sqlite:") {
            if let Some(last) = cases.last_mut() {
                last.sqlite = sqlite.trim().to_string();
            }
            continue;
        }
        cases.push(Case {
            line: n + 1,
            luminesce: trimmed.to_string(),
            sqlite: trimmed.to_string(),
        });
    }
    cases
}

type Answer = (Vec<String>, Vec<Vec<Val>>);

fn batch_rows(batches: &[RecordBatch]) -> Result<Answer, String> {
    let names = batches.first().map_or_else(Vec::new, |b| {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    });
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row).map(|v| Val::from_scalar(&v)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            rows.push(values);
        }
    }
    Ok((names, rows))
}

async fn run_engine(executor: &dyn Executor, sql: &str) -> Result<Answer, String> {
    let params = Params::default();
    let rewritten = rewrite(sql, &params, executor.catalog(), &[]).map_err(|e| e.detail)?;
    let stream = executor
        .execute(&rewritten.exec_sql, &params)
        .await
        .map_err(|e| format!("{e} [{}]", rewritten.exec_sql))?;
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream
        .try_collect()
        .await
        .map_err(|e| format!("{e} [{}]", rewritten.exec_sql))?;
    let (names, rows) = batch_rows(&batches)?;
    let names = if batches.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        names
    };
    Ok((names, rows))
}

fn run_sqlite(db: &rusqlite::Connection, sql: &str) -> Result<Answer, String> {
    let mut statement = db.prepare(sql).map_err(|e| e.to_string())?;
    let names: Vec<String> = statement.column_names().map(|s| s.to_string()).collect();
    let width = names.len();
    let mut rows = Vec::new();
    let mut cursor = statement.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = cursor.next().map_err(|e| e.to_string())? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Real(v) => Val::Real(v),
                ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Val::Blob(b.to_vec()),
            });
        }
        rows.push(values);
    }
    Ok((names, rows))
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Real(x), Val::Real(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

fn same_rows(ours: &[Vec<Val>], theirs: &[Vec<Val>], ordered: bool) -> bool {
    let key = |r: &Vec<Val>| format!("{r:?}");
    let (mut ours, mut theirs) = (ours.to_vec(), theirs.to_vec());
    if !ordered {
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
    }
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(&theirs)
            .all(|(a, b)| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)))
}

async fn load(executor: &dyn Executor) -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().expect("sqlite");
    let columns: Vec<String> = COLUMNS.iter().map(|(c, t)| format!("[{c}] {t}")).collect();
    db.execute(
        &format!("create table Testing1K ({})", columns.join(", ")),
        [],
    )
    .expect("create");
    let names: Vec<String> = COLUMNS.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let (_, rows) = run_engine(
        executor,
        &format!("select {} from Testing1K", names.join(", ")),
    )
    .await
    .expect("rows");
    let marks = vec!["?"; COLUMNS.len()].join(", ");
    {
        let mut insert = db
            .prepare(&format!("insert into Testing1K values ({marks})"))
            .expect("insert");
        for row in rows {
            let values: Vec<rusqlite::types::Value> = row
                .into_iter()
                .map(|v| match v {
                    Val::Null => rusqlite::types::Value::Null,
                    Val::Int(i) => rusqlite::types::Value::Integer(i),
                    Val::Real(f) => rusqlite::types::Value::Real(f),
                    Val::Text(t) => rusqlite::types::Value::Text(t),
                    Val::Blob(b) => rusqlite::types::Value::Blob(b),
                })
                .collect();
            insert
                .execute(rusqlite::params_from_iter(values))
                .expect("row");
        }
    }
    db
}

#[tokio::test]
async fn luminesce_sql_answers_as_sqlite_does() {
    let executor = default_executor().await.expect("executor");
    let db = load(executor.as_ref()).await;
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let ordered = case.luminesce.to_lowercase().contains("order by");
        let theirs = match run_sqlite(&db, &case.sqlite) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("line {}: SQLite refused it: {e}", case.line));
                continue;
            }
        };
        match run_engine(executor.as_ref(), &case.luminesce).await {
            Err(e) => failures.push(format!(
                "line {}: {}\n  refused: {e}",
                case.line, case.luminesce
            )),
            Ok(ours) if ours.0 != theirs.0 => failures.push(format!(
                "line {}: {}\n  names {:?}\n  sqlite {:?}",
                case.line, case.luminesce, ours.0, theirs.0
            )),
            Ok(ours) if !same_rows(&ours.1, &theirs.1, ordered) => failures.push(format!(
                "line {}: {}\n  rows {:?}\n  sqlite {:?}",
                case.line,
                case.luminesce,
                ours.1.iter().take(5).collect::<Vec<_>>(),
                theirs.1.iter().take(5).collect::<Vec<_>>()
            )),
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
