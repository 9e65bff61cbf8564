"""Apache Superset's Kylin time grains and literal forms, run through kylinpy and SQLAlchemy.

Usage: python superset_check.py http://127.0.0.1:PORT

Superset's Kylin engine spec (superset/db_engine_specs/kylin.py) writes each time grain as Calcite
SQL around the time column, and each filter bound as a CAST of a literal. The table below restates
those forms (our own wording of the facts, not Superset's code). Every grain is grouped by the
server and checked against the raw rows, read with pandas.read_sql over kylinpy's DB-API
connection and bucketed here in Python. Exits non-zero with a message on the first mismatch.
"""

import collections
import datetime
import sys
import warnings
from urllib.parse import urlparse

import pandas as pd
import sqlalchemy as sa


def check(condition, message):
    if not condition:
        print("MISMATCH: " + message, file=sys.stderr)
        sys.exit(1)


def year_start(d):
    return datetime.date(d.year, 1, 1)


# grain -> (Calcite SQL around {col}, the bucket of one value computed in Python, bucket type).
# Week and quarter are what Superset's forms compute: the year's start plus (ISO week - 1) weeks,
# plus (quarter - 1) quarters.
GRAINS = {
    "PT1S": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO SECOND) AS TIMESTAMP)",
             lambda t: t.replace(microsecond=0), datetime.datetime),
    "PT1M": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO MINUTE) AS TIMESTAMP)",
             lambda t: t.replace(second=0, microsecond=0), datetime.datetime),
    "PT1H": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO HOUR) AS TIMESTAMP)",
             lambda t: t.replace(minute=0, second=0, microsecond=0), datetime.datetime),
    "P1D": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO DAY) AS DATE)",
            lambda t: t.date(), datetime.date),
    "P1W": ("CAST(TIMESTAMPADD(WEEK, WEEK(CAST({col} AS DATE)) - 1, "
            "FLOOR(CAST({col} AS TIMESTAMP) TO YEAR)) AS DATE)",
            lambda t: year_start(t) + datetime.timedelta(weeks=t.isocalendar()[1] - 1),
            datetime.date),
    "P1M": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO MONTH) AS DATE)",
            lambda t: datetime.date(t.year, t.month, 1), datetime.date),
    "P0.25Y": ("CAST(TIMESTAMPADD(QUARTER, QUARTER(CAST({col} AS DATE)) - 1, "
               "FLOOR(CAST({col} AS TIMESTAMP) TO YEAR)) AS DATE)",
               lambda t: datetime.date(t.year, 3 * ((t.month - 1) // 3) + 1, 1), datetime.date),
    "P1Y": ("CAST(FLOOR(CAST({col} AS TIMESTAMP) TO YEAR) AS DATE)",
            lambda t: year_start(t), datetime.date),
}


def literal(target_type, value):
    """A filter bound as Superset writes it for a DATE or TIMESTAMP column."""
    if target_type == "DATE":
        return "CAST('%s' AS DATE)" % value.date().isoformat()
    return "CAST('%s' AS TIMESTAMP)" % value.isoformat(sep=" ", timespec="seconds")


def read_frame(engine, sql):
    # pandas wants a SQLAlchemy 2 engine or a DB-API connection; kylinpy's is the latter.
    connection = engine.raw_connection()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return pd.read_sql(sql, connection)
    finally:
        connection.close()


def as_datetime(value):
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    return pd.Timestamp(value).to_pydatetime()


def grains_match(engine, table, column, column_type):
    frame = read_frame(engine, "select %s from %s" % (column, table))
    # An unquoted name matches the catalog's column ignoring case and is labelled as the catalog
    # spells it (Kylin's sample tables upper-case, thelook's lower-case).
    check([c.upper() for c in frame.columns] == [column.upper()], "pandas columns: %r" % list(frame.columns))
    values = [as_datetime(v) for v in frame[frame.columns[0]] if v is not None and not pd.isna(v)]
    check(len(values) > 100, "%s.%s rows: %d" % (table, column, len(values)))
    for grain, (template, bucket, kind) in GRAINS.items():
        expr = template.format(col=column)
        sql = ("SELECT %s AS __timestamp, COUNT(*) AS cnt FROM %s WHERE %s IS NOT NULL "
               "GROUP BY %s ORDER BY __timestamp" % (expr, table, column, expr))
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql))
            keys = list(result.keys())
            rows = result.fetchall()
        check(keys == ["__TIMESTAMP", "CNT"], "%s %s keys: %r" % (table, grain, keys))
        check(all(type(r[0]) is kind for r in rows),
              "%s %s bucket type: %r" % (table, grain, rows[:2]))
        served = {r[0]: r[1] for r in rows}
        expected = collections.Counter(bucket(v) for v in values)
        check(served == dict(expected),
              "%s %s buckets differ: %d served, %d expected; first served %r, expected %r" % (
                  table, grain, len(served), len(expected),
                  sorted(served.items())[:3], sorted(expected.items())[:3]))
        print("grain %-6s %-14s %4d buckets" % (grain, table, len(served)))

    # Superset's filter bounds: a half-open range of literals.
    low, high = datetime.datetime(2013, 1, 1), datetime.datetime(2013, 7, 1, 12, 30)
    sql = "SELECT COUNT(*) FROM %s WHERE %s >= %s AND %s < %s" % (
        table, column, literal(column_type, low), column, literal(column_type, high))
    with engine.connect() as conn:
        counted = conn.execute(sa.text(sql)).scalar()
    if column_type == "DATE":
        low, high = low.replace(hour=0, minute=0), datetime.datetime(2013, 7, 1)
    expected = sum(1 for v in values if low <= v < high)
    check(counted == expected, "%s range %s: %r, expected %d" % (table, sql, counted, expected))


def main():
    url = urlparse(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
    base = "kylin://ADMIN:KYLIN@%s:%d/%%s?version=v1" % (url.hostname, url.port)

    learn = sa.create_engine(base % "learn_kylin")
    grains_match(learn, "kylin_sales", "part_dt", "DATE")
    everything = sa.create_engine(base % "DEFAULT")
    grains_match(everything, "order_items", "created_at", "TIMESTAMP")

    # Reflection: kylinpy reads type_NAME, which carries DECIMAL's precision and scale.
    columns = sa.inspect(learn).get_columns("KYLIN_SALES", schema="DEFAULT")
    price = {c["name"]: c["type"] for c in columns}["PRICE"]
    check(isinstance(price, sa.types.DECIMAL) and (price.precision, price.scale) == (19, 4),
          "PRICE reflects as %r" % (price,))

    # Calcite labels an unaliased expression EXPR$n; pandas sees the label.
    frame = read_frame(learn, "select lstg_format_name, count(*) from kylin_sales "
                              "group by lstg_format_name order by lstg_format_name")
    check(list(frame.columns) == ["LSTG_FORMAT_NAME", "EXPR$1"], "labels: %r" % list(frame.columns))
    total = read_frame(learn, "select count(*) as n from kylin_sales")["N"][0]
    check(frame["EXPR$1"].sum() == total, "grouped %r vs %r" % (frame["EXPR$1"].sum(), total))
    print("superset: ok")


if __name__ == "__main__":
    main()
