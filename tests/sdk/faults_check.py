"""The official SDKs, unchanged, against a polyquery whose fault rules make the vendor misbehave.

Usage: python faults_check.py MODE BASE_URL NAME PASSWORD_OR_TOKEN [N]
  luminesce-throttled  luminesce-sdk: status reads answered 429 + Retry-After are retried by the SDK
                       itself, and the result arrives (the rule throttles the next GETs)
  looker-not-ready     looker-sdk: the task stays `running` for at least N polls, then completes
  kylin-failure        kylinpy: the query fails with the rule's message

Exits non-zero with a message on the first mismatch; prints "MODE: ok" otherwise.
"""

import ast
import json
import os
import sys
import tempfile
import time
from urllib.parse import urlparse


def check(condition, message):
    if not condition:
        print("MISMATCH: " + message, file=sys.stderr)
        sys.exit(1)


def luminesce_throttled(base, token):
    from luminesce import SqlBackgroundExecutionApi
    from luminesce.extensions import ArgsConfigurationLoader, SyncApiClientFactory

    loader = ArgsConfigurationLoader(api_url=base + "/honeycomb", access_token=token)
    api = SyncApiClientFactory(config_loaders=[loader]).build(SqlBackgroundExecutionApi)
    started = api.start_query(body="select 41 + 1 as answer")
    deadline = time.time() + 60
    while api.get_progress_of(started.execution_id).status == "WaitingForActivation":
        check(time.time() < deadline, "the query never finished")
        time.sleep(0.05)
    # The SDK hands the rows back as the text of a Python literal (see sdk_test.py).
    rows = ast.literal_eval(api.fetch_query_result_json_proper(started.execution_id))
    check(rows == [{"answer": 42}], "rows: %r" % (rows,))


def looker_not_ready(base, name, secret, polls):
    import looker_sdk
    from looker_sdk import models40 as models

    for key in [k for k in os.environ if k.startswith("LOOKERSDK_")]:
        del os.environ[key]
    ini = os.path.join(tempfile.mkdtemp(), "looker.ini")
    with open(ini, "w") as f:
        f.write("[Looker]\nbase_url=%s\nclient_id=%s\nclient_secret=%s\nverify_ssl=False\n" % (base, name, secret))
    sdk = looker_sdk.init40(config_file=ini)
    query = sdk.create_query(models.WriteQuery(model="polyquery", view="Testing1K", fields=["Testing1K.count"]))
    task = sdk.create_query_task(body=models.WriteCreateQueryTask(query_id=query.id, result_format=models.ResultFormat.json))
    running = 0
    deadline = time.time() + 60
    while True:
        status = sdk.query_task(task.id).status
        if status == "complete":
            break
        check(status in ("added", "running"), "status %r" % status)
        running += 1
        check(time.time() < deadline, "the task never completed")
        time.sleep(0.05)
    check(running >= polls, "only %d polls said running" % running)
    rows = json.loads(sdk.query_task_results(task.id))
    check(rows == [{"Testing1K.count": 1000}], "rows: %r" % (rows,))


def kylin_failure(base, name, password):
    from kylinpy import Kylin
    from kylinpy.exceptions import KylinQueryError

    url = urlparse(base)
    kylin = Kylin(url.hostname, username=name, password=password, port=url.port, project="learn_kylin", version="v2")
    try:
        kylin.query("select count(*) from kylin_sales")
    except KylinQueryError as e:
        check("injected by the rule" in str(e), "error text: %s" % e)
        return
    check(False, "the query must fail")


def main():
    mode, base, name, secret = sys.argv[1:5]
    base = base.rstrip("/")
    if mode == "luminesce-throttled":
        luminesce_throttled(base, secret)
    elif mode == "looker-not-ready":
        looker_not_ready(base, name, secret, int(sys.argv[5]))
    elif mode == "kylin-failure":
        kylin_failure(base, name, secret)
    else:
        sys.exit("unknown mode " + mode)
    print(mode + ": ok")


if __name__ == "__main__":
    main()
