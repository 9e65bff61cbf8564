"""Drives polyquery's Luminesce API classes beyond SqlBackground with the official luminesce-sdk.

Usage: python api_classes_test.py http://127.0.0.1:PORT

SqlExecutionApi (synchronous queries, body and path forms, every format), CurrentTableFieldCatalogApi
(the catalog with the columns lumipy reads), SqlDesignApi (pretty, extractscalarparameters, the view design pair; the rest a 501),
ApplicationMetadataApi, HealthCheckingEndpointApi, HistoricallyExecutedQueriesApi, MultiQueryExecutionApi (custom sets) and ViewManagementApi (views set up by Sys.Admin.SetupView). Exits non-zero with a message naming the first mismatch.
"""

import ast
import csv
import io
import json
import sqlite3
import sys
import tempfile
import time

import openpyxl
import pyarrow.parquet as pq
from luminesce import (
    ApplicationMetadataApi,
    CurrentTableFieldCatalogApi,
    HealthCheckingEndpointApi,
    HistoricallyExecutedQueriesApi,
    MultiQueryExecutionApi,
    SqlDesignApi,
    SqlBackgroundExecutionApi,
    SqlExecutionApi,
    ViewManagementApi,
)
from luminesce.exceptions import ApiException, NotFoundException
from luminesce.models import CustomMultiQueryItem, CustomMultiQueryRequest, ViewParameter
from luminesce.extensions import ArgsConfigurationLoader, SyncApiClientFactory

BASE = sys.argv[1].rstrip("/")
factory = SyncApiClientFactory(
    config_loaders=[ArgsConfigurationLoader(api_url=BASE + "/honeycomb", access_token="api-classes")]
)
sql_api = factory.build(SqlExecutionApi)
SQL = "@x = select [Int], Str from Testing1K where [Int] <= @n; select [Int], Str, length(Str) from @x"
ROWS = [["1", "Str1", "4"], ["2", "Str2", "4"], ["3", "Str3", "4"]]


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")


# The SQL in the body, scalar parameters flattened into the query string.
text = sql_api.put_by_query_csv(body=SQL, scalar_parameters={"n": "3"}, query_name="sync csv")
check("put csv", list(csv.reader(io.StringIO(text))), [["Int", "Str", "length(Str)"]] + ROWS)
text = sql_api.put_by_query_pipe(body=SQL, scalar_parameters={"n": "2"})
check("put pipe", text.splitlines(), ["Int|Str|length(Str)", "1|Str1|4", "2|Str2|4"])
proper = sql_api.put_by_query_json(body=SQL, scalar_parameters={"n": "1"}, json_proper=True)
# The SDK parses a JSON array body and hands back its Python repr.
check("put json proper", ast.literal_eval(proper), [{"Int": 1, "Str": "Str1", "length(Str)": 4}])
legacy = sql_api.put_by_query_json(body=SQL, scalar_parameters={"n": "1"})
check("put json", json.loads(legacy), [{"Int": 1, "Str": "Str1", "length(Str)": 4}])
xml = sql_api.put_by_query_xml(body=SQL, scalar_parameters={"n": "1"})
check("put xml mentions the row", "Str1" in xml, True)

# The SQL in the path (one line), every binary format.
one_line = "select [Int], Str from Testing1K where [Int] <= 2"
text = sql_api.get_by_query_csv(one_line, delimiter=";")
check("get csv", text.splitlines(), ["Int;Str", "1;Str1", "2;Str2"])
with tempfile.TemporaryDirectory() as d:
    path = d + "/r.parquet"
    with open(path, "wb") as f:
        f.write(sql_api.get_by_query_parquet(one_line))
    check("get parquet", pq.read_table(path).to_pylist(), [{"Int": 1, "Str": "Str1"}, {"Int": 2, "Str": "Str2"}])
    path = d + "/r.xlsx"
    with open(path, "wb") as f:
        f.write(sql_api.get_by_query_excel(one_line))
    sheet = openpyxl.load_workbook(path).active
    check("get excel", [[c.value for c in r] for r in sheet.iter_rows()], [["Int", "Str"], [1, "Str1"], [2, "Str2"]])
    path = d + "/r.sqlite"
    with open(path, "wb") as f:
        f.write(sql_api.get_by_query_sqlite(one_line))
    db = sqlite3.connect(path)
    table = db.execute("select name from sqlite_master where type = 'table'").fetchone()[0]
    check("get sqlite", db.execute(f"select * from [{table}]").fetchall(), [(1, "Str1"), (2, "Str2")])
    db.close()

