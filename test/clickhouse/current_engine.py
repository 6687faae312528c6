"""
Runs Holdback's ClickHouse migrations and rows on a current ClickHouse engine, in process (chDB):
the SQL check of the versions the local stack does not run (it serves Debian's 18.16; the
docker-compose image is 25.8). Called by test/unit/clickhouse/current-engines.test.ts with one JSON
document on stdin:
  {"database": "...", "statements": ["CREATE ...", ...], "rows": {"table": [{...}, ...]}}
applies the statements in order, inserts the rows (JSONEachRow), then counts the rows of every
table and view of the database, which makes the engine analyse and run each view's query. Prints
one JSON line: {"version": "...", "counts": {"name": n}} or {"error": "...", "statement": "..."}.
"""
import json
import sys

from chdb import session

doc = json.load(sys.stdin)
db = doc["database"]
s = session.Session()


def run(sql):
    return s.query(sql, "JSONEachRow")


def fail(e, statement):
    print(json.dumps({"error": str(e), "statement": statement}))
    sys.exit(1)


version = json.loads(str(run("SELECT version() AS v")).strip())["v"]
run(f"CREATE DATABASE IF NOT EXISTS {db}")
for statement in doc["statements"]:
    try:
        run(statement)
    except Exception as e:  # noqa: BLE001 - reported to the test as it is
        fail(e, statement)
for table, rows in doc["rows"].items():
    body = "\n".join(json.dumps(r) for r in rows)
    statement = f"INSERT INTO {db}.{table} FORMAT JSONEachRow {body}"
    try:
        run(statement)
    except Exception as e:  # noqa: BLE001
        fail(e, statement[:500])
counts = {}
names = [json.loads(l)["name"] for l in str(run(f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name")).splitlines() if l]
for name in names:
    statement = f"SELECT count() AS n FROM {db}.`{name}`"
    try:
        counts[name] = int(json.loads(str(run(statement)).strip())["n"])
    except Exception as e:  # noqa: BLE001
        fail(e, statement)
print(json.dumps({"version": version, "counts": counts}))
