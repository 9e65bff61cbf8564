//! The sample datasets and contract-testing functions, checked through real SQL on a fresh context.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Int64Type};
use arrow::util::pretty::pretty_format_batches;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use polyquery::exec::fixtures::{RegisteredTable, SampleSet, register_fixtures};
use polyquery::exec::functions::{InjectedFailure, register_functions};

const README: &str = include_str!("../../fixtures/README.md");
const GLEAMBOOK_USERS: &str = include_str!("../../fixtures/asterixdb/GleambookUsers.ndjson");
const CHIRP_MESSAGES: &str = include_str!("../../fixtures/asterixdb/ChirpMessages.ndjson");

async fn context() -> (SessionContext, Vec<RegisteredTable>) {
    let ctx = SessionContext::new();
    let tables = register_fixtures(&ctx).await.unwrap();
    register_functions(&ctx);
    (ctx, tables)
}

async fn query(ctx: &SessionContext, sql: &str) -> RecordBatch {
    let df = ctx.sql(sql).await.unwrap();
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.unwrap();
    concat_batches(&schema, &batches).unwrap()
}

async fn query_error(ctx: &SessionContext, sql: &str) -> DataFusionError {
    // Planning must succeed: the failure belongs to execution.
    let df = ctx.sql(sql).await.unwrap();
    df.collect().await.unwrap_err()
}

fn i64_column(batch: &RecordBatch, index: usize) -> Vec<i64> {
    let column = arrow::compute::cast(batch.column(index), &DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().values().to_vec()
}

fn string_column(batch: &RecordBatch, index: usize) -> Vec<String> {
    let column = arrow::compute::cast(batch.column(index), &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("<null>").to_owned())
        .collect()
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batch = query(ctx, sql).await;
    assert_eq!(batch.num_rows(), 1, "{sql}");
    i64_column(&batch, 0)[0]
}

/// A table as `fixtures/README.md` documents it.
#[derive(Debug, PartialEq)]
struct DocumentedTable {
    sample: String,
    rows: usize,
    columns: Vec<(String, String)>,
}

/// Reads the README's `### \`name\`` sections (each ends at the next `##`/`###` heading):
/// `- sample set: …`, `- rows: N` and the column table.
fn documented_tables() -> BTreeMap<String, DocumentedTable> {
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, DocumentedTable)> = None;
    for line in README.lines() {
        if let Some(name) = line
            .strip_prefix("### `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            tables.extend(current.take());
            current = Some((
                name.to_owned(),
                DocumentedTable {
                    sample: String::new(),
                    rows: 0,
                    columns: Vec::new(),
                },
            ));
        } else if line.starts_with("## ") {
            tables.extend(current.take());
        } else if let Some((_, table)) = current.as_mut() {
            if let Some(sample) = line.strip_prefix("- sample set: ") {
                table.sample = sample.split(' ').next().unwrap().to_owned();
            } else if let Some(rows) = line.strip_prefix("- rows: ") {
                table.rows = rows.trim().parse().unwrap();
            } else if let Some(row) = line.strip_prefix("| `") {
                let (name, rest) = row.split_once("` | ").unwrap();
                let data_type = rest.trim_end_matches('|').trim();
                table
                    .columns
                    .push((name.to_owned(), data_type.trim_matches('`').to_owned()));
            }
        }
    }
    tables.extend(current);
    tables
}

fn sample_label(sample: Option<SampleSet>) -> &'static str {
    match sample {
        Some(SampleSet::Kylin) => "Kylin",
        Some(SampleSet::Luminesce) => "Luminesce",
        Some(SampleSet::Looker) => "Looker",
        Some(SampleSet::AsterixDb) => "AsterixDB",
        None => "none",
    }
}

#[tokio::test]
async fn readme_documents_every_table_with_its_real_row_count_and_columns() {
    let (ctx, tables) = context().await;
    let documented = documented_tables();
    let mut expected_sections = String::new();
    for table in &tables {
        let rows = count(&ctx, &format!("select count(*) from \"{}\"", table.name)).await;
        assert_eq!(Some(rows as usize), table.row_count, "{}", table.name);
        let registered = DocumentedTable {
            sample: sample_label(table.sample).to_owned(),
            rows: rows as usize,
            columns: table
                .schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
        };
        if documented.get(&table.name) != Some(&registered) {
            expected_sections.push_str(&format!("{:#?}\n", (&table.name, &registered)));
        }
    }
    assert!(
        expected_sections.is_empty(),
        "fixtures/README.md disagrees with the registered tables:\n{expected_sections}"
    );
    let registered: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let mut listed: Vec<&str> = documented.keys().map(String::as_str).collect();
    let mut registered_sorted = registered.clone();
    registered_sorted.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, registered_sorted, "README lists other tables");
}

