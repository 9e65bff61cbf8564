"""kylinpy (PyPI, pinned in tests/sdk/requirements-kylin.txt) against a polyquery server.

Usage: python kylinpy_check.py http://127.0.0.1:PORT

Runs sync queries through the client in its v1, v2 and v4 API versions, lists tables and columns,
and goes through the SQLAlchemy dialect. Exits non-zero with a message on the first mismatch.
"""

import datetime
import sys
from urllib.parse import urlparse

import sqlalchemy as sa
from kylinpy import Kylin
from kylinpy.exceptions import KylinQueryError


def check(condition, message):
    if not condition:
        print("MISMATCH: " + message, file=sys.stderr)
        sys.exit(1)


def main():
    url = urlparse(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
    host, port = url.hostname, url.port

    for version in ("v1", "v2", "v4"):
        kylin = Kylin(host, username="ADMIN", password="KYLIN", port=port,
                      project="learn_kylin", version=version)
        rows = kylin.query(
            "select lstg_format_name, count(*) as trans_cnt from kylin_sales "
            "group by lstg_format_name order by lstg_format_name")
        metas = rows["columnMetas"]
        check([m["label"] for m in metas] == ["LSTG_FORMAT_NAME", "TRANS_CNT"],
              "%s column labels: %r" % (version, [m["label"] for m in metas]))
        check(len(rows["results"]) > 1, "%s results: %r" % (version, rows["results"]))
        check(all(isinstance(c, str) for r in rows["results"] for c in r),
              "%s cells must be strings: %r" % (version, rows["results"][:2]))
        tables = kylin.get_all_tables()
        check("KYLIN_SALES" in tables, "%s tables: %r" % (version, tables))
        columns = [c.name for c in kylin.get_table_source("KYLIN_SALES", "DEFAULT").columns]
        check(columns[:3] == ["TRANS_ID", "PART_DT", "LSTG_FORMAT_NAME"],
              "%s columns: %r" % (version, columns))
        try:
            kylin.query("select * from no_such_table")
            check(False, "%s: a missing table must raise" % version)
        except KylinQueryError as e:
            check("NO_SUCH_TABLE" in str(e), "%s error text: %s" % (version, e))

    # The DB-API cursor converts cells by columnTypeName.
    engine = sa.create_engine(
        "kylin://ADMIN:KYLIN@%s:%d/learn_kylin?version=v1" % (host, port))
    with engine.connect() as conn:
        result = conn.execute(sa.text(
            "select trans_id, part_dt, price, lstg_format_name from kylin_sales "
            "order by trans_id limit 2"))
        fetched = result.fetchall()
        check(len(fetched) == 2, "sqlalchemy rows: %r" % fetched)
        first = fetched[0]
        check(first[0] == 0, "TRANS_ID as int: %r" % (first,))
        check(first[1] == datetime.date(2012, 10, 14), "PART_DT as date: %r" % (first,))
        check(abs(float(first[2]) - 80.7556) < 1e-9, "PRICE as number: %r" % (first,))
        check(first[3] == "FP-non GTC", "LSTG_FORMAT_NAME: %r" % (first,))
        check(list(result.keys()) == ["TRANS_ID", "PART_DT", "PRICE", "LSTG_FORMAT_NAME"],
              "keys: %r" % list(result.keys()))

    inspector = sa.inspect(engine)
    names = inspector.get_table_names(schema="DEFAULT")
    check("KYLIN_SALES" in names, "inspector tables: %r" % names)
    columns = inspector.get_columns("KYLIN_SALES", schema="DEFAULT")
    by_name = {c["name"]: c["type"] for c in columns}
    check(isinstance(by_name.get("PRICE"), sa.types.DECIMAL), "PRICE type: %r" % by_name)
    check(isinstance(by_name.get("PART_DT"), sa.types.DATE), "PART_DT type: %r" % by_name)

    # SQLAlchemy Core builds the SQL; Kylin folds the unquoted names.
    sales = sa.Table("KYLIN_SALES", sa.MetaData(), autoload=True, autoload_with=engine,
                     schema="DEFAULT")
    query = (sa.select([sales.c.LSTG_FORMAT_NAME, sa.func.count().label("N")])
             .group_by(sales.c.LSTG_FORMAT_NAME)
             .order_by(sales.c.LSTG_FORMAT_NAME))
    with engine.connect() as conn:
        grouped = conn.execute(query).fetchall()
    check(len(grouped) > 1 and all(isinstance(r[1], int) for r in grouped),
          "core select: %r" % grouped)
    total = sum(r[1] for r in grouped)
    with engine.connect() as conn:
        counted = conn.execute(sa.text("select count(*) from kylin_sales")).scalar()
    check(total == counted, "group counts %d vs count(*) %r" % (total, counted))
    print("kylinpy: ok")


if __name__ == "__main__":
    main()
