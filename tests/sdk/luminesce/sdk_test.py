"""Drives a real polyquery with FINBOURNE's official luminesce-sdk, sync and async clients.

Usage: python sdk_test.py http://127.0.0.1:PORT   (or set POLYQUERY_URL)

Exits non-zero with a message naming the first mismatch. Every check reads real rows back through
the SDK, in every fetch format, with the readers a user would use (csv, json, xml, openpyxl,
pyarrow, sqlite3).
"""

import ast
import asyncio
import csv
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime

import openpyxl
import pyarrow.parquet as pq
from luminesce import SqlBackgroundExecutionApi
from luminesce.exceptions import ApiException, NotFoundException, UnauthorizedException
from luminesce.extensions import (
    ApiClientFactory,
    ArgsConfigurationLoader,
    EnvironmentVariablesConfigurationLoader,
    SecretsFileConfigurationLoader,
    SyncApiClientFactory,
)

BASE = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("POLYQUERY_URL", "")).rstrip("/")
if not BASE:
    sys.exit("usage: sdk_test.py http://127.0.0.1:PORT")
API_URL = BASE + "/honeycomb"

# Four rows with a quote, a comma, a null and a timestamp in them.
ROWS_SQL = """
with t as (
select column1 as Id, column2 as Name, column3 as Score, column4 as Active, column5 as [When]
from (values
  (1, 'alpha', 1.5, true, cast('2024-01-02 03:04:05' as timestamp)),
  (2, 'beta', 2.5, false, cast('2024-02-03 04:05:06' as timestamp)),
  (3, 'gamma', null, true, cast('2024-03-04 05:06:07' as timestamp)),
  (4, 'delta, "quoted"', 4.25, false, cast('2024-04-05 06:07:08' as timestamp))
))
select * from t where Id >= @minId
""".strip()
EXPECTED = [
    {"Id": 1, "Name": "alpha", "Score": 1.5, "Active": True},
    {"Id": 2, "Name": "beta", "Score": 2.5, "Active": False},
    {"Id": 3, "Name": "gamma", "Score": None, "Active": True},
    {"Id": 4, "Name": 'delta, "quoted"', "Score": 4.25, "Active": False},
]
WHEN = ["2024-01-02 03:04:05.000", "2024-02-03 04:05:06.000", "2024-03-04 05:06:07.000", "2024-04-05 06:07:08.000"]
# Luminesce's documented example: reading Takes500Ms costs 500 ms a row, so it runs about a minute.
SLOW_SQL = "select Str, Takes500Ms from Testing1K where UseLinq = true and [Int] <= 120"


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def sync_api(token):
    factory = SyncApiClientFactory(config_loaders=[ArgsConfigurationLoader(api_url=API_URL, access_token=token)])
    return factory.build(SqlBackgroundExecutionApi)


def wait_done(api, execution_id, seconds=60):
    deadline = time.time() + seconds
    while True:
        progress = api.get_progress_of(execution_id)
        if progress.status != "WaitingForActivation":
            return progress
        check(progress.row_count == -1, f"rowCount while running must be -1, got {progress.row_count}")
        check(time.time() < deadline, f"query {execution_id} still running after {seconds}s")
        time.sleep(0.1)


