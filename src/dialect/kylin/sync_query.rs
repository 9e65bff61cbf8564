//! The synchronous side kylinpy and the JDBC drivers use: `POST /query`, `/user/authentication`,
//! `/projects` and `/tables_and_columns`. Raw bodies for `application/json` or no Accept (Kylin 4,
//! kylinpy v1), enveloped for v2 and v4.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, StringArray};
use serde_json::{Map, Value, json};

use super::errors::{self, KeCode, KylinError, text};
use super::sql::{Project, SCHEMA, calcite_message, check_planned_scope, prepare};
use super::wire::{CellStyle, ColumnMeta, Flavour, SqlResponse, sql_type};
use super::{Call, KylinJob, Reply, State, enveloped};
use crate::engine::{JobSpec, JobState, ParamValue, Params};
use crate::sql::guard::cpu_bound;

/// `POST /query`. A query's own failure is HTTP 200 with `isException` (Kylin 5); a bad request is
/// an error envelope.
pub async fn query(state: &Arc<State>, call: &Call, flavour: Flavour) -> Reply {
    let started = Instant::now();
    let body = call.json_object()?;
    let project_name = body
        .get("project")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| KylinError::new(KeCode::EmptyProjectName, text::EMPTY_PROJECT))?;
    let project = Project::find(project_name).ok_or_else(|| {
        KylinError::new(
            KeCode::ProjectNotFound,
            text::project_not_found(project_name),
        )
    })?;
    let sql = body
        .get("sql")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let limit = unsigned(&body, "limit");
    let offset = unsigned(&body, "offset");
    let server = call.host.clone();
    let elapsed = || started.elapsed().as_millis() as i64;
    let failed = |message: String| {
        enveloped(
            flavour,
            SqlResponse::failure(message, elapsed(), None, server.clone()),
        )
    };
    let catalog = state.engine.executor().catalog();
    let prepared = match cpu_bound(|| prepare(&sql, project, catalog, limit, offset)) {
        Ok(p) => p,
        Err(e) => return failed(e.message),
    };
    if let Err(e) = check_planned_scope(&state.engine, &prepared, project).await {
        return failed(e.message);
    }
    let params = match parameters(body.get("params")) {
        Ok(p) => p,
        Err(message) => return failed(message),
    };
    if params.positional.len() != prepared.parameters {
        return failed(format!(
            "the SQL has {} parameter(s) but {} value(s) were given",
            prepared.parameters,
            params.positional.len()
        ));
    }
    let mut spec = JobSpec::new(sql.clone(), call.principal.principal.clone(), "kylin");
    spec.exec_sql = prepared.exec_sql;
    spec.params = params;
    spec.set_meta(&KylinJob {
        project: project.name.into(),
        file: None,
    });
    let id = match state.engine.submit(spec).await {
        Ok(id) => id,
        Err(e) if e.kind == crate::engine::ErrorKind::Busy => return Err(errors::from_engine(e)),
        Err(e) => return failed(e.message),
    };
    // Answer before the server's own request timeout does, so the job is not left behind.
    let wait = state.limits.wait_budget();
    let record = crate::wire::wait_within(&state.engine, id, &state.limits)
        .await
        .map_err(errors::from_engine)?;
    let answer = match record.state {
        JobState::Succeeded => match rows(state, id) {
            Ok((metas, results)) => enveloped(
                flavour,
                SqlResponse::success(metas, results, elapsed(), id.to_uuid(), server.clone()),
            ),
            Err(e) => failed(e),
        },
        JobState::Queued | JobState::Running => {
            let mut response = SqlResponse::failure(
                format!("the query did not finish within {} s", wait.as_secs()),
                elapsed(),
                Some(id.to_uuid()),
                server.clone(),
            );
            response.is_timeout = true;
            response.timeout = true;
            enveloped(flavour, response)
        }
        _ => failed(
            record
                .error
                .map(|e| calcite_message(&e.message, &sql))
                .unwrap_or_else(|| "the query failed".into()),
        ),
    };
    // A sync query's result lives in its response only.
    let _ = state.engine.remove(id);
    answer
}

/// `results`: rows of Kylin result strings, null as `None`.
type ResultRows = Vec<Vec<Option<String>>>;

