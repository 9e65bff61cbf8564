"""Drives polyquery with FINBOURNE's lumipy (PyPI `lumipy`), set up with only the URL and a token.

Usage: python lumipy_test.py http://127.0.0.1:PORT

get_client, query_and_fetch (the synchronous /api/Sql/csv), client.run and its QueryJob (wait,
result, cancel), pretty, the table field catalog, views (set up, read, delete_view), get_atlas and
the provider objects it builds (the fluent API: select, where, group_by, aggregate, windows,
to_table_var, joins; the Drive.SaveAs direct provider and to_drive), and the `lumipy query` command
line. Exits non-zero with a message naming the first mismatch.
"""

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time

import lumipy as lm

BASE = sys.argv[1].rstrip("/")
URL = BASE + "/honeycomb"
client = lm.get_client(api_url=URL, access_token="lumipy-user")
SCRIPT = "@x = select [Int], Str from Testing1K where [Int] <= 3; select [Int], Str, length(Str) from @x"


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")


df = client.query_and_fetch(SCRIPT)
check("query_and_fetch columns", list(df.columns), ["Int", "Str", "length(Str)"])
check("query_and_fetch rows", df.values.tolist(), [[1, "Str1", 4], [2, "Str2", 4], [3, "Str3", 4]])

df = client.run("select Bool, count(*) as n, total([Int]) as t from Testing1K group by Bool", quiet=True)
check("run", sorted(df.values.tolist()), [[False, 500, 250000.0], [True, 500, 250500.0]])

# A QueryJob: it runs (each Takes500Ms value costs half a second), is waited for, and is read back.
job = client.run("select Str, Takes500Ms from Testing1K where [Int] <= 3", return_job=True, quiet=True)
check("job running at first", job.is_running(), True)
job.wait()
check("job result", job.get_result(quiet=True).values.tolist(), [["Str1", 1], ["Str2", 2], ["Str3", 3]])

# Cancelling a running job: it stops and reads Canceled.
slow = client.run("select Str, Takes500Ms from Testing1K where [Int] <= 100", return_job=True, quiet=True)
slow.delete()
deadline = time.time() + 10
while slow.is_running() and time.time() < deadline:
    time.sleep(0.1)
check("cancelled job status", str(slow.get_status()), "TaskStatus.CANCELED")

# lumipy tags the SQL with a comment line of its own first.
check("pretty", client.pretty("select [Int] from Testing1K where [Int] < 2").splitlines()[-3:],
      ["SELECT [Int]", "FROM Testing1K", "WHERE [Int] < 2"])

catalog = client.table_field_catalog()
check("table field catalog", list(catalog[catalog.TableName == "Testing1K"].FieldName)[:2], ["Int", "Str"])

# Views: set up in the shape lumipy's setup_view writes, read as a table, removed by delete_view.
df = client.run("""@v = use Sys.Admin.SetupView
    --provider=Lumipy.Small
    -----------
    select [Int], Str from Testing1K where [Int] <= 2
enduse;
select * from @v""", quiet=True)
check("setup view", df.values.tolist(), [[1, "Str1"], [2, "Str2"]])
check("view read", client.query_and_fetch("select Str from [Lumipy.Small] order by Str desc").Str.tolist(), ["Str2", "Str1"])
check("view in the catalog", list(client.table_field_catalog().query("TableName == 'Lumipy.Small'").FieldName), ["Int", "Str"])
client.delete_view("Lumipy.Small")
check("view deleted", list(client.table_field_catalog().query("TableName == 'Lumipy.Small'").FieldName), [])

# The atlas, built from lumipy's own catalog queries: data providers, and Drive.SaveAs as a direct one.
def quietly(run):
    with contextlib.redirect_stdout(io.StringIO()):
        return run()


atlas = quietly(lambda: lm.get_atlas(api_url=URL, access_token="lumipy-user"))
t = atlas.testing1k()
check("atlas provider columns", [c.meta.field_name for c in t.get_columns()][:3], ["Int", "Str", "Dbl"])
check("atlas direct provider", callable(atlas.drive_saveas), True)

# The fluent API: every query below is lumipy's SQL, run here.
grouped = t.select(t.bool).where(t.int <= 10).group_by(t.bool).aggregate(
    n=t.int.count(), s=t.int.sum(), m=t.dbl.mean()).order_by(t.bool.asc())
check("fluent group and aggregate", quietly(grouped.go).values.tolist(),
      [[False, 5, 25.0, 1.25], [True, 5, 30.0, 1.5]])
tv = t.select(t.int, t.str).where(t.int <= 3).to_table_var()
check("fluent table variable", quietly(tv.select("*").go).values.tolist(),
      [[1, "Str1"], [2, "Str2"], [3, "Str3"]])
other = atlas.testing10k()
joined = tv.inner_join(other, on=tv.int == other.int).select(tv.int, other.dbl)
check("fluent join", quietly(joined.go).values.tolist(), [[1, 0.25], [2, 0.5], [3, 0.75]])

# Windows: lumipy writes each frame with SQLite's EXCLUDE NO OTHERS.
windowed = t.select(t.int, r=lm.window(groups=t.bool, orders=t.int.asc()).row_number(),
                    c=lm.window(orders=t.int.asc()).sum(t.int)).where(t.int < 5).order_by(t.int.asc())
check("fluent windows", quietly(windowed.go).values.tolist(), [[1, 1, 1], [2, 1, 3], [3, 2, 6], [4, 2, 10]])

# Drive.SaveAs through the atlas (the files are checked by the Rust test that runs this script).
saved = atlas.drive_saveas(tv, type="Csv", path="/lumipy/", file_names="small")
check("drive_saveas columns", [c.meta.field_name for c in saved.get_columns()],
      ["VariableName", "FileName", "RowCount", "Skipped"])
check("drive_saveas", quietly(saved.select("*").go).values.tolist()[0][1:], ["/lumipy/small.csv", 3, False])
to_drive = t.select(t.int).where(t.int < 3).to_drive("/lumipy/to_drive.csv")
check("to_drive", quietly(to_drive.go).values.tolist()[0][1:], ["/lumipy/to_drive.csv", 2, False])

# The command line, configured by the environment variables the SDK reads.
with tempfile.TemporaryDirectory() as out:
    env = dict(os.environ, FBN_LUMINESCE_URL=URL, FBN_ACCESS_TOKEN="lumipy-user")
    cli = os.path.join(os.path.dirname(sys.executable), "lumipy")
    target = os.path.join(out, "result.csv")
    run = subprocess.run(
        [cli, "query", "--sql", "select [Int], Str from Testing1K where [Int] <= 2", "--save-to", target],
        env=env, capture_output=True, text=True, timeout=120,
    )
    check("lumipy query exit code", (run.returncode, run.stderr[-500:]), (0, run.stderr[-500:]))
    check("lumipy query says where it saved", "saved to" in run.stdout, True)
    with open(target) as f:
        check("lumipy query csv", [line.split(",")[-2:] for line in f.read().splitlines()[1:]],
              [["1", "Str1"], ["2", "Str2"]])

print("lumipy: ok")