def expect_error(status, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ApiException as e:
        eq(e.status, status, f"status of {call.__name__}")
        body = json.loads(e.body)
        for key in ["name", "errorDetails", "code", "type", "title", "status", "detail", "instance"]:
            check(key in body, f"Problem Details without {key}: {body}")
        eq(body["status"], status, "Problem Details status")
        check(e.headers.get("Retry-After") is None, f"Retry-After on a {status}")
        return body
    raise AssertionError(f"{call.__name__} should have failed with {status}")


def rows_from_csv(text, delimiter=","):
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def sync_suite():
    api = sync_api("alice")

    # Start: 202 with links, then progress until done.
    started = api.start_query(
        body=ROWS_SQL, query_name="sdk rows", keep_for_seconds=600, timeout_seconds=30,
        scalar_parameters={"minId": "1"},
    )
    check(started is not None, "start_query returned None: the server did not answer 202")
    eid = started.execution_id
    check(len(eid) == 36, f"executionId is not a GUID: {eid}")
    eq(started.progress.href, f"/api/SqlBackground/{eid}", "progress link")
    eq(started.fetch_csv.method, "GET", "fetchCsv method")
    eq(started.cancel.method, "DELETE", "cancel method")
    progress = wait_done(api, eid)
    eq(progress.status, "RanToCompletion", "status")
    eq(progress.state, "Executed", "state")
    eq(progress.has_data, True, "hasData")
    eq(progress.row_count, 4, "rowCount")
    eq(progress.query, ROWS_SQL, "query")
    eq(progress.query_name, "sdk rows", "queryName")
    eq([c.name for c in progress.columns_available], ["Id", "Name", "Score", "Active", "When"], "column names")
    eq([c.type for c in progress.columns_available], ["BigInt", "Text", "Double", "Boolean", "DateTime"], "column types")
    check(isinstance(progress.progress, str) and "Query completed" in progress.progress, f"progress log: {progress.progress!r}")
    # Feedback is incremental per caller; includeAllFeedback gives it all again.
    check(api.get_progress_of(eid).feedback == [], "feedback repeated on a second poll")
    everything = api.get_progress_of(eid, include_all_feedback=True, build_from_logs=True).feedback
    check(len(everything) >= 2 and everything[0].level == "Progress", f"all feedback: {everything}")

    # Every format, read back.
    csv_rows = rows_from_csv(api.fetch_query_result_csv(eid))
    eq([r["Name"] for r in csv_rows], [r["Name"] for r in EXPECTED], "csv names")
    eq([r["Score"] for r in csv_rows], ["1.5", "2.5", "", "4.25"], "csv scores")
    eq([r["When"] for r in csv_rows], WHEN, "csv default dateTimeFormat")
    pipe_rows = rows_from_csv(api.fetch_query_result_pipe(eid), delimiter="|")
    eq([r["Id"] for r in pipe_rows], ["1", "2", "3", "4"], "pipe ids")
    proper = ast.literal_eval(api.fetch_query_result_json_proper(eid))
    eq([{k: r[k] for k in ("Id", "Name", "Score", "Active")} for r in proper], EXPECTED, "jsonProper rows")
    legacy = json.loads(api.fetch_query_result_json(eid))
    eq([r["Name"] for r in legacy], [r["Name"] for r in EXPECTED], "json (string) rows")
    raw = api.fetch_query_result_json_with_http_info(eid).raw_data
    check(json.loads(raw).startswith("["), f"/json must be a JSON string holding the array: {raw[:60]!r}")
    lineage = ast.literal_eval(api.fetch_query_result_json_proper_with_lineage(eid))
    eq(len(lineage["Data"]), 4, "jsonProperWithLineage Data")
    check("Lineage" in lineage, "jsonProperWithLineage Lineage")
    root = ET.fromstring(api.fetch_query_result_xml(eid))
    eq([row.findtext("Name") for row in root], [r["Name"] for r in EXPECTED], "xml names")
    book = openpyxl.load_workbook(io.BytesIO(bytes(api.fetch_query_result_excel(eid))))
    sheet = [list(r) for r in book.active.iter_rows(values_only=True)]
    eq(sheet[0], ["Id", "Name", "Score", "Active", "When"], "excel header")
    eq([r[1] for r in sheet[1:]], [r["Name"] for r in EXPECTED], "excel names")
    table = pq.read_table(io.BytesIO(bytes(api.fetch_query_result_parquet(eid))))
    eq(table.column("Name").to_pylist(), [r["Name"] for r in EXPECTED], "parquet names")
    eq(table.column("Score").to_pylist(), [r["Score"] for r in EXPECTED], "parquet scores")
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as f:
        f.write(bytes(api.fetch_query_result_sqlite(eid)))
        f.flush()
        db = sqlite3.connect(f.name)
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        eq(len(tables), 1, "sqlite tables")
        eq([r[0] for r in db.execute(f'select Name from "{tables[0]}" order by Id')], [r["Name"] for r in EXPECTED], "sqlite names")
        db.close()

    # Every fetch parameter.
    ids = lambda text, d=",": [r["Id"] for r in rows_from_csv(text, d)]
    eq(ids(api.fetch_query_result_csv(eid, sort_by="-Id")), ["4", "3", "2", "1"], "sortBy -Id")
    eq(ids(api.fetch_query_result_csv(eid, sort_by="4,-1")), ["4", "2", "3", "1"], "sortBy indexes")
    eq(ids(api.fetch_query_result_csv(eid, filter="Name eq 'beta' or (Id gt 3 and not Active)")), ["2", "4"], "filter")
    eq(ids(api.fetch_query_result_csv(eid, filter="startswith(Name, 'ga') or Score eq null")), ["3"], "filter functions")
    eq(ids(api.fetch_query_result_csv(eid, sql_filter="[Id] <= 2", filter="Id ne 1")), ["2"], "sqlFilter with filter")
    grouped = rows_from_csv(api.fetch_query_result_csv(eid, select="Active, count(*) as n", group_by="1", sort_by="1"))
    eq([(r["Active"], r["n"]) for r in grouped], [("false", "2"), ("true", "2")], "select + groupBy")
    eq(ids(api.fetch_query_result_csv(eid, limit=2, page=1)), ["3", "4"], "limit + page")
    eq(ids(api.fetch_query_result_csv(eid, limit=0, page=3)), ["1", "2", "3", "4"], "page ignored when limit < 1")
    eq(ids(api.fetch_query_result_csv(eid, delimiter=";"), ";"), ["1", "2", "3", "4"], "delimiter")
    dates = rows_from_csv(api.fetch_query_result_csv(eid, date_time_format="dd/MM/yyyy"))
    eq(dates[0]["When"], "02/01/2024", "dateTimeFormat")
    download = api.fetch_query_result_csv_with_http_info(eid, download=True)
    check("attachment" in download.headers.get("Content-Disposition", ""), f"download headers {download.headers}")
    check("sdk rows.csv" in download.headers.get("Content-Disposition", ""), "download file name")
    eq(ids(api.fetch_query_result_csv(eid, load_wait_milliseconds=500)), ["1", "2", "3", "4"], "loadWaitMilliseconds")
    proper = ast.literal_eval(api.fetch_query_result_json_proper(eid, select="Name", filter="Id eq 2"))
    eq(proper, [{"Name": "beta"}], "jsonProper with select and filter")

    # Histogram: 30-day buckets over the When column, empty buckets included.
    hist = ast.literal_eval(api.fetch_query_result_histogram(
        eid, timestamp_field_name="When", start_at=datetime(2024, 1, 1), end_at=datetime(2024, 5, 1),
        bucket_size="30.00:00:00", json_proper=True))
    eq([b["Count"] for b in hist], [1, 1, 1, 1, 0], "histogram counts")
    eq(hist[1]["BucketStart"][:10], "2024-01-31", "histogram bucket start")
    hist = json.loads(api.fetch_query_result_histogram(eid, timestamp_field_name="when", filter="Active eq true"))
    eq(sum(b["Count"] for b in hist), 2, "histogram with a filter, default range and buckets")

    # Save to Drive: the file lands in polyquery's Drive directory; no silent overwrite.
    saved = api.save_query_result_to_drive(eid, drive_location_and_file_name="/sdk/rows.txt", format="csv", sort_by="-Id")
    check("/sdk/rows.csv" in saved, f"drive answer: {saved!r}")
    expect_error(409, api.save_query_result_to_drive, eid, drive_location_and_file_name="/sdk/rows.csv")
    api.save_query_result_to_drive(eid, drive_location_and_file_name="/sdk/rows.csv", may_overwrite=True, sort_by="-Id")
    expect_error(400, api.save_query_result_to_drive, eid, drive_location_and_file_name="/../escape.csv")

    # Scalar parameters are bound into @name.
    param = api.start_query(body=ROWS_SQL, scalar_parameters={"minId": "3"})
    eq(wait_done(api, param.execution_id).row_count, 2, "rows with @minId = 3")

    # List: this principal's queries, most recent first.
    listed = api.list_queries()
    eq([q.execution_id for q in listed[:2]], [param.execution_id, eid], "list order")
    check(eid in [q.execution_id for q in api.list_queries(sql_like="%@MINID%")], "sqlLike finds the query")
    eq(api.list_queries(sql_like="select 42%"), [], "sqlLike leaves others out")
    check(listed[1].expires_at is not None and listed[1].when is not None, "list times")

    # Errors.
    body = expect_error(400, api.start_query, body="selec oops from")
    check(body["detail"], "syntax error detail")
    expect_error(400, api.start_query, body="select @missing")
    try:
        api.get_progress_of("00000000-0000-0000-0000-000000000000")
        raise AssertionError("unknown id answered")
    except NotFoundException:
        pass
    try:
        sync_api("bob").get_progress_of(eid)
        raise AssertionError("another principal saw alice's query")
    except NotFoundException:
        pass
    expect_error(404, sync_api("bob").fetch_query_result_csv, eid)
    eq(len(sync_api("bob").list_queries()), 0, "bob's list")
    try:
        sync_api("").get_progress_of(eid)
    except (UnauthorizedException, ApiException, ValueError):
        pass

    # A run-time failure: accepted, then Faulted, then 400 at fetch.
    failing = api.start_query(body="select pq_fail('boom from the sdk') as x")
    failed = wait_done(api, failing.execution_id)
    eq(failed.status, "Faulted", "failed status")
    eq(failed.state, "Errored", "failed state")
    check("Query Execution failed.\nboom from the sdk\nSql:\n" in failed.progress, f"failed progress: {failed.progress!r}")
    body = expect_error(400, api.fetch_query_result_json_proper, failing.execution_id)
    check("boom from the sdk" in body["detail"], f"fetch error detail: {body}")

    # The testing provider, with Luminesce SQL: unquoted names in any case, [brackets], @parameters.
    testing = api.start_query(body="select str, [Int], Dbl from testing1k where [Int] <= @n and UseLinq = true", scalar_parameters={"n": "5"})
    eq(wait_done(api, testing.execution_id).row_count, 5, "Testing1K rows")
    rows = ast.literal_eval(api.fetch_query_result_json_proper(testing.execution_id, sort_by="-Int", limit=2))
    eq(rows, [{"Str": "Str5", "Int": 5, "Dbl": 1.25}, {"Str": "Str4", "Int": 4, "Dbl": 1.0}], "Testing1K rows read back")
    fields = api.start_query(body="select FieldName, DataType from Sys.Field where TableName = 'Testing1K' and FieldName in ('Int', 'Str')")
    wait_done(api, fields.execution_id)
    eq(ast.literal_eval(api.fetch_query_result_json_proper(fields.execution_id, sort_by="FieldName")),
       [{"FieldName": "Int", "DataType": "BigInt"}, {"FieldName": "Str", "DataType": "Text"}], "Sys.Field")

    # Cancel a running query: it stops and shows Canceled.
    running = api.start_query(body=SLOW_SQL, timeout_seconds=-1)
    time.sleep(1.2)
    eq(api.get_progress_of(running.execution_id).state, "Running", "state of the slow example")
    cancelled = api.cancel_query(running.execution_id)
    eq(cancelled.previous_status, "WaitingForActivation", "previousStatus")
    eq(cancelled.had_data, False, "hadData of a running query")
    after = api.get_progress_of(running.execution_id)
    eq(after.status, "Canceled", "status after cancel")
    eq(after.state, "Cancelled", "state after cancel")

    # Clearing a finished query: it had data, then it is gone.
    cleared = api.cancel_query(param.execution_id)
    eq(cleared.had_data, True, "hadData of a finished query")
    eq(cleared.previous_status, "RanToCompletion", "previousStatus of a finished query")
    expect_error(404, api.get_progress_of, param.execution_id)

    # Expiry after a short keep-for.
    short = api.start_query(body="select 1 as a", keep_for_seconds=1)
    wait_done(api, short.execution_id)
    time.sleep(1.6)
    expect_error(404, api.get_progress_of, short.execution_id)
    expect_error(404, api.fetch_query_result_csv, short.execution_id)
    # A secrets.json configures the client just as well, with the same principal as its token.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "secrets.json")
        with open(path, "w") as f:
            json.dump({"api": {"luminesceUrl": API_URL, "accessToken": "alice"}}, f)
        from_file = SyncApiClientFactory(config_loaders=[SecretsFileConfigurationLoader(api_secrets_file=path)])
        eq(from_file.build(SqlBackgroundExecutionApi).get_progress_of(eid).row_count, 4, "secrets.json client")
    print("sync client: ok")


async def async_suite():
    os.environ["FBN_LUMINESCE_URL"] = API_URL + "/"  # a trailing slash: the SDK sends //api/...
    os.environ["FBN_ACCESS_TOKEN"] = "carol"
    factory = ApiClientFactory(config_loaders=[EnvironmentVariablesConfigurationLoader()])
    async with factory:
        api = factory.build(SqlBackgroundExecutionApi)
        started = await api.start_query(body=ROWS_SQL, scalar_parameters={"minId": "2"}, execution_flags="ProvideLineage")
        eid = started.execution_id
        for _ in range(600):
            progress = await api.get_progress_of(eid)
            if progress.status != "WaitingForActivation":
                break
            await asyncio.sleep(0.1)
        eq(progress.status, "RanToCompletion", "async status")
        eq(progress.row_count, 3, "async rowCount")
        eq([c.legend_text for c in progress.lineage.column_lineage], ["Id", "Name", "Score", "Active", "When"], "async progress lineage")
        rows = ast.literal_eval(await api.fetch_query_result_json_proper(eid, sort_by="-Id"))
        eq([r["Id"] for r in rows], [4, 3, 2], "async jsonProper")
        text = await api.fetch_query_result_csv(eid, download=True)
        eq([r["Name"] for r in rows_from_csv(text)], ["beta", "gamma", 'delta, "quoted"'], "async csv")
        lineage = ast.literal_eval(await api.fetch_query_result_json_proper_with_lineage(eid))
        eq(len(lineage["Lineage"]["columnLineage"]), 5, "async lineage columns")
        running = await api.start_query(body=SLOW_SQL)
        cancelled = await api.cancel_query(running.execution_id)
        eq(cancelled.previous_state in ("New", "Running"), True, "async cancel previousState")
        try:
            await api.get_progress_of("11111111-2222-3333-4444-555555555555")
            raise AssertionError("async: unknown id answered")
        except ApiException as e:
            eq(e.status, 404, "async unknown id")
    print("async client: ok")


def main():
    try:
        sync_suite()
        asyncio.run(async_suite())
    except AssertionError as e:
        sys.exit(f"luminesce-sdk check failed: {e}")
    print("luminesce-sdk: all checks passed")


if __name__ == "__main__":
    main()
