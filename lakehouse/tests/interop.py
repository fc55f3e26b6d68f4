"""Reads every table of a cemflow lake with Python deltalake (+pyarrow), polars and DuckDB
and compares each reader's rows with the aggregates cemflow computed (expected.json).

Usage: interop.py LAKE_ROOT EXPECTED_JSON
Exit 0 when every reader agrees with cemflow on every table; 1 with a list of mismatches.
Run by lakehouse/tests/interop.rs (issue 7).
"""

import json
import math
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable


def to_kind_value(name, col, kind):
    """Aggregate of one column in the form cemflow's expected.json uses."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    nulls = col.null_count
    t = col.type
    if kind == "num":
        s = pc.sum(col.cast(pa.float64())).as_py()
        return ["num", s if s is not None else 0.0, nulls]
    if kind == "bool":
        s = pc.sum(col.cast(pa.int64())).as_py()
        return ["bool", s if s is not None else 0, nulls]
    if kind == "ts":
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            col = pc.strptime(col.cast(pa.string()), format="%Y-%m-%dT%H:%M:%S", unit="us")
        v = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return ["ts", pc.min(v).as_py(), pc.max(v).as_py(), nulls]
    if kind == "date":
        if not pa.types.is_date(t):
            col = col.cast(pa.string()).cast(pa.date32())
        v = col.cast(pa.date32()).cast(pa.int32())
        return ["date", pc.min(v).as_py(), pc.max(v).as_py(), nulls]
    if kind == "str":
        v = col.cast(pa.string())
        return ["str", pc.count_distinct(v, mode="only_valid").as_py(), nulls]
    raise ValueError(f"unknown kind {kind} for {name}")


def same(a, b):
    if a[0] != b[0] or len(a) != len(b):
        return False
    for x, y in zip(a[1:], b[1:]):
        if isinstance(x, float) or isinstance(y, float):
            if not math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-6):
                return False
        elif x != y:
            return False
    return True


def check(reader, table, tbl, exp, problems):
    if tbl.num_rows != exp["rows"]:
        problems.append(f"{reader} {table}: {tbl.num_rows} rows, cemflow wrote {exp['rows']}")
        return
    for name, want in exp["cols"].items():
        if name not in tbl.column_names:
            problems.append(f"{reader} {table}: column {name} missing")
            continue
        got = to_kind_value(name, tbl.column(name), want[0])
        if not same(got, want):
            problems.append(f"{reader} {table}.{name}: got {got}, cemflow {want}")


def main():
    root, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    problems = []
    counts = {}
    for table, exp in expected["tables"].items():
        uri = f"{root}/{table}"
        dt = DeltaTable(uri)
        cfg = dt.metadata().configuration
        if cfg.get("cemflow.schema_version") != str(expected["schema_version"]):
            problems.append(f"deltalake {table}: schema version {cfg.get('cemflow.schema_version')}")
        if exp.get("txn") is not None:
            v = dt.transaction_version(expected["app_id"])
            if v != exp["txn"]:
                problems.append(f"deltalake {table}: txn version {v}, cemflow {exp['txn']}")

        # 1. deltalake + pyarrow
        t1 = dt.to_pyarrow_table()
        check("deltalake", table, t1, exp, problems)

        # 2. polars
        t2 = pl.read_delta(uri).to_arrow()
        check("polars", table, t2, exp, problems)

        # 3. DuckDB over the snapshot's Parquet files (partition values from the paths).
        files = dt.file_uris()
        if files:
            hive = "true" if exp["partitioned"] else "false"
            file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            t3 = duckdb.sql(
                f"SELECT * FROM read_parquet([{file_list}], hive_partitioning={hive})"
            ).arrow()
            if isinstance(t3, pa.RecordBatchReader):
                t3 = t3.read_all()
        else:
            t3 = pa.table({})
        if exp["rows"] > 0 or t3.num_rows > 0:
            check("duckdb", table, t3, exp, problems)
        counts[table] = [t1.num_rows, t2.num_rows, t3.num_rows]

    print(json.dumps({"rows_deltalake_polars_duckdb": counts}))
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"interop: {len(counts)} tables agree across deltalake, polars and duckdb")


if __name__ == "__main__":
    main()