# A query that fails is a 400 with Problem Details; it does not parse, also 400.
for sql in ["select pq_fail('boom')", "select from where"]:
    try:
        sql_api.put_by_query_csv(body=sql)
        sys.exit(f"{sql}: no error")
    except ApiException as e:
        check(f"{sql} status", e.status, 400)
        check(f"{sql} has a detail", bool(json.loads(e.body)["detail"]), True)

# A synchronous query is a job like any other: it is in this caller's list.
listed = factory.build(SqlBackgroundExecutionApi).list_queries()
check("sync queries are listed", any(q.query_name == "sync csv" for q in listed), True)

# The catalog: every field of every table, the same rows filtered, one row per provider.
catalog_api = factory.build(CurrentTableFieldCatalogApi)
fields = ast.literal_eval(catalog_api.get_catalog())
testing = [f for f in fields if f["TableName"] == "Testing1K"]
check("catalog fields of Testing1K", [f["FieldName"] for f in testing][:3], ["Int", "Str", "Dbl"])
for column in ["ParamDefaultValue", "TableParamColumns", "AllowedValues", "ConditionUsage", "SampleValues"]:
    check(f"catalog has {column}", column in testing[0], True)
check("catalog as a JSON string", json.loads(catalog_api.get_catalog(json_proper=False)), json.loads(json.dumps(fields)))
narrowed = ast.literal_eval(catalog_api.get_fields(table_like="testing1_"))
check("fields tableLike", {f["TableName"] for f in narrowed}, {"Testing1K"})
providers = ast.literal_eval(catalog_api.get_providers(free_text_search="kylin_sales"))
check("providers search", "KYLIN_SALES" in [p["Name"] for p in providers] and "Testing1K" not in [p["Name"] for p in providers], True)
for column in ["DocumentationLink", "Attributes", "NamespaceLevel", "CustomSyntax"]:
    check(f"providers have {column}", column in providers[0], True)

# SqlDesign: SQL laid out (and still runnable), the scalar parameters a script uses.
design = factory.build(SqlDesignApi)
laid_out = design.put_query_to_format(body=SQL)
check("pretty", laid_out.splitlines()[:3], ["@x =", "SELECT [Int], Str", "FROM Testing1K"])
text = sql_api.put_by_query_csv(body=laid_out, scalar_parameters={"n": "3"})
check("pretty SQL runs", list(csv.reader(io.StringIO(text)))[1:], ROWS)
names = design.put_sql_to_extract_scalar_parameters(body=SQL + " where Str <> @skip")
check("scalar parameters", [(p.name, p.type) for p in names], [("n", "Text"), ("skip", "Text")])
# The view design pair: a setup script in parts, and back to a script that runs.
parts = design.put_sql_to_view_design(body="@v = use Sys.Admin.SetupView\n--provider=Views.Designed\n--description=Two rows\n----\nselect Str from Testing1K where [Int] <= 2\nenduse;\nselect * from @v")
check("to view design", (parts.name, parts.description, parts.query, parts.starting_variable_name),
      ("Views.Designed", "Two rows", "select Str from Testing1K where [Int] <= 2", "v"))
