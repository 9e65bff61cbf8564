//! `SqlDesignApi`: `PUT /api/Sql/pretty` (the SQL laid out one clause a line),
//! `PUT /api/Sql/extractscalarparameters` (the `@name` scalar parameters a query uses) and the
//! view design pair `toviewdesign` / `fromviewdesign` (a `Sys.Admin.SetupView` script ↔ its parts).
//! ApplicationMetadataApi and the health check's `/fakeNodeReclaim` live here too: they describe
//! the service rather than run queries.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::params::QueryParams;
use super::script::CLAUSES;
use super::{Answer, LuminesceError, LuminesceFront, sql};
use crate::wire as http;

/// Whether a keyword starts a line of its own (at the outermost level of a statement): the
/// clauses, and the statement and join openers.
fn starts_line(keyword: Keyword) -> bool {
    CLAUSES.contains(&keyword)
        || matches!(
            keyword,
            Keyword::SELECT | Keyword::WITH | Keyword::JOIN | Keyword::LEFT | Keyword::INNER
        )
}

/// The SQL with keywords upper-cased, runs of blanks made one space, one statement a paragraph
/// and each clause a line. Comments and text literals are kept as written; what does not tokenize
/// is answered as it came, trimmed ("even if it doesn't parse an attempt will be made").
pub fn pretty(text: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&SQLiteDialect {}, text).tokenize() else {
        return text.trim().to_string();
    };
    let mut out = String::new();
    let mut depth = 0usize;
    let mut previous_joins = false;
    for token in tokens {
        match &token {
            Token::Whitespace(Whitespace::SingleLineComment { .. }) => {
                out.push_str(token.to_string().trim_end());
                out.push('\n');
                continue;
            }
            Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                out.push_str(&token.to_string());
                continue;
            }
            Token::Whitespace(_) => {
                if !out.is_empty() && !out.ends_with([' ', '\n', '(']) {
                    out.push(' ');
                }
                continue;
            }
            Token::SemiColon => {
                // Not past a line comment's end: the `;` would join the comment.
                out.truncate(out.trim_end_matches(' ').len());
                out.push_str(";\n\n");
                depth = 0;
                continue;
            }
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        let rendered = match &token {
            Token::Word(w) if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword => {
                let clause = depth == 0 && starts_line(w.keyword);
                // `LEFT JOIN`: the line breaks before LEFT, not again before JOIN.
                if clause && !(w.keyword == Keyword::JOIN && previous_joins) {
                    out.truncate(out.trim_end_matches(' ').len());
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
                previous_joins = matches!(w.keyword, Keyword::LEFT | Keyword::INNER);
                w.value.to_uppercase()
            }
            other => {
                previous_joins = false;
                other.to_string()
            }
        };
        out.push_str(&rendered);
    }
    out.trim().to_string()
}

/// `ScalarParameter` of the SDK: the name, its DataType and no default.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScalarParameter {
    name: String,
    #[serde(rename = "type")]
    data_type: &'static str,
    value: Option<String>,
}

/// `ApiEndpoint` of the SDK's `ServiceApiEndpoints`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiEndpoint {
    operation: &'static str,
    http_method: &'static str,
    path: &'static str,
    status: &'static str,
    summary: &'static str,
}