#[tokio::test]
async fn tables_are_registered_in_the_vendors_case_in_a_stable_order() {
    let (_, tables) = context().await;
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "KYLIN_SALES",
            "KYLIN_ACCOUNT",
            "KYLIN_COUNTRY",
            "KYLIN_CAL_DT",
            "KYLIN_CATEGORY_GROUPINGS",
            "Testing1K",
            "Testing10K",
            "Testing100K",
            "order_items",
            "orders",
            "users",
            "products",
            "inventory_items",
            "dashboard",
            "GleambookUsers",
            "GleambookMessages",
            "ChirpUsers",
            "ChirpMessages",
        ]
    );
}

#[tokio::test]
async fn kylin_sales_has_ten_thousand_rows() {
    let (ctx, _) = context().await;
    assert_eq!(
        count(&ctx, r#"select count(*) from "KYLIN_SALES""#).await,
        10_000
    );
}

#[tokio::test]
async fn every_kylin_sale_joins_its_calendar_category_accounts_and_countries() {
    let (ctx, _) = context().await;
    let joined = count(
        &ctx,
        r#"select count(*) from "KYLIN_SALES" s
           join "KYLIN_CAL_DT" d on s."PART_DT" = d."CAL_DT"
           join "KYLIN_CATEGORY_GROUPINGS" c
             on s."LEAF_CATEG_ID" = c."LEAF_CATEG_ID" and s."LSTG_SITE_ID" = c."SITE_ID"
           join "KYLIN_ACCOUNT" b on s."BUYER_ID" = b."ACCOUNT_ID"
           join "KYLIN_ACCOUNT" sl on s."SELLER_ID" = sl."ACCOUNT_ID"
           join "KYLIN_COUNTRY" bc on b."ACCOUNT_COUNTRY" = bc."COUNTRY"
           join "KYLIN_COUNTRY" sc on sl."ACCOUNT_COUNTRY" = sc."COUNTRY""#,
    )
    .await;
    assert_eq!(joined, 10_000);
    let formats = query(
        &ctx,
        r#"select distinct "LSTG_FORMAT_NAME" from "KYLIN_SALES" order by 1"#,
    )
    .await;
    assert_eq!(
        string_column(&formats, 0),
        ["ABIN", "Auction", "FP-GTC", "FP-non GTC", "Others"]
    );
}

#[tokio::test]
async fn every_looker_order_item_joins_its_order_user_product_and_inventory_item() {
    let (ctx, _) = context().await;
    let items = count(&ctx, "select count(*) from order_items").await;
    let joined = count(
        &ctx,
        "select count(*) from order_items oi
           join orders o on oi.order_id = o.id and oi.user_id = o.user_id and oi.status = o.status
           join users u on o.user_id = u.id
           join products p on oi.product_id = p.id
           join inventory_items ii on oi.inventory_item_id = ii.id and ii.product_id = p.id",
    )
    .await;
    assert_eq!(joined, items);
    let declared = count(&ctx, "select sum(num_of_item) from orders").await;
    assert_eq!(declared, items);
    let statuses = query(&ctx, "select distinct status from orders order by 1").await;
    assert_eq!(
        string_column(&statuses, 0),
        ["Cancelled", "Complete", "Processing", "Returned", "Shipped"]
    );
}

#[tokio::test]
async fn gleambook_users_nested_fields_are_queryable() {
    let (ctx, _) = context().await;
    let batch = query(
        &ctx,
        r#"select "id", cardinality("friendIds"), "employment"[1]['organizationName']
           from "GleambookUsers" order by "id""#,
    )
    .await;
    let expected: Vec<serde_json::Value> = GLEAMBOOK_USERS
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(batch.num_rows(), expected.len());
    let ids = i64_column(&batch, 0);
    let friends = i64_column(&batch, 1);
    let employers = string_column(&batch, 2);
    for (row, user) in expected.iter().enumerate() {
        assert_eq!(ids[row], user["id"].as_i64().unwrap());
        assert_eq!(
            friends[row] as usize,
            user["friendIds"].as_array().unwrap().len()
        );
        assert_eq!(
            employers[row],
            user["employment"][0]["organizationName"].as_str().unwrap()
        );
    }
}

#[tokio::test]
async fn chirp_messages_keep_their_nested_user_and_point() {
    let (ctx, _) = context().await;
    let batch = query(
        &ctx,
        r#"select "user"['screenName'], "senderLocation"['x'], "referredTopics"[1]
           from "ChirpMessages""#,
    )
    .await;
    let expected: Vec<serde_json::Value> = CHIRP_MESSAGES
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(batch.num_rows(), expected.len());
    let names = string_column(&batch, 0);
    let xs = arrow::compute::cast(batch.column(1), &DataType::Float64).unwrap();
    let topics = string_column(&batch, 2);
    for (row, chirp) in expected.iter().enumerate() {
        assert_eq!(names[row], chirp["user"]["screenName"].as_str().unwrap());
        assert_eq!(
            xs.as_primitive::<arrow::datatypes::Float64Type>()
                .value(row),
            chirp["senderLocation"]["x"].as_f64().unwrap()
        );
        assert_eq!(topics[row], chirp["referredTopics"][0].as_str().unwrap());
    }
}

#[tokio::test]
async fn testing1k_int_runs_from_1_to_1000_in_order() {
    let (ctx, _) = context().await;
    let batch = query(
        &ctx,
        r#"select "Int", "Str", "Dbl", "Bool", "UseLinq" from "Testing1K""#,
    )
    .await;
    assert_eq!(i64_column(&batch, 0), (1..=1000).collect::<Vec<i64>>());
    assert_eq!(string_column(&batch, 1)[6], "Str7");
    assert_eq!(string_column(&batch, 2)[6], "1.75");
    assert_eq!(string_column(&batch, 3)[6], "false");
    assert_eq!(batch.column(4).as_boolean().true_count(), 1000);
}

#[tokio::test]
async fn testing100k_scans_fast_without_takes500ms() {
    let (ctx, _) = context().await;
    let started = Instant::now();
    let batch = query(
        &ctx,
        r#"select count(*), sum("Int"), max("Str") from "Testing100K" where "Bool""#,
    )
    .await;
    assert_eq!(i64_column(&batch, 0), [50_000]);
    assert_eq!(i64_column(&batch, 1), [2_500_050_000]);
    assert_eq!(string_column(&batch, 2), ["Str99998"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reading_takes500ms_costs_half_a_second_per_matching_row_only() {
    let (ctx, _) = context().await;
    let started = Instant::now();
    let batch = query(
        &ctx,
        r#"select "Str", "Takes500Ms" from "Testing1K" where "UseLinq" = true and "Int" <= 2"#,
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(string_column(&batch, 0), ["Str1", "Str2"]);
    assert_eq!(i64_column(&batch, 1), [1, 2]);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");

    let started = Instant::now();
    let batch = query(
        &ctx,
        r#"select "Takes500Ms" from "Testing1K" where "Int" > 500 limit 2"#,
    )
    .await;
    assert_eq!(i64_column(&batch, 0), [501, 502]);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn slow_rows_stream_one_by_one_in_int_order() {
    let (ctx, _) = context().await;
    let sql = r#"select "Int", "Takes500Ms" from "Testing1K" where "Int" between 3 and 6"#;
    let started = Instant::now();
    let mut stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
    let mut arrivals = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        assert_eq!(batch.num_rows(), 1);
        arrivals.push((i64_column(&batch, 0)[0], started.elapsed()));
    }
    let ints: Vec<i64> = arrivals.iter().map(|(int, _)| *int).collect();
    assert_eq!(ints, [3, 4, 5, 6]);
    // Each row is delivered as soon as it is read, not held back until the scan ends.
    assert!(arrivals[0].1 < Duration::from_millis(1200), "{arrivals:?}");
    assert!(arrivals[3].1 >= Duration::from_millis(2000), "{arrivals:?}");
}

#[tokio::test]
async fn dropping_a_slow_stream_after_its_first_batch_returns_at_once() {
    let (ctx, _) = context().await;
    for sql in [
        r#"select "Str", "Takes500Ms" from "Testing1K" where "UseLinq" = true and "Int" <= 2"#,
        // No filter: the scan's one-row batches reach the consumer as they are read.
        r#"select "Takes500Ms" from "Testing1K""#,
    ] {
        let started = Instant::now();
        let mut stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.num_rows() >= 1);
        assert!(started.elapsed() < Duration::from_secs(3), "{sql}");
        let dropping = Instant::now();
        drop(stream);
        assert!(dropping.elapsed() < Duration::from_millis(200), "{sql}");
    }
}

#[tokio::test]
async fn pq_fail_fails_at_execution_with_the_message() {
    let (ctx, _) = context().await;
    let err = query_error(&ctx, "select pq_fail('boom')").await;
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(InjectedFailure::find(&err).unwrap().message, "boom");
    let err = query_error(
        &ctx,
        r#"select "Int", pq_fail('row ' || "Str") from "Testing10K" where "Int" > 9000"#,
    )
    .await;
    assert_eq!(InjectedFailure::find(&err).unwrap().message, "row Str9001");
}

#[tokio::test]
async fn pq_sleep_returns_its_argument_after_sleeping() {
    let (ctx, _) = context().await;
    let started = Instant::now();
    let batch = query(&ctx, "select pq_sleep(50)").await;
    assert_eq!(i64_column(&batch, 0), [50]);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let batch = query(
        &ctx,
        r#"select pq_sleep("Int") from "Testing1K" where "Int" <= 3"#,
    )
    .await;
    assert_eq!(i64_column(&batch, 0), [1, 2, 3]);
}

#[tokio::test]
async fn pq_sleep_stops_when_its_query_is_dropped() {
    let (ctx, _) = context().await;
    let df = ctx.sql("select pq_sleep(10000)").await.unwrap();
    let running = tokio::spawn(df.collect());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancelling = Instant::now();
    running.abort();
    let outcome = tokio::time::timeout(Duration::from_secs(1), running)
        .await
        .expect("the sleep kept running after cancellation");
    assert!(outcome.unwrap_err().is_cancelled());
    assert!(cancelling.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn asterixdb_sleep_and_inject_failure_behave_like_the_vendors() {
    let (ctx, _) = context().await;
    let started = Instant::now();
    let batch = query(&ctx, "select sleep('result', 100)").await;
    assert_eq!(string_column(&batch, 0), ["result"]);
    assert!(started.elapsed() >= Duration::from_millis(100));

    let batch = query(&ctx, "select inject_failure('kept', false)").await;
    assert_eq!(string_column(&batch, 0), ["kept"]);

    let err = query_error(&ctx, "select inject_failure(sleep('result', 10), true)").await;
    assert_eq!(
        InjectedFailure::find(&err).unwrap().message,
        "Injected failure in inject-failure"
    );
}

#[tokio::test]
async fn the_same_query_returns_the_same_rows_in_the_same_order() {
    let (ctx, _) = context().await;
    for sql in [
        r#"select * from "KYLIN_SALES" where "PRICE" > 50"#,
        r#"select "Int", "Str", "Dbl", "Date" from "Testing10K" where "Int" % 7 = 3"#,
        "select u.city, o.id, o.status from orders o join users u on o.user_id = u.id",
    ] {
        let first = pretty_format_batches(&[query(&ctx, sql).await])
            .unwrap()
            .to_string();
        let second = pretty_format_batches(&[query(&ctx, sql).await])
            .unwrap()
            .to_string();
        assert!(first.lines().count() > 100, "{sql}");
        assert!(first == second, "two runs of {sql} differ");
    }
}

#[tokio::test]
async fn unordered_scans_return_rows_in_file_order() {
    let (ctx, _) = context().await;
    let batch = query(&ctx, r#"select "TRANS_ID" from "KYLIN_SALES""#).await;
    assert_eq!(i64_column(&batch, 0), (0..10_000).collect::<Vec<i64>>());
    let batch = query(&ctx, "select id from order_items").await;
    let ids = i64_column(&batch, 0);
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<i64>>());
    assert!(batch.column(0).null_count() == 0);
}