parts.query = "select Str from Testing1K where [Int] = #PARAMETERVALUE(Which)"
parts.view_parameters = [ViewParameter(name="Which", data_type="Int", value="3", description="Which row, by Int")]
script = design.put_view_design_to_sql(convert_to_view_data=parts)
check("from view design runs", sql_api.put_by_query_csv(body=script).splitlines(), ["Str", "Str3"])
check("designed view, parameter by default", sql_api.put_by_query_csv(body="select * from Views.Designed").splitlines(), ["Str", "Str3"])
check("designed view, parameter given", sql_api.put_by_query_csv(body="select * from Views.Designed where Which = 4").splitlines(), ["Str", "Str4"])
back = design.put_sql_to_view_design(body=script).view_parameters
check("view design parameters", [(p.name, p.data_type, p.value, p.description) for p in back], [("Which", "Int", "3", "Which row, by Int")])
# An operation of the SDK not built is a 501 that says so.
try:
    design.put_sql_to_query_design(body="select 1")
    sys.exit("todesign answered")
except ApiException as e:
    check("todesign", (e.status, json.loads(e.body)["name"]), (501, "NotImplemented"))

# ApplicationMetadata and the health check.
endpoints = factory.build(ApplicationMetadataApi).list_api_endpoints()
check("endpoints list /api/Sql/{format}", any(e.path == "/api/Sql/{format}" for e in endpoints.endpoints), True)
check("no access-controlled resources", factory.build(ApplicationMetadataApi).get_services_as_access_controlled_resources().values, [])
check("health", factory.build(HealthCheckingEndpointApi).fake_node_reclaim(seconds_until_reclaim=5)["healthy"], True)

# History: a background query over this caller's queries.
history = factory.build(HistoricallyExecutedQueriesApi)
hid = history.get_history(free_text_search="sync csv").execution_id
for _ in range(200):
    progress = history.get_progress_of_history(hid)
    if progress.status != "WaitingForActivation":
        break
    time.sleep(0.05)
check("history finished", progress.status, "RanToCompletion")
rows = ast.literal_eval(history.fetch_history_result_json(hid, json_proper=True))
check("history names the sync query", [(r["QueryName"], r["Status"]) for r in rows], [("sync csv", "RanToCompletion")])
check("history cleared", history.cancel_history(hid).previous_status, "RanToCompletion")

# Views: set up by a Sys.Admin.SetupView script (through SqlExecution or the View API), then a table.
views = factory.build(ViewManagementApi)
SETUP = """@v = use Sys.Admin.SetupView
    --provider=Views.ApiSmall
    --description=The first rows
    ----
    select [Int], Str from Testing1K where [Int] <= 3
enduse;
select * from @v"""
text = sql_api.put_by_query_csv(body=SETUP)
check("setup view answers its rows", list(csv.reader(io.StringIO(text))), [["Int", "Str"]] + [r[:2] for r in ROWS])
text = sql_api.put_by_query_csv(body="select Str from [views.apismall] where [Int] > 1")
check("view is a table", text.splitlines(), ["Str", "Str2", "Str3"])
listed = views.list_views(name_like_filter="views.api%")
check("view listed", [(v.name, v.notes, v.created_by_user_id) for v in listed], [("Views.ApiSmall", "The first rows", "api-classes")])
check("view creation sql", views.get_view_creation_sql(view_item=listed[0]).startswith("use Sys.Admin.SetupView"), True)
fields = ast.literal_eval(catalog_api.get_fields(table_like="Views.ApiSmall"))
check("view in the catalog", [f["FieldName"] for f in fields], ["Int", "Str"])
# Upserting over an existing view needs mayUpdateExisting; then the new definition answers.
item = listed[0]
item.file_content = SETUP.replace("<= 3", "<= 1")
try:
    views.upsert_view(view_item=item)
    sys.exit("upsert over an existing view answered")
except ApiException as e:
    check("upsert existing status", e.status, 409)
check("upsert saves", "saved" in views.upsert_view(view_item=item, may_update_existing=True), True)
check("upserted view", sql_api.put_by_query_csv(body="select Str from Views.ApiSmall").splitlines(), ["Str", "Str1"])
check("delete view", "deleted" in views.delete_view(view_name="Views.ApiSmall"), True)
try:
    sql_api.put_by_query_csv(body="select Str from Views.ApiSmall")
    sys.exit("a deleted view still answered")
