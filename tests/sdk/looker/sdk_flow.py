"""Drives a polyquery server with the official Python looker-sdk, unchanged, as a Looker user would.

Usage: sdk_flow.py BASE_URL CLIENT_ID CLIENT_SECRET MODE
  MODE full       the whole flow (login, queries, a task per format, multi_results, runs, kill,
                  an error task, unknown ids, SQL Runner, logout, bad credentials)
  MODE not-ready  only: a slow task's results read as not ready ("" for both 202 and 204)
  MODE codegen    sdk-codegen's own query tests (python/tests/integration/test_methods.py and
                  packages/sdk-node/test/sdk.apispec.ts "Query calls"), over system__activity/thelook;
                  the user must be an admin (sudo) and another user must exist
  MODE me-open    me() and sudo on a server with no users configured: the caller is the one user

Exits non-zero with a message on the first mismatch.
"""

import csv
import io
import json
import os
import sys
import tempfile
import time
import warnings

import looker_sdk
from looker_sdk import error as sdk_error
from looker_sdk import models40 as models

FIELDS = ["users.state", "order_items.count", "order_items.total_sale_price"]
# The task formats of the SDK's ResultFormat (json_label is a run format only).
FORMATS = ["json", "json_detail", "json_bi", "json_fe", "inline_json", "csv", "txt", "md", "html", "xlsx",
           "gsxml", "sql"]


