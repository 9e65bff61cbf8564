//! The Kylin dialect end to end: the vendor page's curl flow, the async flow in both flavours and
//! every download format read back, Kylin SQL, auth and ownership, bad input, the contract cases,
//! and the kylinpy client.

use crate::support::keys;
use std::time::Duration;

use polyquery::config::{Config, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestServer;

const V2: &str = "application/vnd.apache.kylin-v2+json";
const V4: &str = "application/vnd.apache.kylin-v4-public+json";

/// The rows of the comparison query, ordered so every run and every format agree.
const SALES_SQL: &str = "select trans_id, part_dt, lstg_format_name, price, seller_id \
                         from kylin_sales order by trans_id limit 40";

struct Kylin {
    server: TestServer,
    client: reqwest::Client,
}

impl Kylin {
    async fn start() -> Kylin {
        Kylin::with_users(Vec::new()).await
    }

    async fn with_users(users: Vec<User>) -> Kylin {
        let config = Config {
            users,
            ..Config::default()
        };
        Kylin {
            server: TestServer::start(config).await,
            client: reqwest::Client::new(),
        }
    }

    /// A request as ADMIN/KYLIN with this Accept header (`None`: none at all).
    fn request(&self, method: Method, path: &str, accept: Option<&str>) -> reqwest::RequestBuilder {
        self.as_user(method, path, accept, "ADMIN", "KYLIN")
    }

    fn as_user(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        user: &str,
        password: &str,
    ) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, self.server.url(&format!("/kylin/api{path}")))
            .basic_auth(user, Some(password));
        match accept {
            Some(a) => r.header("Accept", a),
            None => r,
        }
    }

    async fn json(&self, r: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = r.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, value)
    }

    async fn submit(&self, accept: &str, body: Value) -> Value {
        let (status, v) = self
            .json(
                self.request(Method::POST, "/async_query", Some(accept))
                    .json(&body),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["code"], "000", "{v}");
        v["data"].clone()
    }

    /// Polls the status until it is no longer RUNNING; answers the last data.
    async fn settle(&self, accept: &str, id: &str, project: &str) -> Value {
        for _ in 0..600 {
            let (status, v) = self
                .json(self.request(
                    Method::GET,
                    &format!("/async_query/{id}/status?project={project}"),
                    Some(accept),
                ))
                .await;
            assert_eq!(status, 200, "{v}");
            if v["data"]["status"] != "RUNNING" {
                return v["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("query {id} never finished");
    }

    /// Rows of the sync API for `sql` in learn_kylin.
    async fn sync_rows(&self, sql: &str) -> (Vec<String>, Vec<Vec<Value>>) {
        let (status, v) = self
            .json(
                self.request(Method::POST, "/query", None)
                    .json(&json!({"sql": sql, "project": "learn_kylin"})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["isException"], false, "{v}");
        let names = v["columnMetas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap().to_string())
            .collect();
        let rows = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        (names, rows)
    }
}

fn user(name: &str, password: &str, admin: bool) -> User {
    User {
        name: name.into(),
        password: Some(password.into()),
        token: None,
        admin,
    }
}

/// The vendor page, command by command, with its v2 headers (`Content-Type` set to the v2 type too).
#[tokio::test]
async fn vendor_page_curl_flow() {
    let k = Kylin::start().await;
    let v2 = |method, path: &str| {
        k.request(method, path, Some(V2))
            .header("Content-Type", V2)
            .header("Accept-Language", "en")
    };
    // Asyn Query.
    let (status, submitted) = k
        .json(v2(Method::POST, "/async_query").body(
            r#"{ "sql":"select * from kylin_sales", "separator":",", "project":"learn_kylin" }"#,
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(keys(&submitted), ["code", "data", "msg"]);
    assert_eq!(submitted["code"], "000");
    assert_eq!(submitted["msg"], "");
    let data = &submitted["data"];
    assert_eq!(keys(data), ["queryID", "status", "info"]);
    let id = data["queryID"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    match data["status"].as_str().unwrap() {
        "RUNNING" => assert_eq!(data["info"], "still running"),
        "SUCCESSFUL" => assert_eq!(data["info"], "query success"),
        other => panic!("unexpected status {other}"),
    }
    // Query Status, until SUCCESSFUL.
    let mut last = Value::Null;
    for _ in 0..500 {
        let (status, v) = k
            .json(v2(Method::GET, &format!("/async_query/{id}/status")))
            .await;
        assert_eq!(status, 200);
        last = v;
        if last["data"]["status"] != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        last,
        json!({"code": "000", "data": {"queryID": id, "status": "SUCCESSFUL", "info": "await fetching results"}, "msg": ""})
    );
    // Query Metadata Info.
    let (_, metadata) = k
        .json(v2(Method::GET, &format!("/async_query/{id}/metadata")))
        .await;
    let names = metadata["data"][0].as_array().unwrap();
    let types = metadata["data"][1].as_array().unwrap();
    assert_eq!(names.len(), 12);
    assert_eq!(names[0], "TRANS_ID");
    assert_eq!(names[2], "LSTG_FORMAT_NAME");
    assert_eq!(
        types[..7],
        [
            json!("BIGINT"),
            json!("DATE"),
            json!("VARCHAR"),
            json!("BIGINT"),
            json!("INTEGER"),
            json!("SMALLINT"),
            json!("DECIMAL")
        ]
    );
    // Download Query Result.
    let response = v2(Method::GET, &format!("/async_query/{id}/result_download"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/csv;charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"result.csv\""
    );
    let csv = response.bytes().await.unwrap();
    // Query Result File Status: the size of what was downloaded.
    let (_, file_status) = k
        .json(v2(Method::GET, &format!("/async_query/{id}/filestatus")))
        .await;
    assert_eq!(file_status["data"], json!(csv.len()));
    let text = String::from_utf8(csv.to_vec()).unwrap();
    assert!(!text.contains('\r'));
    assert!(text.ends_with('\n'));
    let (_, all_rows) = k.sync_rows("select * from kylin_sales").await;
    assert_eq!(text.lines().count(), all_rows.len());
    assert!(!text.starts_with("TRANS_ID"), "no header unless asked");
    // Query hdfs Path: a file URI of the directory holding the file.
    let (_, path) = k
        .json(v2(Method::GET, &format!("/async_query/{id}/result_path")))
        .await;
    let dir = path["data"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap();
    assert!(
        dir.ends_with(&format!("/learn_kylin/async_query_result/{id}")),
        "{dir}"
    );
    assert_eq!(
        std::fs::read(format!("{dir}/{id}.csv")).unwrap(),
        csv.to_vec()
    );
    // Delete All Query Result Files.
    let (status, deleted) = k.json(v2(Method::DELETE, "/async_query")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"code": "000", "data": true, "msg": ""}));
    assert!(!std::path::Path::new(dir).exists());
    // v2 without a project: an unknown id is KE-010031301.
    let (status, gone) = k
        .json(v2(Method::GET, &format!("/async_query/{id}/status")))
        .await;
    assert_eq!(status, 500);
    assert_eq!(gone["error_code"], "KE-010031301");
}

/// The page's request example: a one-element array, the TPC-H SQL, project `tpch_kap_24`.
#[tokio::test]
async fn vendor_page_tpch_example_is_a_clear_error() {
    let k = Kylin::start().await;
    let sql = "select count(*),L_RECEIPTDELAYED,L_RETURNFLAG from v_lineitem inner join V_ORDERS on L_ORDERKEY = O_ORDERKEY group by L_RECEIPTDELAYED,L_RETURNFLAG";
    let (status, v) = k
        .json(
            k.request(Method::POST, "/async_query", Some(V2))
                .json(&json!([{"sql": sql, "separator": ",", "project": "tpch_kap_24"}])),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(v["error_code"], "KE-010001201");
    assert_eq!(
        v["msg"],
        "KE-010001201: Can't find project \"tpch_kap_24\". Please check and try again."
    );
    let data = k
        .submit(
            V2,
            json!([{"sql": sql, "separator": ",", "project": "learn_kylin"}]),
        )
        .await;
    assert_eq!(data["status"], "FAILED");
    assert_eq!(data["queryID"], Value::Null);
    assert_eq!(
        data["info"],
        "From line 1, column 52 to line 1, column 61: Object 'V_LINEITEM' not found"
    );
}

#[tokio::test]
async fn kylin_sql_folds_unquoted_names_to_upper_case() {
    let k = Kylin::start().await;
    let (names, rows) = k
        .sync_rows("select lstg_format_name, count(*) as n, min(price) as \"lowest\" from kylin_sales group by lstg_format_name order by lstg_format_name")
        .await;
    assert_eq!(names, ["LSTG_FORMAT_NAME", "N", "lowest"]);
    assert!(rows.len() > 1);
    let (_, limited) = k
        .sync_rows("select trans_id from default.kylin_sales order by trans_id offset 3 rows fetch next 2 rows only")
        .await;
    assert_eq!(limited, vec![vec![json!("3")], vec![json!("4")]]);
}

#[tokio::test]
async fn sync_query_shapes_raw_and_enveloped() {
    let k = Kylin::start().await;
    let body = json!({"sql": "select trans_id, part_dt, price from kylin_sales order by trans_id", "project": "learn_kylin", "limit": 2, "acceptPartial": false});
    let (status, raw) = k
        .json(
            k.request(Method::POST, "/query", Some("application/json"))
                .json(&body),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        raw["results"],
        json!([
            ["0", "2012-10-14", "80.7556"],
            ["1", "2013-01-02", "81.2298"]
        ])
    );
    let metas = raw["columnMetas"].as_array().unwrap();
    assert_eq!(metas[0]["columnTypeName"], "BIGINT");
    assert_eq!(metas[0]["columnType"], -5);
    assert_eq!(metas[2]["columnTypeName"], "DECIMAL");
    assert_eq!(metas[2]["precision"], 19);
    assert_eq!(metas[2]["scale"], 4);
    assert_eq!(raw["isException"], false);
    assert_eq!(raw["exceptionMessage"], Value::Null);
    assert_eq!(raw["totalScanCount"], 2);
    assert!(raw["duration"].is_i64());
    for (accept, expected_type) in [(V2, V2), (V4, V4)] {
        let response = k
            .request(Method::POST, "/query", Some(accept))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], expected_type);
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["code"], "000");
        assert_eq!(v["data"]["results"], raw["results"]);
    }
    // A failing query is HTTP 200 with isException.
    let (status, failed) = k
        .json(
            k.request(Method::POST, "/query", Some(V4))
                .json(&json!({"sql": "select nope from kylin_sales", "project": "learn_kylin"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(failed["data"]["isException"], true);
    assert_eq!(failed["data"]["results"], Value::Null);
    assert!(
        failed["data"]["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("NOPE"),
        "{failed}"
    );
    // JDBC parameters.
    let (_, bound) = k
        .json(k.request(Method::POST, "/query", None).json(&json!({
            "sql": "select trans_id from kylin_sales where trans_id < ? order by trans_id",
            "project": "learn_kylin",
            "params": [{"className": "java.lang.Integer", "value": "2"}]
        })))
        .await;
    assert_eq!(bound["results"], json!([["0"], ["1"]]));
}

#[tokio::test]
async fn introspection_endpoints() {
    let k = Kylin::start().await;
    let (status, auth) = k
        .json(k.request(Method::GET, "/user/authentication", None))
        .await;
    assert_eq!(status, 200);
    assert_eq!(auth["userDetails"]["username"], "ADMIN");
    let (_, auth) = k
        .json(k.request(Method::POST, "/user/authentication", Some(V4)))
        .await;
    assert_eq!(auth["code"], "000");
    assert_eq!(
        auth["data"]["authorities"],
        json!([{"authority": "ROLE_ADMIN"}, {"authority": "ALL_USERS"}])
    );
    let (_, tables) = k
        .json(k.request(Method::GET, "/tables_and_columns?project=learn_kylin", None))
        .await;
    let names: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table_NAME"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"KYLIN_SALES"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("KYLIN_")), "{names:?}");
    let sales = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table_NAME"] == "KYLIN_SALES")
        .unwrap();
    assert_eq!(sales["table_SCHEM"], "DEFAULT");
    assert_eq!(sales["columns"][6]["column_NAME"], "PRICE");
    assert_eq!(sales["columns"][6]["type_NAME"], "DECIMAL");
    let (_, projects) = k.json(k.request(Method::GET, "/projects", None)).await;
    let names: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["learn_kylin", "DEFAULT"]);
}

/// Reads a downloaded file back into rows of strings, the way the sync API prints them.
fn read_back(format: &str, bytes: &[u8], names: &[String]) -> Vec<Vec<Value>> {
    match format {
        "csv" => String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(|c| json!(c)).collect())
            .collect(),
        "json" => {
            let rows: Vec<String> = serde_json::from_slice(bytes).unwrap();
            rows.iter()
                .map(|row| {
                    let object: serde_json::Map<String, Value> = serde_json::from_str(row).unwrap();
                    names
                        .iter()
                        .map(|n| match &object[n] {
                            Value::String(s) => json!(s),
                            other => json!(other.to_string()),
                        })
                        .collect()
                })
                .collect()
        }
        "xlsx" => {
            use calamine::Reader;
            let mut book: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
            assert_eq!(book.sheet_names(), ["query_result"]);
            let range = book.worksheet_range("query_result").unwrap();
            range
                .rows()
                .map(|r| {
                    r.iter()
                        .map(|c| match c {
                            calamine::Data::String(s) => json!(s),
                            other => panic!("xlsx cells are strings in Kylin, got {other:?}"),
                        })
                        .collect()
                })
                .collect()
        }
        "parquet" => {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes.to_vec()),
            )
            .unwrap()
            .build()
            .unwrap();
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                for row in 0..batch.num_rows() {
                    rows.push(
                        batch
                            .columns()
                            .iter()
                            .map(|c| {
                                let options = polyquery::encode::EncodeOptions::default();
                                json!(
                                    polyquery::encode::cell_text(c.as_ref(), row, &options)
                                        .unwrap()
                                )
                            })
                            .collect(),
                    );
                }
            }
            rows
        }
        other => panic!("no reader for {other}"),
    }
}

/// Normalizes numbers so that JSON's `80.7556` and the sync API's `"80.7556"` compare equal.
fn normalized(rows: Vec<Vec<Value>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|c| {
                    let text = c.as_str().map(str::to_string).unwrap_or(c.to_string());
                    match text.parse::<f64>() {
                        Ok(n) if !text.contains('-') => n.to_string(),
                        _ => text,
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn async_flow_every_format_in_both_flavours_matches_the_sync_rows() {
    let k = Kylin::start().await;
    let (names, sync_rows) = k.sync_rows(SALES_SQL).await;
    assert_eq!(sync_rows.len(), 40);
    for (accept, id_key, file_status) in [
        (V2, "queryID", "filestatus"),
        (V4, "query_id", "file_status"),
    ] {
        for format in ["csv", "json", "xlsx", "parquet"] {
            let data = k
                .submit(
                    accept,
                    json!({"sql": SALES_SQL, "project": "learn_kylin", "format": format.to_uppercase(), "file_name": "sales"}),
                )
                .await;
            let id = data[id_key].as_str().unwrap().to_string();
            let settled = k.settle(accept, &id, "learn_kylin").await;
            assert_eq!(settled["status"], "SUCCESSFUL", "{format}: {settled}");
            let response = k
                .request(
                    Method::GET,
                    &format!("/async_query/{id}/result_download?project=learn_kylin"),
                    Some(accept),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{format}");
            let expected_type = if format == "xlsx" {
                "application/octet-stream;charset=utf-8".to_string()
            } else {
                format!("application/{format};charset=utf-8")
            };
            assert_eq!(response.headers()["content-type"], expected_type.as_str());
            assert_eq!(
                response.headers()["content-disposition"],
                format!("attachment; filename=\"sales.{format}\"").as_str()
            );
            let bytes = response.bytes().await.unwrap();
            let (_, size) = k
                .json(k.request(
                    Method::GET,
                    &format!("/async_query/{id}/{file_status}?project=learn_kylin"),
                    Some(accept),
                ))
                .await;
            assert_eq!(size["data"], json!(bytes.len()), "{format}");
            let (_, metadata) = k
                .json(k.request(
                    Method::GET,
                    &format!("/async_query/{id}/metadata?project=learn_kylin"),
                    Some(accept),
                ))
                .await;
            assert_eq!(metadata["data"][0], json!(names));
            let rows = read_back(format, &bytes, &names);
            assert_eq!(
                normalized(rows),
                normalized(sync_rows.clone()),
                "{format} in {accept}"
            );
        }
    }
}

/// curl's default `Accept: */*` (or none) reaches the v2 controller; `limit`/`offset` apply only
/// when the SQL has none of its own.
#[tokio::test]
async fn bare_requests_are_v2_and_limit_offset_apply() {
    let k = Kylin::start().await;
    for accept in [None, Some("*/*")] {
        let response = k
            .request(Method::POST, "/async_query", accept)
            .json(&json!({"sql": "select trans_id from kylin_sales order by trans_id", "project": "learn_kylin", "limit": 3, "offset": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], V2);
        let v: Value = response.json().await.unwrap();
        let id = v["data"]["queryID"].as_str().unwrap().to_string();
        assert_eq!(
            k.settle(V2, &id, "learn_kylin").await["status"],
            "SUCCESSFUL"
        );
        let csv = k
            .request(
                Method::GET,
                &format!("/async_query/{id}/result_download"),
                accept,
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(csv, "2\n3\n4\n");
    }
    let data = k
        .submit(
            V2,
            json!({"sql": "select trans_id from kylin_sales order by trans_id limit 1", "project": "learn_kylin", "limit": 3}),
        )
        .await;
    let id = data["queryID"].as_str().unwrap().to_string();
    k.settle(V2, &id, "learn_kylin").await;
    let (_, size) = k
        .json(k.request(
            Method::GET,
            &format!("/async_query/{id}/file_status"),
            Some(V2),
        ))
        .await;
    assert_eq!(size["data"], 2, "only the SQL's own LIMIT 1: \"0\\n\"");
}

#[tokio::test]
async fn csv_header_separator_and_quoting() {
    let k = Kylin::start().await;
    let sql = "select 'a|b' as \"x\", 'say \"hi\"' as \"y\", cast(null as varchar) as \"z\"";
    let data = k
        .submit(
            V4,
            json!({"sql": sql, "project": "learn_kylin", "separator": "|", "include_header": true, "encode": "GBK"}),
        )
        .await;
    let id = data["query_id"].as_str().unwrap().to_string();
    k.settle(V4, &id, "learn_kylin").await;
    let response = k
        .request(
            Method::GET,
            &format!("/async_query/{id}/result_download?project=learn_kylin"),
            Some(V4),
        )
        .send()
        .await
        .unwrap();
    // Kylin labels the charset it was asked for; the bytes are UTF-8 either way.
    assert_eq!(
        response.headers()["content-type"],
        "application/csv;charset=gbk"
    );
    let text = response.text().await.unwrap();
    assert_eq!(text, "x|y|z\n\"a|b\"|\"say \"\"hi\"\"\"|\n");
}

#[tokio::test]
async fn auth_failures_are_kylins_401() {
    let k = Kylin::start().await;
    let (status, v) = k
        .json(k.as_user(
            Method::GET,
            "/async_query/x/status",
            Some(V2),
            "ADMIN",
            "nope",
        ))
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        keys(&v),
        [
            "code",
            "data",
            "msg",
            "stacktrace",
            "exception",
            "url",
            "suggestion",
            "error_code"
        ]
    );
    assert_eq!(v["code"], "999");
    assert_eq!(v["error_code"], "KE-010003208");
    assert_eq!(
        v["exception"],
        "KE-010003208: Invalid username or password. Please check and try again."
    );
    let response = k
        .client
        .get(k.server.url("/kylin/api/projects"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error_code"], "KE-010003207");
    // Configured users replace the default account.
    let k = Kylin::with_users(vec![user("analyst", "pw", false)]).await;
    let (status, _) = k.json(k.request(Method::GET, "/projects", None)).await;
    assert_eq!(status, 401);
    let (status, _) = k
        .json(k.as_user(Method::GET, "/projects", None, "analyst", "pw"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn someone_elses_job_is_a_soft_401() {
    let k = Kylin::with_users(vec![
        user("alice", "a", false),
        user("bob", "b", false),
        user("root", "r", true),
    ])
    .await;
    let (_, v) = k
        .json(
            k.as_user(Method::POST, "/async_query", Some(V4), "alice", "a")
                .json(&json!({"sql": "select 1 as one", "project": "learn_kylin"})),
        )
        .await;
    let id = v["data"]["query_id"].as_str().unwrap().to_string();
    let path = |what: &str| format!("/async_query/{id}/{what}?project=learn_kylin");
    // alice waits for her own result.
    for _ in 0..500 {
        let (_, v) = k
            .json(k.as_user(Method::GET, &path("status"), Some(V4), "alice", "a"))
            .await;
        if v["data"]["status"] == "SUCCESSFUL" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, v) = k
        .json(k.as_user(Method::GET, &path("status"), Some(V4), "bob", "b"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"code": "401", "data": null, "msg": "Access denied. Only task submitters or admin users can get the query status"})
    );
    let (_, v) = k
        .json(k.as_user(Method::GET, &path("file_status"), Some(V4), "bob", "b"))
        .await;
    assert_eq!(
        (v["code"].clone(), v["data"].clone()),
        (json!("401"), json!(0))
    );
    let (status, v) = k
        .json(k.as_user(Method::GET, &path("result_download"), Some(V4), "bob", "b"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(v["error_code"], "KE-010024001");
    // An admin sees everyone's jobs.
    let (_, v) = k
        .json(k.as_user(Method::GET, &path("status"), Some(V4), "root", "r"))
        .await;
    assert_eq!(v["data"]["status"], "SUCCESSFUL");
    // Bulk delete is for admins.
    let (status, v) = k
        .json(k.as_user(Method::DELETE, "/async_query", Some(V4), "alice", "a"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(v["error_code"], "KE-010024001");
}

#[tokio::test]
async fn bad_input_gets_kylins_envelopes() {
    let k = Kylin::start().await;
    let post = |accept, body: &str| {
        k.request(Method::POST, "/async_query", Some(accept))
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    let (status, v) = k.json(post(V4, r#"{"sql":"select 1"}"#)).await;
    assert_eq!(status, 500);
    assert_eq!(
        v["msg"],
        "KE-010001002(Empty Project Name):Can’t find project information. Please select a project."
    );
    let (status, v) = k
        .json(post(V4, r#"{"sql":"select 1","project":"nope"}"#))
        .await;
    assert_eq!(
        (status.as_u16(), v["error_code"].clone()),
        (500, json!("KE-010001201"))
    );
    let (status, v) = k.json(post(V4, r#"{"project":"learn_kylin"}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["data"],
        json!({"query_id": null, "status": "FAILED", "info": "SQL can’t be empty. Please check and try again."})
    );
    let (status, v) = k
        .json(post(
            V4,
            r#"{"sql":"select 1","project":"learn_kylin","format":"pdf"}"#,
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"code": "KE-020040001(Asynchronous query illegal parameters)", "data": {"query_id": null, "status": "FAILED", "info": "Format pdf unsupported. Only [csv, json, xlsx, parquet] are supported"}, "msg": ""})
    );
    let (_, v) = k
        .json(post(
            V2,
            r#"{"sql":"select 1","project":"learn_kylin","encode":"latin1"}"#,
        ))
        .await;
    assert_eq!(
        v["code"],
        "KE-020040001(Asynchronous query illegal parameters)"
    );
    assert_eq!(v["data"]["queryID"], Value::Null);
    let (status, v) = k.json(post(V2, "select 1")).await;
    assert_eq!(status, 400);
    assert_eq!(v["error_code"], "KE-010000003");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .starts_with("KE-010000003(Invalid Parameter):JSON parse error")
    );
    // Unknown and malformed ids.
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-an-id"] {
        let (status, v) = k
            .json(k.request(
                Method::GET,
                &format!("/async_query/{id}/status?project=learn_kylin"),
                Some(V4),
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            v["data"],
            json!({"query_id": id, "status": "MISSING", "info": "query status is lost"})
        );
        let (status, v) = k
            .json(k.request(
                Method::GET,
                &format!("/async_query/{id}/metadata?project=learn_kylin"),
                Some(V4),
            ))
            .await;
        assert_eq!(
            (status.as_u16(), v["error_code"].clone()),
            (500, json!("KE-020040001"))
        );
        let (status, v) = k
            .json(k.request(
                Method::DELETE,
                &format!("/async_query/{id}?project=learn_kylin"),
                Some(V4),
            ))
            .await;
        assert_eq!(
            (status.as_u16(), v["error_code"].clone()),
            (500, json!("KE-010031301"))
        );
    }
    let (status, v) = k
        .json(k.request(
            Method::GET,
            &format!("/async_query/{unknown}/status"),
            Some(V4),
        ))
        .await;
    assert_eq!(
        (status.as_u16(), v["error_code"].clone()),
        (500, json!("KE-010031302"))
    );
    // A download before the result exists.
    let data = k
        .submit(
            V4,
            json!({"sql": "select pq_sleep(1500) as s", "project": "learn_kylin"}),
        )
        .await;
    assert_eq!(data["status"], "RUNNING");
    assert_eq!(data["info"], "query still running");
    let id = data["query_id"].as_str().unwrap();
    let (status, v) = k
        .json(k.request(
            Method::GET,
            &format!("/async_query/{id}/result_download?project=learn_kylin"),
            Some(V4),
        ))
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        v["msg"],
        "KE-020040001(Asynchronous query illegal parameters):Can’t find the query by this query ID in this project. Please check and try again."
    );
    let (status, v) = k
        .json(k.request(
            Method::GET,
            &format!("/async_query/{id}/result_download?project=learn_kylin&includeHeader=true"),
            Some(V4),
        ))
        .await;
    assert_eq!(
        (status.as_u16(), v["error_code"].clone()),
        (500, json!("KE-010031304"))
    );
    // Bulk delete: one parameter only, and a bad time.
    let (_, v) = k
        .json(k.request(Method::DELETE, "/async_query?project=learn_kylin", Some(V4)))
        .await;
    assert_eq!(v["data"], false);
    let (status, v) = k
        .json(k.request(
            Method::DELETE,
            "/async_query?project=learn_kylin&older_than=yesterday",
            Some(V4),
        ))
        .await;
    assert_eq!(
        (status.as_u16(), v["error_code"].clone()),
        (500, json!("KE-010031303"))
    );
    // application/json on the async API is not acceptable.
    let (status, _) = k
        .json(k.request(
            Method::GET,
            &format!("/async_query/{id}/status"),
            Some("application/json"),
        ))
        .await;
    assert_eq!(status, 406);
}

#[tokio::test]
async fn stop_really_stops_and_delete_forgets() {
    let k = Kylin::start().await;
    let data = k
        .submit(
            V4,
            json!({"sql": "select pq_sleep(30000) as s", "project": "learn_kylin"}),
        )
        .await;
    let id = data["query_id"].as_str().unwrap().to_string();
    let (status, v) = k
        .json(k.request(
            Method::DELETE,
            &format!("/async_query/stop/{id}?project=learn_kylin"),
            Some(V4),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"code": "000", "data": "", "msg": format!("Async Query（id={id}） will be canceled")})
    );
    let settled = k.settle(V4, &id, "learn_kylin").await;
    assert_eq!(settled["status"], "FAILED");
    let (_, v) = k
        .json(k.request(
            Method::DELETE,
            &format!("/async_query/stop/{id}?project=learn_kylin"),
            Some(V4),
        ))
        .await;
    assert_eq!(
        v,
        json!({"code": "999", "data": "Query is not running", "msg": "Query is not running. please check"})
    );
    // Delete by id, then it is gone.
    let (_, v) = k
        .json(k.request(
            Method::DELETE,
            &format!("/async_query/{id}?project=learn_kylin"),
            Some(V4),
        ))
        .await;
    assert_eq!(v, json!({"code": "000", "data": true, "msg": ""}));
    let settled = k.settle(V4, &id, "learn_kylin").await;
    assert_eq!(settled["status"], "MISSING");
    // Bulk delete by age keeps younger results.
    let data = k
        .submit(
            V4,
            json!({"sql": "select 1 as one", "project": "learn_kylin"}),
        )
        .await;
    let young = data["query_id"].as_str().unwrap().to_string();
    k.settle(V4, &young, "learn_kylin").await;
    let (_, v) = k
        .json(k.request(
            Method::DELETE,
            "/async_query?project=learn_kylin&older_than=2000-01-01%2000:00:00",
            Some(V4),
        ))
        .await;
    assert_eq!(v["data"], true);
    assert_eq!(
        k.settle(V4, &young, "learn_kylin").await["status"],
        "SUCCESSFUL"
    );
}

#[tokio::test]
async fn contract_cases_replay() {
    let k = Kylin::start().await;
    let dir = polyquery::contract::default_dir("kylin");
    let outcomes = polyquery::contract::replay(&dir, &k.server.url(""))
        .await
        .unwrap();
    assert!(outcomes.len() >= 5, "{outcomes:?}");
    let failures: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kylinpy_client_against_polyquery() {
    let k = Kylin::start().await;
    let python = crate::support::sdk_python();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/kylin/kylinpy_check.py"
    );
    let url = k.server.url("");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(url)
        .output()
        .await
        .expect("python must run");
    assert!(
        output.status.success(),
        "kylinpy check failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- hardening (issue #10) --------------------------------------------------------------------

#[tokio::test]
async fn calcite_sql_ten_times_too_deep_is_kylins_failure_and_the_server_stays_up() {
    let k = Kylin::start().await;
    let sql = crate::support::too_deep();
    let (status, v) = k
        .json(
            k.request(Method::POST, "/query", Some(V4))
                .json(&json!({"sql": sql, "project": "learn_kylin"})),
        )
        .await;
    // Kylin answers a query that cannot run as HTTP 200 with isException (its own shape).
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["isException"], true, "{v}");
    let message = v["data"]["exceptionMessage"].as_str().unwrap();
    assert!(message.contains("levels deep"), "{message}");
    let data = k
        .submit(V2, json!([{"sql": sql, "project": "learn_kylin"}]))
        .await;
    assert_eq!(data["status"], "FAILED", "{data}");
    assert!(
        data["info"].as_str().unwrap().contains("levels deep"),
        "{data}"
    );
    crate::support::assert_alive(&k.server).await;
    let (_, rows) = k.sync_rows(&crate::support::or_chain(900)).await;
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn a_cte_cannot_smuggle_a_table_past_the_project() {
    let k = Kylin::start().await;
    let sql = r#"select count(*) from (with "Testing1K" as (select 1 as x) select x from "Testing1K") q cross join "Testing1K""#;
    let (status, v) = k
        .json(
            k.request(Method::POST, "/query", Some(V4))
                .json(&json!({"sql": sql, "project": "learn_kylin"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["isException"], true, "{v}");
    let message = v["data"]["exceptionMessage"].as_str().unwrap();
    assert!(
        message.contains("Object 'Testing1K' not found"),
        "{message}"
    );
}

#[tokio::test]
async fn a_download_name_is_sanitised_and_quoted() {
    let k = Kylin::start().await;
    for (file_name, expected) in [
        (
            "../../../../etc/passwd",
            "attachment; filename=\"passwd.csv\"",
        ),
        (
            "x\"; filename=evil.exe",
            "attachment; filename=\"x__ filename=evil.exe.csv\"",
        ),
    ] {
        let data = k
            .submit(
                V4,
                json!({"sql": "select 1 as x", "project": "learn_kylin", "format": "csv",
                       "file_name": file_name}),
            )
            .await;
        let id = data["query_id"].as_str().unwrap().to_string();
        k.settle(V4, &id, "learn_kylin").await;
        let response = k
            .request(
                Method::GET,
                &format!("/async_query/{id}/result_download?project=learn_kylin"),
                Some(V4),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-disposition"], expected);
    }
}