/// The operations served, for `/api/metadata/endpoints`.
const ENDPOINTS: [(&str, &str, &str, &str); 29] = [
    (
        "StartQuery",
        "PUT",
        "/api/SqlBackground",
        "Starts a background query",
    ),
    (
        "ListQueries",
        "GET",
        "/api/SqlBackground",
        "Lists the caller's queries",
    ),
    (
        "GetProgressOf",
        "GET",
        "/api/SqlBackground/{executionId}",
        "A query's progress",
    ),
    (
        "CancelQuery",
        "DELETE",
        "/api/SqlBackground/{executionId}",
        "Cancels or clears a query",
    ),
    (
        "FetchQueryResultCsv",
        "GET",
        "/api/SqlBackground/{executionId}/csv",
        "The result as CSV",
    ),
    (
        "FetchQueryResultJsonProper",
        "GET",
        "/api/SqlBackground/{executionId}/jsonProper",
        "The result as JSON",
    ),
    (
        "FetchQueryResultHistogram",
        "GET",
        "/api/SqlBackground/{executionId}/histogram",
        "A histogram of the result",
    ),
    (
        "SaveQueryResultToDrive",
        "GET",
        "/api/SqlBackground/{executionId}/drive",
        "Saves the result to Drive",
    ),
    (
        "GetHistoricalFeedback",
        "GET",
        "/api/SqlBackground/{executionId}/historicalFeedback",
        "A query's whole feedback log",
    ),
    (
        "PutByQueryCsv",
        "PUT",
        "/api/Sql/{format}",
        "Runs a query and answers its result",
    ),
    (
        "GetByQueryCsv",
        "GET",
        "/api/Sql/{format}/{query}",
        "Runs a one-line query and answers its result",
    ),
    ("PutQueryToFormat", "PUT", "/api/Sql/pretty", "Lays SQL out"),
    (
        "PutSqlToViewDesign",
        "PUT",
        "/api/Sql/toviewdesign",
        "The parts of a view's setup script",
    ),
    (
        "PutViewDesignToSql",
        "PUT",
        "/api/Sql/fromviewdesign",
        "A view's setup script from its parts",
    ),
    (
        "StartCustomQueries",
        "PUT",
        "/api/MultiQueryBackground/custom",
        "Starts a set of queries",
    ),
    (
        "GetProgressOfMultiQuery",
        "GET",
        "/api/MultiQueryBackground/{executionId}",
        "A set's progress",
    ),
    (
        "CancelMultiQuery",
        "DELETE",
        "/api/MultiQueryBackground/{executionId}",
        "Cancels or clears a set",
    ),
    (
        "ListCustomQueries",
        "GET",
        "/api/MultiQueryBackground",
        "Lists the caller's sets",
    ),
    ("ListViews", "GET", "/api/View/list", "Lists the views"),
    (
        "UpsertView",
        "PUT",
        "/api/View/update",
        "Sets a view up from its script",
    ),
    ("DeleteView", "DELETE", "/api/View/update", "Deletes a view"),
    (
        "GetViewCreationSql",
        "PUT",
        "/api/View/sql",
        "The script that set a view up",
    ),
    (
        "PutSqlToExtractScalarParameters",
        "PUT",
        "/api/Sql/extractscalarparameters",
        "The scalar parameters of SQL",
    ),
    (
        "GetCatalog",
        "GET",
        "/api/Catalog",
        "Every field of every table",
    ),
    (
        "GetFields",
        "GET",
        "/api/Catalog/fields",
        "Fields of the tables",
    ),
    (
        "GetProviders",
        "GET",
        "/api/Catalog/providers",
        "The tables",
    ),
    (
        "ListApiEndpoints",
        "GET",
        "/api/metadata/endpoints",
        "These endpoints",
    ),
    (
        "GetServicesAsAccessControlledResources",
        "GET",
        "/api/metadata/access/resources",
        "Access-controlled resources",
    ),
    (
        "FakeNodeReclaim",
        "GET",
        "/fakeNodeReclaim",
        "Health check of node reclamation",
    ),
];

/// The SDK's `ConvertToViewData`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConvertToViewData {
    query: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    documentation_link: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    view_parameters: Vec<DesignParameter>,
    #[serde(default, deserialize_with = "null_as_default")]
    other_parameters: std::collections::BTreeMap<String, Option<String>>,
    #[serde(default)]
    starting_variable_name: Option<String>,
}

/// The SDK's `ViewParameter`: one `--parameters` line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DesignParameter {
    name: String,
    data_type: String,
    value: String,
    #[serde(default)]
    is_table_data_mandatory: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