def fail(message):
    print(f"MISMATCH: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def sdk_for(base_url, client_id, client_secret):
    folder = tempfile.mkdtemp()
    ini = os.path.join(folder, "looker.ini")
    with open(ini, "w") as f:
        f.write(
            "[Looker]\n"
            f"base_url={base_url}\n"
            f"client_id={client_id}\n"
            f"client_secret={client_secret}\n"
            "verify_ssl=False\n"
            "timeout=60\n"
        )
    for key in [k for k in os.environ if k.startswith("LOOKERSDK_")]:
        del os.environ[key]
    return looker_sdk.init40(config_file=ini)


def wait_for(sdk, task_id, statuses, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        task = sdk.query_task(task_id)
        if task.status in statuses:
            return task
        check(task.status in ("added", "running"), f"task {task_id} status {task.status!r}")
        time.sleep(0.1)
    fail(f"task {task_id} never reached {statuses}")


def expect_sdk_error(call, what, fragment=None):
    try:
        call()
    except sdk_error.SDKError as e:
        if fragment is not None:
            check(fragment in str(e), f"{what}: error {e} lacks {fragment!r}")
        return e
    fail(f"{what}: no SDKError raised")


def check_result(fmt, result, limit):
    if fmt in ("json", "inline_json"):
        check(isinstance(result, str), f"{fmt}: not str")
        rows = json.loads(result)
        check(isinstance(rows, list) and 0 < len(rows) <= limit, f"{fmt}: {len(rows)} rows")
        for row in rows:
            check(set(row) == set(FIELDS), f"{fmt}: row keys {sorted(row)}")
            check(isinstance(row["order_items.count"], int), f"{fmt}: count not a number")
        counts = [r["order_items.count"] for r in rows]
        check(counts == sorted(counts, reverse=True), f"{fmt}: not sorted by count desc")
    elif fmt == "gsxml":
        check(result.startswith("<?xml") and 0 < result.count("<entry>") <= limit, "gsxml entries")
        check("<gsx:usersstate>" in result, f"gsxml columns: {result[:300]}")
    elif fmt in ("json_detail", "json_fe"):
        detail = json.loads(result)
        check(isinstance(detail["data"], list) and detail["data"], "json_detail: no data")
        check("errors" not in detail, "json_detail: errors on success")
        dims = [f["name"] for f in detail["fields"]["dimensions"]]
        measures = [f["name"] for f in detail["fields"]["measures"]]
        check(dims == ["users.state"], f"json_detail dimensions {dims}")
        check(measures == FIELDS[1:], f"json_detail measures {measures}")
        first = detail["data"][0]
        check(isinstance(first["order_items.count"]["value"], int), "json_detail cell value")
        check("SELECT" in detail["sql"], "json_detail sql")
        check(detail["has_subtotals"] is False, "json_detail has_subtotals")
    elif fmt == "json_bi":
        bi = json.loads(result)
        check(set(bi) == {"metadata", "rows"}, f"json_bi keys {sorted(bi)}")
        check(0 < len(bi["rows"]) <= limit, "json_bi rows")
        check([f["name"] for f in bi["metadata"]["fields"]["measures"]] == FIELDS[1:], "json_bi measures")
    elif fmt == "csv":
        check(isinstance(result, str), "csv: not str")
        lines = list(csv.reader(io.StringIO(result)))
        check(lines[0] == ["Users State", "Order Items Count", "Order Items Total Sale Price"], f"csv header {lines[0]}")
        check(result.count("\n") == len(lines) and len(lines) <= limit + 1, "csv line count")
    elif fmt == "txt":
        check(result.split("\n")[0].split("\t")[0] == "Users State", "txt header")
    elif fmt == "md":
        check(result.startswith("| Users State |"), f"md: {result[:40]!r}")
    elif fmt == "html":
        check("<table" in result and "Users State" in result, "html table")
    elif fmt == "xlsx":
        check(isinstance(result, bytes) and result[:2] == b"PK", "xlsx: not a zip of bytes")
    elif fmt == "sql":
        check(result.startswith("SELECT") and all(f in result for f in FIELDS), f"sql: {result[:60]!r}")


def slow_query(sdk):
    # The test model's `slow` explore sleeps half a minute per row, until it is killed.
    return sdk.create_query(models.WriteQuery(model="pqtest", view="slow", fields=["sleepy.nap"]))


def not_ready(sdk):
    slow = slow_query(sdk)
    task = sdk.create_query_task(body=models.WriteCreateQueryTask(query_id=slow.id, result_format=models.ResultFormat.json))
    check(task.status in ("added", "running"), f"slow task status {task.status}")
    result = sdk.query_task_results(task.id)
    check(result == "", f"not-ready results should read as empty, got {result!r}")
    sdk.kill_query(task.id)
    killed = wait_for(sdk, task.id, ("killed",))
    check(killed.status == "killed", "slow task not killed")


def full(sdk, base_url, client_id):
    query = sdk.create_query(
        models.WriteQuery(
            model="thelook",
            view="order_items",
            fields=FIELDS,
            filters={"users.country": "-NULL"},
            sorts=["order_items.count desc 0"],
            limit="10",
        )
    )
    check(isinstance(query.id, str) and query.id not in ("", "0"), f"query id {query.id!r}")
    check(query.model == "thelook" and query.view == "order_items", "query model/view")
    again = sdk.create_query(
        models.WriteQuery(
            model="thelook",
            view="order_items",
            fields=FIELDS,
            filters={"users.country": "-NULL"},
            sorts=["order_items.count desc 0"],
            limit="10",
        )
    )
    check(again.id == query.id, "create_query is not idempotent")
    check(sdk.query(query.id).fields == FIELDS, "query(id)")
    check(sdk.query_for_slug(query.slug).id == query.id, "query_for_slug")

    task_ids = {}
    for fmt in FORMATS:
        task = sdk.create_query_task(
            body=models.WriteCreateQueryTask(query_id=query.id, result_format=models.ResultFormat[fmt], source="pq-test")
        )
        check(len(task.id) == 32 and task.id == task.id.lower(), f"task id {task.id!r}")
        check(task.result_format == fmt, f"task result_format {task.result_format!r}")
        check(task.query_id == query.id and task.source == "pq-test", "task query_id/source")
        done = wait_for(sdk, task.id, ("complete",))
        check(done.result_source == "query", f"result_source {done.result_source!r}")
        check_result(fmt, sdk.query_task_results(task.id), 10)
        task_ids[fmt] = task.id

    partial = sdk.query_task(task_ids["json"], fields="id,status")
    check(partial.id == task_ids["json"] and partial.status == "complete" and partial.query is None, "fields=id,status")

    unknown = "0" * 32
    multi = sdk.query_task_multi_results(query_task_ids=models.DelimSequence([task_ids["json"], task_ids["csv"], unknown]))
    check(multi[task_ids["json"]]["status"] == "complete", "multi json status")
    check(isinstance(multi[task_ids["json"]]["data"], list), "multi json data")
    check(multi[task_ids["csv"]]["data"].startswith("Users State,"), "multi csv data")
    check(multi[unknown]["status"] == "missing", f"multi unknown {multi[unknown]}")
    plain = sdk.query_task_multi_results(query_task_ids=[task_ids["json"]])
    check(plain[task_ids["json"]]["status"] == "complete", "multi_results with a JSON-array list")

    check_result("json", sdk.run_query(query.id, "json"), 10)
    check_result("csv", sdk.run_query(query.id, "csv", limit=3), 3)
    check(len(json.loads(sdk.run_query(query.id, "json", limit=2, cache=False))) == 2, "run_query limit")
    inline = sdk.run_inline_query(
        "json", models.WriteQuery(model="thelook", view="products", fields=["products.brand", "products.count"], limit="5")
    )
    rows = json.loads(inline)
    check(len(rows) == 5 and set(rows[0]) == {"products.brand", "products.count"}, "run_inline_query")

    # Kill: a slow task is running, then killed, and stays killed.
    slow = slow_query(sdk)
    task = sdk.create_query_task(body=models.WriteCreateQueryTask(query_id=slow.id, result_format=models.ResultFormat.json))
    wait_for(sdk, task.id, ("running",))
    running = sdk.all_running_queries()
    check(any(r.query_task_id == task.id for r in running), "all_running_queries lacks the slow task")
    sdk.kill_query(task.id)
    check(wait_for(sdk, task.id, ("killed",)).status == "killed", "kill")
    expect_sdk_error(lambda: sdk.kill_query(task.id), "kill of a finished task")

    # A query that fails while running: json_detail carries errors[], other formats raise.
    broken = sdk.create_query(models.WriteQuery(model="pqtest", view="users", fields=["users.broken"]))
    for fmt in ("json_detail", "json"):
        task = sdk.create_query_task(body=models.WriteCreateQueryTask(query_id=broken.id, result_format=models.ResultFormat[fmt]))
        check(wait_for(sdk, task.id, ("error",)).status == "error", "error task status")
        if fmt == "json_detail":
            detail = json.loads(sdk.query_task_results(task.id))
            check(detail["data"] == [] and detail["errors"], "json_detail errors[]")
            check(all("documentation_url" in e for e in detail["errors"]), "errors[] documentation_url")
        else:
            expect_sdk_error(lambda: sdk.query_task_results(task.id), "error task results")

    # Bad input surfaces as the SDK's own errors.
    expect_sdk_error(lambda: sdk.query_task(unknown), "unknown task", "Not found")
    expect_sdk_error(lambda: sdk.query_task_results(unknown), "unknown task results", "Not found")
    e = expect_sdk_error(
        lambda: sdk.create_query(models.WriteQuery(model="thelook", view="order_items", fields=["users.nope"])),
        "unknown field",
    )
    check(e.errors and e.errors[0].field == "fields", f"validation errors {e.errors}")
    expect_sdk_error(lambda: sdk.create_query(models.WriteQuery(model="nomodel", view="x", fields=["x.y"])), "unknown model")

    sql = sdk.create_sql_query(models.SqlQueryCreate(connection_name="polyquery", sql="SELECT 1 AS a, 'x' AS b"))
    check(json.loads(sdk.run_sql_query(sql.slug, "json")) == [{"a": 1, "b": "x"}], "run_sql_query")

    sdk.auth.logout()

    bad = sdk_for(base_url, client_id, "wrong-secret")
    expect_sdk_error(lambda: bad.query(query.id), "bad credentials")


# The queries of sdk-codegen's test/data.yml, pointed at polyquery's shipped models.
CODEGEN_QUERIES = [
    {"model": "system__activity", "view": "dashboard", "fields": ["dashboard.id", "dashboard.title", "dashboard.count"], "limit": "10"},
    {"model": "thelook", "view": "users", "fields": ["users.first_name", "users.last_name"], "sorts": ["users.last_name desc"], "limit": "10"},
    {"model": "thelook", "view": "products", "fields": ["products.category", "products.count"], "limit": "5"},
]


def codegen(sdk):
    # test_enum / TestSmoke.testEnumProcessing
    query = sdk.create_query(models.WriteQuery(**CODEGEN_QUERIES[0]))
    created = sdk.create_query_task(body=models.WriteCreateQueryTask(query_id=query.id, result_format=models.ResultFormat.csv, source="test"))
    check(created.query_id == query.id and created.result_format == "csv", "test_enum")
    for q in CODEGEN_QUERIES:
        limit = int(q["limit"])
        # test_it_creates_and_runs_query
        query = sdk.create_query(models.WriteQuery(**q))
        check(isinstance(query.id, str) and query.id not in ("", "0"), "query id")
        sql = sdk.run_query(query.id, "sql")
        check("SELECT" in sql and all(f in sql for f in q["fields"]), "run_query sql")
        rows = json.loads(sdk.run_query(query.id, "json"))
        check(isinstance(rows, list) and len(rows) == limit, f"run_query json: {len(rows)} rows, limit {limit}")
        check(all(set(q["fields"]) <= set(row) for row in rows), "run_query json keys")
        text = sdk.run_query(query.id, "csv")
        check(isinstance(text, str) and text.count("\n") == limit + 1, f"run_query csv lines {text.count(chr(10))}")
        # test_it_runs_inline_query
        rows = json.loads(sdk.run_inline_query("json", models.WriteQuery(**q)))
        check(len(rows) == limit and all(set(q["fields"]) <= set(r) for r in rows), "run_inline_query json")
        text = sdk.run_inline_query("csv", models.WriteQuery(**q))
        check(text.count("\n") == limit + 1, "run_inline_query csv")
    # "parses a query with no results"
    empty = sdk.create_query(
        models.WriteQuery(model="system__activity", view="dashboard", fields=["dashboard.id", "dashboard.title"], filters={"dashboard.id": "-1"}, limit="2")
    )
    # -1 is a number filter (dashboard.id = -1): no dashboard has that id.
    for fmt in ("csv", "json", "json_detail", "txt", "md"):
        for cache in (None, True):
            result = sdk.run_query(empty.id, fmt, cache=cache)
            check(result != "{}", f"no-results {fmt}")
    check(json.loads(sdk.run_query(empty.id, "json")) == [], "no-results json is []")
    check(json.loads(sdk.run_query(empty.id, "json_detail"))["data"] == [], "no-results json_detail data")


def codegen_users(sdk, client_id):
    # test_me_returns_correct_result: the caller, with its API credentials.
    me = sdk.me()
    check(isinstance(me, models.User) and me.display_name == client_id, f"me(): {me}")
    check(isinstance(me.credentials_api3, list) and me.credentials_api3, "me() credentials_api3")
    check(isinstance(me.credentials_api3[0], models.CredentialsApi3), "me() credentials_api3 type")
    check(me.credentials_api3[0].client_id == client_id, "me() credentials client_id")
    # test_me_field_filters: only the requested fields come back.
    partial = sdk.me("id, first_name, last_name")
    check(partial.id == me.id and partial.first_name == client_id, f"me(fields): {partial}")
    check(isinstance(partial.last_name, str), "me(fields) last_name")
    check(not partial.display_name and not partial.email and not partial.personal_folder_id,
          f"me(fields) carries more: {partial}")
    # all_users(fields=…), user(id) and a user's roles.
    everyone = sdk.all_users(fields="id, display_name")
    check(len(everyone) >= 2 and all(u.id and u.display_name and u.role_ids is None for u in everyone),
          f"all_users(fields): {everyone}")
    other = next(u for u in everyone if u.id != me.id)
    check(sdk.user(other.id).display_name == other.display_name, "user(id)")
    check(any(r.name == "Admin" for r in sdk.user_roles(me.id)), "the caller is an Admin")
    check({r.name for r in sdk.all_roles()} >= {"Admin", "User"}, "all_roles")
    expect_sdk_error(lambda: sdk.user("999"), "user(999)", "Not found")
    # test_crud_user's sudo checks: login_user makes calls as that user, logout undoes it.
    sdk.auth.login_user(other.id)
    check(sdk.me().id == other.id, "sudo me()")
    sdk.auth.logout()
    check(sdk.me().id == me.id, "me() after the sudo logout")
    # The API method itself answers an AccessToken.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = sdk.login_user(other.id)
    check(token.access_token and token.token_type == "Bearer", f"login_user: {token}")


def codegen_formats(sdk):
    # packages/sdk-node "Query calls": an empty filter set is the list the TypeScript SDK sends.
    # The Python models cannot hold a list there, so the body goes as the TypeScript SDK writes it.
    body = json.dumps({"model": "thelook", "view": "users", "fields": ["users.state", "users.count"],
                       "filters": [], "limit": "5"})
    query = sdk.post(path="/queries", structure=models.Query, body=body)
    check(not query.filters, f"filters [] is no filter: {query.filters}")
    # test_search_look_and_run: json names columns by field, json_label by label.
    labelled = json.loads(sdk.run_query(query.id, "json_label"))
    check(len(labelled) == 5 and set(labelled[0]) == {"Users State", "Users Count"}, f"json_label {labelled[:1]}")
    by_name = json.loads(sdk.run_query(query.id, "json"))
    check([list(r.values()) for r in by_name] == [list(r.values()) for r in labelled], "json_label values")
    fe = json.loads(sdk.run_query(query.id, "json_fe"))
    check(len(fe["data"]) == 5 and fe["fields"]["dimensions"][0]["name"] == "users.state", "json_fe")
    # create_query_request passes filter_expression through: Looker's own expression language.
    narrowed = sdk.create_query(models.WriteQuery(model="thelook", view="users", fields=["users.state", "users.count"],
                                                  filter_expression='${users.count} > 50 AND ${users.state} != "England"',
                                                  limit="500"))
    narrow = json.loads(sdk.run_query(narrowed.id, "json"))
    check(narrow and all(r["users.count"] > 50 and r["users.state"] != "England" for r in narrow),
          f"filter_expression rows {narrow[:3]}")
    xml = sdk.run_query(query.id, "gsxml")
    check(xml.startswith("<?xml") and xml.count("<entry>") == 5 and "<gsx:usersstate>" in xml, f"gsxml {xml[:200]}")


def codegen_looks(sdk):
    # test_crud_look: create on a query, update deleted both ways, title kept.
    query = sdk.create_query(models.WriteQuery(model="thelook", view="order_items",
                                               fields=["order_items.status", "order_items.count"], limit="10"))
    me = sdk.me()
    look = sdk.create_look(models.WriteLookWithQuery(title="An SDK look", description="polyquery test",
                                                     is_run_on_load=True, public=False, query_id=query.id))
    check(isinstance(look, models.LookWithQuery) and look.title == "An SDK look", f"create_look {look}")
    check(look.query_id == query.id and look.user_id == me.id and look.is_run_on_load, "create_look keys")
    check(look.query.fields == query.fields, "create_look query")
    gone = sdk.update_look(look.id, models.WriteLookWithQuery(deleted=True))
    check(gone.deleted and gone.title == look.title, "update_look deleted")
    back = sdk.update_look(look.id, models.WriteLookWithQuery(deleted=False))
    check(not back.deleted, "update_look undeleted")
    # test_search_looks_*: title patterns and fields=.
    found = sdk.search_looks(title="An SDK%", fields="id, title")
    mine = [l for l in found if l.id == look.id]
    check(mine and all(l.title.startswith("An SDK") for l in found), f"search_looks {found}")
    check(mine[0].description is None and mine[0].created_at is None, "search_looks fields=")
    check(sdk.search_looks(title="Nothing like it%") == [], "search_looks no match")
    # test_search_look_and_run: csv and json_label by label, json by field name.
    csv_text = sdk.run_look(look.id, "csv")
    check("Order Items Status" in csv_text and "Order Items Count" in csv_text, "run_look csv")
    by_name = sdk.run_look(look.id, "json")
    check("order_items.status" in by_name and "order_items.count" in by_name, "run_look json")
    labelled = sdk.run_look(look.id, "json_label")
    check("Order Items Status" in labelled and "Order Items Count" in labelled, "run_look json_label")
    sdk.delete_look(look.id)
    expect_sdk_error(lambda: sdk.look(look.id), "look after delete", "Not found")


def me_open(sdk, client_id):
    me = sdk.me()
    check(me.id == "1" and me.display_name == client_id, f"me() with no users configured: {me}")
    check([u.id for u in sdk.all_users()] == ["1"], "all_users() with no users configured")
    sdk.auth.login_user(me.id)
    check(sdk.me().id == "1", "sudo as the one user")
    sdk.auth.logout()
    check(sdk.me().display_name == client_id, "me() after the sudo logout")


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    base_url, client_id, client_secret, mode = sys.argv[1:]
    sdk = sdk_for(base_url, client_id, client_secret)
    if mode == "not-ready":
        not_ready(sdk)
    elif mode == "codegen":
        codegen(sdk)
        codegen_users(sdk, client_id)
        codegen_formats(sdk)
        codegen_looks(sdk)
    elif mode == "me-open":
        me_open(sdk, client_id)
    elif mode == "full":
        full(sdk, base_url, client_id)
    else:
        fail(f"unknown mode {mode}")
    print("ok")


if __name__ == "__main__":
    main()