except ApiException as e:
    check("deleted view status", e.status, 400)
try:
    views.delete_view(view_name="Views.ApiSmall")
    sys.exit("deleting a missing view answered")
except NotFoundException as e:
    check("missing view", json.loads(e.body)["name"], "ViewNotFound")

# MultiQuery: a set whose later queries read the earlier ones as @Name; each external result is a
# query of its own, `{set}_{name}` on the SqlBackground API.
multi = factory.build(MultiQueryExecutionApi)
background = factory.build(SqlBackgroundExecutionApi)
started = multi.start_custom_queries(custom_multi_query_request=CustomMultiQueryRequest(
    query_name="a set",
    scalar_parameters={"n": "3"},
    queries=[
        CustomMultiQueryItem(name="Low", sql="select [Int], Str from Testing1K where [Int] <= @n", is_external_result=False),
        CustomMultiQueryItem(name="Strs", sql="select Str from @Low order by [Int]"),
        CustomMultiQueryItem(name="Total", sql="@x = select [Int] from @low; select total([Int]) as t, (select count(*) from @Strs) as n from @x"),
    ],
))
check("multi links", [link.href.rsplit("/", 2)[-2:] for link in started.fetch_csv],
      [[started.execution_id + "_Strs", "csv"], [started.execution_id + "_Total", "csv"]])
for _ in range(200):
    progress = multi.get_progress_of_multi_query(started.execution_id)
    if progress.status != "WaitingForActivation":
        break
    time.sleep(0.05)
check("multi finished", (progress.status, [q.row_count for q in progress.queries]), ("RanToCompletion", [3, 1]))
csv_of = lambda name: background.fetch_query_result_csv(f"{started.execution_id}_{name}").splitlines()
check("multi query result", csv_of("Strs"), ["Str", "Str1", "Str2", "Str3"])
check("multi query reads earlier ones", csv_of("Total"), ["t,n", "6.0,3"])
listed = [s for s in multi.list_custom_queries() if s.execution_id == started.execution_id]
check("multi listed", [(s.query_name, s.state, [(q.name, q.has_result) for q in s.queries]) for s in listed],
      [("a set", "Executed", [("Strs", True), ("Total", True)])])
check("multi cleared", multi.cancel_multi_query(started.execution_id).previous_status, "RanToCompletion")
try:
    multi.get_progress_of_multi_query(started.execution_id)
    sys.exit("a cleared set answered")
except NotFoundException:
    pass
# A running set is cancelled; a bad set is a 400; the LUSID query kinds are a 501 that says so.
slow = multi.start_custom_queries(custom_multi_query_request=CustomMultiQueryRequest(
    queries=[CustomMultiQueryItem(name="Slow", sql="select Takes500Ms from Testing1K where [Int] <= 100")]))
check("multi cancel", multi.cancel_multi_query(slow.execution_id).previous_status, "WaitingForActivation")
check("multi cancelled", multi.get_progress_of_multi_query(slow.execution_id).status, "Canceled")
for queries in [[], [CustomMultiQueryItem(name="a", sql="select 1 as x"), CustomMultiQueryItem(name="A", sql="select 2 as x")],
                [CustomMultiQueryItem(name="a" * 32, sql="select 1 as x")],
                [CustomMultiQueryItem(name="a", sql="select from where")]]:
    try:
        multi.start_custom_queries(custom_multi_query_request=CustomMultiQueryRequest(queries=queries))
        sys.exit(f"{queries}: no error")
    except ApiException as e:
        check(f"bad set {queries}", e.status, 400)
try:
    multi.start_queries(type="InstrumentSimple", body="Apple")
    sys.exit("a LUSID query kind answered")
except ApiException as e:
    check("LUSID kinds", (e.status, json.loads(e.body)["name"]), (501, "NotImplemented"))

print("api classes: ok")