/// A JSON `null` read as the type's default (the SDK sends nulls for unset lists and maps).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl LuminesceFront {
    /// `PUT /api/Sql/pretty`
    pub(super) fn pretty(&self, body: &str, q: &QueryParams) -> Answer {
        q.int("maxLineWidth")?;
        Ok(http::json(StatusCode::OK, &pretty(body)))
    }

    /// `PUT /api/Sql/extractscalarparameters`: each `@name` the query uses, as Text with no value.
    pub(super) fn extract_scalar_parameters(&self, body: &str) -> Answer {
        let names = sql::parameters(body, self.engine.executor().catalog(), &self.views.all())?;
        let parameters: Vec<ScalarParameter> = names
            .into_iter()
            .map(|name| ScalarParameter {
                name,
                data_type: "Text",
                value: None,
            })
            .collect();
        Ok(http::json(StatusCode::OK, &parameters))
    }

    /// `PUT /api/Sql/toviewdesign`: the view a `Sys.Admin.SetupView` script sets up, in parts.
    pub(super) fn sql_to_view_design(&self, body: &str) -> Answer {
        let compiled = super::script::compile_with(body, &[])?;
        let Some(setup) = compiled.views.into_iter().next() else {
            return Err(LuminesceError::bad_request(
                "the SQL sets up no view: it has no use Sys.Admin.SetupView … enduse",
            ));
        };
        Ok(http::json(
            StatusCode::OK,
            &ConvertToViewData {
                query: setup.sql,
                name: setup.name,
                description: setup.description,
                documentation_link: None,
                view_parameters: setup
                    .parameters
                    .into_iter()
                    .map(|p| DesignParameter {
                        name: p.name,
                        data_type: p.data_type,
                        value: p.default,
                        is_table_data_mandatory: Some(true),
                        description: p.description,
                    })
                    .collect(),
                other_parameters: std::collections::BTreeMap::new(),
                starting_variable_name: setup.variable,
            },
        ))
    }

    /// `PUT /api/Sql/fromviewdesign`: the script that sets a view up, from its parts. The script is
    /// compiled before it is answered, so what comes back runs.
    pub(super) fn view_design_to_sql(&self, body: &[u8]) -> Answer {
        let design: ConvertToViewData = serde_json::from_slice(body).map_err(|e| {
            LuminesceError::bad_request(format!(
                "the body must be a ConvertToViewData as JSON: {e}"
            ))
        })?;
        if let Some(key) = design.other_parameters.keys().next() {
            return Err(LuminesceError::bad_parameter(
                "otherParameters",
                format!("the option '{key}' is not one polyquery's views take"),
            ));
        }
        super::views::valid_name(&design.name).map_err(LuminesceError::bad_request)?;
        let variable = design.starting_variable_name.as_deref().unwrap_or("x");
        let one_line = |what: &str, text: &str| {
            if text.contains(['\n', '\r']) {
                Err(LuminesceError::bad_request(format!(
                    "the {what} must be one line"
                )))
            } else {
                Ok(())
            }
        };
        one_line("startingVariableName", variable)?;
        let mut script = format!(
            "@{variable} = use Sys.Admin.SetupView\n--provider={}\n",
            design.name
        );
        if let Some(description) = design.description.as_deref().filter(|d| !d.is_empty()) {
            one_line("description", description)?;
            script.push_str(&format!("--description={description}\n"));
        }
        if !design.view_parameters.is_empty() {
            script.push_str("--parameters\n");
        }
        for p in &design.view_parameters {
            // One line of comma-separated fields: only the last (the description) may hold commas.
            for (what, text) in [
                ("name", &p.name),
                ("dataType", &p.data_type),
                ("value", &p.value),
            ] {
                one_line(what, text)?;
                if text.contains(',') {
                    return Err(LuminesceError::bad_parameter(
                        "viewParameters",
                        format!("a parameter's {what} cannot hold a comma: '{text}'"),
                    ));
                }
            }
            let description = p.description.as_deref().unwrap_or("");
            one_line("description", description)?;
            let mandatory = p.is_table_data_mandatory.unwrap_or(true);
            script.push_str(&format!(
                "{},{},{},{mandatory},{description}\n",
                p.name, p.data_type, p.value
            ));
        }
        script.push_str(&format!(
            "----\n{}\nenduse;\nselect * from @{variable}",
            design.query.trim()
        ));
        let compiled = super::script::compile_with(&script, &[])?;
        let names: Vec<&str> = compiled.views.iter().map(|v| v.name.as_str()).collect();
        if names != [design.name.as_str()] {
            return Err(LuminesceError::bad_request(
                "the parts do not make one view's setup script (is the query whole?)",
            ));
        }
        Ok(http::json(StatusCode::OK, &script))
    }

    /// `GET /api/metadata/endpoints` and `/api/metadata/access/resources`.
    pub(super) fn metadata(&self, part: &str) -> Answer {
        if part.eq_ignore_ascii_case("endpoints") {
            let endpoints: Vec<ApiEndpoint> = ENDPOINTS
                .iter()
                .map(|&(operation, http_method, path, summary)| ApiEndpoint {
                    operation,
                    http_method,
                    path,
                    status: "Stable",
                    summary,
                })
                .collect();
            return Ok(http::json(
                StatusCode::OK,
                &serde_json::json!({"application": "honeycomb", "endpoints": endpoints}),
            ));
        }
        if part.eq_ignore_ascii_case("access/resources") {
            // No entitlements here: every caller may use every endpoint.
            return Ok(http::json(
                StatusCode::OK,
                &serde_json::json!({"values": []}),
            ));
        }
        Err(LuminesceError::no_such_path(format!(
            "GET /api/metadata/{part}"
        )))
    }

    /// `GET /fakeNodeReclaim`: a single process has no nodes to reclaim; it says it is healthy.
    pub(super) fn fake_node_reclaim(&self, q: &QueryParams) -> Answer {
        let seconds = q.int("secondsUntilReclaim")?;
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"healthy": true, "secondsUntilReclaim": seconds, "nodesReclaimed": 0}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_puts_each_clause_on_a_line() {
        assert_eq!(
            pretty(
                "@x = select a,  b from t where a > 1 -- keep\n; select count(*) from @x left join u on (select 1 from v) = 1"
            ),
            "@x =\nSELECT a, b\nFROM t\nWHERE a > 1 -- keep\n;\n\nSELECT COUNT(*)\nFROM @x\nLEFT JOIN u ON (SELECT 1 FROM v) = 1"
        );
        assert_eq!(pretty("select 'a  b'"), "SELECT 'a  b'");
    }
}
