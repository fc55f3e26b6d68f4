#!/usr/bin/env python3
"""Scale benchmark of `cemflow poor-users` and one-user `cemflow demarcate` against DuckDB
on the same Parquet files (issue 8, SPEC §9). Warm: every timing is the best of --runs
after one unmeasured run; everything runs in this one process tree, one after the other.

    python3 scripts/scale_bench.py --lake DIR --cemflow target/release/cemflow \
        --example target/release/examples/scale [--runs 5] [--at T] [--user KEY]

The lake must have been written by `scale gen` (it holds `scale_truth.json`). Measured:
* `cemflow` CLI wall time (process start, Delta log, session, query, output);
* the same commands in process (`scale bench`: session opened once);
* DuckDB (Python `duckdb`, the venv's) running the SQL those commands run, on the active
  files of the Delta tables (`read_parquet(files, hive_partitioning = true)`), results
  materialised as Arrow tables.
Prints a table and, with --json FILE, writes all numbers.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def best_of(runs, f):
    f()  # warm-up, unmeasured
    times = []
    out = None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[0], times[len(times) // 2], out


def window_pred(a, b):
    """cemflow's util::window_predicate: date partitions + window_start range."""
    return (
        f"date >= '{a:%Y-%m-%d}' AND date <= '{b:%Y-%m-%d}' "
        f"AND window_start >= '{iso(a)}' AND window_start <= '{iso(b)}'"
    )


def lit_list(vals):
    return ",".join("'" + v.replace("'", "''") + "'" for v in sorted(vals))


class Duck:
    def __init__(self, lake, threads):
        import duckdb
        from deltalake import DeltaTable

        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {threads}")
        self.files = {}
        for t in ("user_minute", "element_minute", "anomalies"):
            files = DeltaTable(os.path.join(lake, t)).file_uris()
            self.files[t] = len(files)
            if files:
                src = f"read_parquet({files!r}, hive_partitioning = true)"
                self.con.execute(f"CREATE VIEW {t} AS SELECT * FROM {src}")
            else:
                self.con.execute(
                    f"CREATE VIEW {t} AS SELECT NULL::TIMESTAMPTZ AS window_start, "
                    "NULL::DATE AS date, NULL::VARCHAR AS entity_id, "
                    "NULL::VARCHAR AS entity_kind, NULL::BOOLEAN AS anomalous WHERE false"
                )

    def q(self, sql):
        return self.con.execute(sql).fetch_arrow_table()

    # --- the SQL of `cemflow poor-users` (queries/src/poor_users.rs) ---
    def poor_users(self, at, verdicts):
        frm = at - timedelta(minutes=14)
        pred = window_pred(frm, at)
        rule = self.q(
            "SELECT user_key, avg(cei) AS cei, "
            "sum(CASE WHEN cei < 60 THEN 1 ELSE 0 END) AS poor_minutes "
            f"FROM user_minute WHERE {pred} AND source = 'probe' AND category = 'all' GROUP BY user_key "
            "HAVING sum(CASE WHEN cei < 60 THEN 1 ELSE 0 END) >= 3 ORDER BY cei ASC, user_key"
        )
        keys = rule.column("user_key").to_pylist()
        for i in range(0, len(keys), 1000):
            self.q(
                "SELECT user_key, category, avg(cei) AS cei, "
                "sum(CASE WHEN cei < 60 THEN 1 ELSE 0 END) AS poor "
                f"FROM user_minute WHERE {pred} AND source = 'probe' AND category <> 'all' "
                f"AND user_key IN ({lit_list(keys[i:i + 1000])}) GROUP BY user_key, category"
            )
        if verdicts and keys:
            self.verdict_rows(keys, at + timedelta(minutes=1))
        return len(keys)

    def verdict_rows(self, keys, end):
        """The rows the verdicts of the listed users are computed from
        (demarcate::load_for_users)."""
        start = end - timedelta(minutes=30)
        pred = window_pred(start, end)
        own = self.q(
            f"SELECT {U_COLS} FROM user_minute WHERE {pred} AND source = 'probe' "
            f"AND user_key IN ({lit_list(keys)})"
        )
        self.peer_rows(own, end, keys)

    def peer_rows(self, own, end, keys):
        """Peers of the users `keys` over the span of their poor minutes (computed by
        DuckDB from their own rows, as cemflow computes it from its)."""
        self.con.register("own_rows", own)
        # Poor minutes: the overall row or (category_poor, default on) any category row
        # below 60.
        poor = "FROM own_rows WHERE cei < 60"
        p0, p1 = self.con.execute(f"SELECT min(window_start), max(window_start) {poor}").fetchone()
        if p0 is None:
            return 0
        col = lambda c, w: [r[0] for r in self.con.execute(f"SELECT DISTINCT {c} {w}").fetchall()]
        accs = col("access_element", poor)
        cores = col("core_element", poor)
        servers = col(
            "worst_server",
            f"FROM own_rows WHERE window_start >= '{iso(p0)}' AND window_start <= '{iso(p1)}' "
            "AND worst_server IS NOT NULL",
        )
        ors = [f"access_element IN ({lit_list(accs)})", f"core_element IN ({lit_list(cores)})"]
        if servers:
            ors.append(f"worst_server IN ({lit_list(servers)})")
        ppred = window_pred(p0, p1)
        not_me = (
            f"user_key <> '{keys[0]}'" if len(keys) == 1 else f"user_key NOT IN ({lit_list(keys)})"
        )
        peers = self.q(
            f"SELECT {U_COLS} FROM user_minute WHERE {ppred} AND source = 'probe' AND {not_me} "
            f"AND (category = 'all' OR cei < 60) AND ({' OR '.join(ors)})"
        )
        self.q(
            "SELECT window_start, level, element_id, users, poor_users, rtt_server_ms_median "
            f"FROM element_minute WHERE {ppred} AND level IN ('access', 'core', 'server')"
        )
        start = end - timedelta(minutes=30)
        self.q(
            f"SELECT window_start, entity_id FROM anomalies WHERE {window_pred(start, end)} "
            "AND anomalous AND entity_kind = 'element'"
        )
        return peers.num_rows

    # --- the SQL of one-user `cemflow demarcate` (demarcate::load_for_user) ---
    def demarcate(self, user_key, at):
        start = at - timedelta(minutes=30)
        own = self.q(
            f"SELECT {U_COLS} FROM user_minute WHERE {window_pred(start, at)} AND source = 'probe' "
            f"AND user_key = '{user_key}'"
        )
        return self.peer_rows(own, at, [user_key])