/// The finished result as `columnMetas` and Kylin's result strings.
fn rows(state: &State, id: crate::engine::JobId) -> Result<(Vec<ColumnMeta>, ResultRows), String> {
    let reader = state.engine.read(id).map_err(|e| e.message)?;
    let schema = reader.schema();
    let metas = schema.fields().iter().map(|f| ColumnMeta::of(f)).collect();
    let style = CellStyle::new(schema.fields());
    let mut results = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let text = style.text_batch(&batch).map_err(|e| e.to_string())?;
        let columns: Vec<&StringArray> = text.columns().iter().map(|c| c.as_string()).collect();
        for row in 0..text.num_rows() {
            results.push(
                columns
                    .iter()
                    .map(|c| c.is_valid(row).then(|| c.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok((metas, results))
}

fn unsigned(body: &Map<String, Value>, key: &str) -> u64 {
    match body.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// JDBC `StatementParameter`s (`{"className":"java.lang.Integer","value":"1"}`) as engine values.
fn parameters(params: Option<&Value>) -> Result<Params, String> {
    let mut out = Params::default();
    let Some(Value::Array(items)) = params else {
        return Ok(out);
    };
    for item in items {
        let class = item
            .get("className")
            .and_then(Value::as_str)
            .unwrap_or("java.lang.String");
        let value = match item.get("value") {
            None | Some(Value::Null) => {
                out.positional.push(ParamValue::Null);
                continue;
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let short = class.rsplit('.').next().unwrap_or(class);
        let bad = || format!("parameter value {value:?} is not a {short}");
        let converted = match short {
            "Integer" | "Long" | "Short" | "Byte" | "BigInteger" => {
                json!(value.trim().parse::<i64>().map_err(|_| bad())?)
            }
            "Double" | "Float" | "BigDecimal" => {
                json!(value.trim().parse::<f64>().map_err(|_| bad())?)
            }
            "Boolean" => json!(value.trim().eq_ignore_ascii_case("true")),
            _ => Value::String(value),
        };
        out.positional.push(converted);
    }
    Ok(out)
}

/// `GET|POST /user/authentication`.
pub fn authentication(call: &Call, flavour: Flavour) -> Reply {
    let p = &call.principal;
    let authorities: Vec<Value> = super::auth::authorities(p)
        .into_iter()
        .map(|a| json!({ "authority": a }))
        .collect();
    match flavour {
        Flavour::Raw => super::json_response(
            flavour,
            &json!({
                "userDetails": {
                    "username": p.principal.name(),
                    "password": null,
                    "authorities": authorities,
                    "accountNonExpired": true,
                    "accountNonLocked": true,
                    "credentialsNonExpired": true,
                    "enabled": true,
                }
            }),
        ),
        Flavour::V2 | Flavour::V4(_) => enveloped(
            flavour,
            json!({
                "username": p.principal.name(),
                "authorities": authorities,
                "disabled": false,
                "locked": false,
                "uuid": name_uuid(&p.principal.name()),
                "last_modified": 0,
                "create_time": 0,
                "version": "4.0.0.0",
                "mvcc": 0,
                "locked_time": 0,
                "wrong_time": 0,
                "first_login_failed_time": 0,
            }),
        ),
    }
}

/// `GET /projects`.
pub fn projects(state: &Arc<State>, _call: &Call, flavour: Flavour) -> Reply {
    let catalog = state.engine.executor().catalog();
    let list: Vec<Value> = super::PROJECTS
        .iter()
        .map(|p| {
            let tables: Vec<String> = p
                .tables(catalog)
                .map(|t| format!("{SCHEMA}.{}", t.name))
                .collect();
            json!({
                "uuid": name_uuid(p.name),
                "name": p.name,
                "owner": "ADMIN",
                "status": "ENABLED",
                "description": "",
                "tables": tables,
            })
        })
        .collect();
    match flavour {
        Flavour::Raw => super::json_response(flavour, &list),
        Flavour::V2 | Flavour::V4(_) => {
            let total = list.len();
            enveloped(
                flavour,
                json!({ "value": list, "offset": 0, "limit": total, "total_size": total }),
            )
        }
    }
}

/// `GET /tables_and_columns?project=` (and `/query/tables_and_columns`): JDBC `TableMeta`s.
pub fn tables_and_columns(state: &Arc<State>, call: &Call, flavour: Flavour) -> Reply {
    let name = call
        .param("project")
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| KylinError::new(KeCode::EmptyProjectName, text::EMPTY_PROJECT))?;
    let project = Project::find(name)
        .ok_or_else(|| KylinError::new(KeCode::ProjectNotFound, text::project_not_found(name)))?;
    let catalog = state.engine.executor().catalog();
    let tables: Vec<Value> = project
        .tables(catalog)
        .map(|t| {
            let columns: Vec<Value> = t
                .schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let ty = sql_type(f.data_type());
                    json!({
                        "table_CAT": "defaultCatalog",
                        "table_SCHEM": SCHEMA,
                        "table_NAME": t.name,
                        "column_NAME": f.name(),
                        "data_TYPE": ty.jdbc,
                        "type_NAME": ty.text(),
                        "column_SIZE": ty.precision,
                        "buffer_LENGTH": -1,
                        "decimal_DIGITS": ty.scale,
                        "num_PREC_RADIX": 10,
                        "nullable": i32::from(f.is_nullable()),
                        "remarks": null,
                        "column_DEF": null,
                        "sql_DATA_TYPE": -1,
                        "sql_DATETIME_SUB": -1,
                        "char_OCTET_LENGTH": ty.precision,
                        "ordinal_POSITION": i + 1,
                        "is_NULLABLE": if f.is_nullable() { "YES" } else { "NO" },
                        "scope_CATLOG": null,
                        "scope_SCHEMA": null,
                        "scope_TABLE": null,
                        "source_DATA_TYPE": -1,
                        "iS_AUTOINCREMENT": "NO",
                    })
                })
                .collect();
            json!({
                "table_CAT": "defaultCatalog",
                "table_SCHEM": SCHEMA,
                "table_NAME": t.name,
                "table_TYPE": "TABLE",
                "remarks": t.description,
                "type_CAT": null,
                "type_SCHEM": null,
                "type_NAME": null,
                "self_REFERENCING_COL_NAME": null,
                "ref_GENERATION": null,
                "columns": columns,
            })
        })
        .collect();
    enveloped(flavour, tables)
}

/// A stable UUID for a name (users and projects have no stored identity here).
fn name_uuid(name: &str) -> String {
    // FNV-1a, 128-bit.
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    uuid::Uuid::from_u128(hash).to_string()
}