U_COLS = (
    "window_start, user_key, category, access_element, core_element, cei, active_s, "
    "rtt_client_ms, rtt_server_ms, loss_pct, retrans_rate, worst_server"
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--cemflow", required=True, help="release cemflow binary")
    ap.add_argument("--example", required=True, help="release `scale` example binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--at", help="evaluation instant (default: the truth's fault instant)")
    ap.add_argument("--user", help="user_key to demarcate (default: picked by `scale bench`)")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: all)")
    ap.add_argument("--json", help="write the numbers here")
    a = ap.parse_args()

    truth = json.load(open(os.path.join(a.lake, "scale_truth.json")))
    at_s = a.at or truth["fault_at"]
    at = parse_iso(at_s) if "T" in at_s else datetime.fromtimestamp(int(at_s), timezone.utc)

    cmd = [a.example, "bench", "--lake", a.lake, "--at", iso(at), "--runs", str(a.runs)]
    if a.user:
        cmd += ["--user", a.user]
    inproc = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    user = inproc["demarcate_user"]
    dem_at = parse_iso(inproc["demarcate_at"])

    def cli(args):
        r = subprocess.run([a.cemflow] + args, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cemflow {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    pu_cli = best_of(
        a.runs,
        lambda: cli(["poor-users", "--lake", a.lake, "--at", iso(at), "--format", "jsonl"]),
    )
    n_poor_cli = len(pu_cli[2].splitlines())
    dm_cli = best_of(
        a.runs,
        lambda: cli(
            ["demarcate", "--lake", a.lake, "--user", user, "--at", iso(dem_at),
             "--no-store", "--format", "jsonl"]
        ),
    )
    duck = Duck(a.lake, a.threads)
    pu_duck = best_of(a.runs, lambda: duck.poor_users(at, True))
    rule_duck = best_of(a.runs, lambda: duck.poor_users(at, False))
    dm_duck = best_of(a.runs, lambda: duck.demarcate(user, dem_at))

    res = {
        "lake": a.lake,
        "user_minute_rows": truth.get("user_minute_rows"),
        "element_minute_rows": truth.get("element_minute_rows"),
        "files": duck.files,
        "at": iso(at),
        "runs": a.runs,
        "poor_users": {
            "listed": n_poor_cli,
            "cli_ms": pu_cli[0],
            "in_process_ms": inproc["poor_users_ms"]["best"],
            "rule_only_in_process_ms": inproc["poor_users_rule_only_ms"]["best"],
            "duckdb_ms": pu_duck[0],
            "duckdb_rule_only_ms": rule_duck[0],
        },
        "demarcate": {
            "user": user,
            "verdict": inproc["demarcate_verdict"],
            "element": inproc["demarcate_element"],
            "cli_ms": dm_cli[0],
            "in_process_ms": inproc["demarcate_ms"]["best"],
            "duckdb_ms": dm_duck[0],
        },
        "session_open_ms": inproc["open_ms"],
        "verdicts": inproc["verdicts"],
    }
    for k in ("poor_users", "demarcate"):
        r = res[k]
        r["ratio_cli_vs_duckdb"] = r["cli_ms"] / r["duckdb_ms"]
        r["ratio_in_process_vs_duckdb"] = r["in_process_ms"] / r["duckdb_ms"]
    res["poor_users"]["ratio_rule_only"] = (
        res["poor_users"]["rule_only_in_process_ms"] / res["poor_users"]["duckdb_rule_only_ms"]
    )
    print(f"lake {a.lake}: {res['user_minute_rows']} user_minute rows, files {duck.files}")
    print(f"at {iso(at)}, best of {a.runs} warm runs (ms)")
    print(f"{'':28}{'cemflow CLI':>12}{'in process':>12}{'DuckDB':>10}{'CLI/Duck':>10}{'proc/Duck':>10}")
    for name, r in (("poor-users (with verdicts)", res["poor_users"]), ("demarcate (one user)", res["demarcate"])):
        print(
            f"{name:28}{r['cli_ms']:12.1f}{r['in_process_ms']:12.1f}{r['duckdb_ms']:10.1f}"
            f"{r['ratio_cli_vs_duckdb']:10.2f}{r['ratio_in_process_vs_duckdb']:10.2f}"
        )
    p = res["poor_users"]
    print(
        f"{'poor-user rule only':28}{'':>12}{p['rule_only_in_process_ms']:12.1f}"
        f"{p['duckdb_rule_only_ms']:10.1f}{'':>10}{p['ratio_rule_only']:10.2f}"
    )
    print(f"poor users listed: {p['listed']}, verdicts {res['verdicts']}")
    d = res["demarcate"]
    print(f"demarcate {d['user']}: {d['verdict']} {d['element']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
