#![recursion_limit = "256"]
//! Interop (issue 7): Python `deltalake` + `pyarrow`, `polars` and DuckDB (over the
//! snapshot's Parquet files listed by deltalake) read every table of a lake written by
//! cemflow, and agree with cemflow on row counts and per-column aggregates (sums of
//! numbers, distinct strings, true counts, min/max of times and dates, null counts), the
//! schema version and the app transaction version.
//!
//! Python: `$CEMFLOW_PYTHON`, else `$HOME/.cache/cemflow-venv/bin/python` (made by
//! `.ci/run` from `.ci/requirements.txt`), else `python3`. Without the packages the test
//! is skipped with a message, unless `CEMFLOW_REQUIRE_INTEROP=1` (then it fails).

mod common;

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type};
use cemflow_dataflow::{Pseudonymizer, Topology};
use cemflow_lakehouse::{convert, DemarcationRow, Lake, Table, SCHEMA_VERSION};
use common::*;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CEMFLOW_PYTHON") {
        return p.into();
    }
    if let Some(home) = std::env::var_os("HOME") {
        let venv = PathBuf::from(home).join(".cache/cemflow-venv/bin/python");
        if venv.exists() {
            return venv;
        }
    }
    "python3".into()
}

fn aggregates(lake: &Lake, table: Table) -> Value {
    let batches = lake.read_table(table, None).unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut cols = Map::new();
    for field in table.schema().fields() {
        let name = field.name();
        let arrays: Vec<_> = batches
            .iter()
            .map(|b| b.column_by_name(name).expect(name).clone())
            .collect();
        let nulls: usize = arrays.iter().map(|a| a.null_count()).sum();
        let v = match field.data_type() {
            DataType::Int32 | DataType::Int64 | DataType::Float32 | DataType::Float64 => {
                let mut s = 0f64;
                for a in &arrays {
                    for i in 0..a.len() {
                        if a.is_null(i) {
                            continue;
                        }
                        s += match a.data_type() {
                            DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as f64,
                            DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
                            DataType::Float32 => a.as_primitive::<Float32Type>().value(i) as f64,
                            _ => a.as_primitive::<Float64Type>().value(i),
                        };
                    }
                }
                json!(["num", s, nulls])
            }
            DataType::Boolean => {
                let t: usize = arrays
                    .iter()
                    .map(|a| {
                        a.as_any()
                            .downcast_ref::<BooleanArray>()
                            .unwrap()
                            .true_count()
                    })
                    .sum();
                json!(["bool", t, nulls])
            }
            DataType::Timestamp(..) => {
                let vals: Vec<i64> = arrays
                    .iter()
                    .flat_map(|a| {
                        let t = a
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .unwrap();
                        t.iter().flatten().collect::<Vec<_>>()
                    })
                    .collect();
                json!(["ts", vals.iter().min(), vals.iter().max(), nulls])
            }
            DataType::Date32 => {
                let vals: Vec<i32> = arrays
                    .iter()
                    .flat_map(|a| {
                        let t = a.as_any().downcast_ref::<Date32Array>().unwrap();
                        t.iter().flatten().collect::<Vec<_>>()
                    })
                    .collect();
                json!(["date", vals.iter().min(), vals.iter().max(), nulls])
            }
            DataType::Utf8 => {
                let set: HashSet<String> = arrays
                    .iter()
                    .flat_map(|a| {
                        let t = a.as_any().downcast_ref::<StringArray>().unwrap();
                        t.iter().flatten().map(str::to_string).collect::<Vec<_>>()
                    })
                    .collect();
                json!(["str", set.len(), nulls])
            }
            other => panic!("no aggregate for {other}"),
        };
        cols.insert(name.clone(), v);
    }
    json!({
        "rows": rows,
        "cols": cols,
        "partitioned": !table.partition_columns().is_empty(),
    })
}

#[test]
fn python_deltalake_polars_duckdb_read_every_table() {
    let py = python();
    let probe = Command::new(&py)
        .args(["-c", "import deltalake, duckdb, polars, pyarrow"])
        .output();
    let available = probe.as_ref().is_ok_and(|o| o.status.success());
    if !available {
        let msg = format!(
            "interop test SKIPPED: `{} -c 'import deltalake, duckdb, polars, pyarrow'` failed; \
             create the venv: python3 -m venv ~/.cache/cemflow-venv && \
             ~/.cache/cemflow-venv/bin/pip install -r .ci/requirements.txt",
            py.display()
        );
        if std::env::var("CEMFLOW_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    // Windows spanning an hour and a day boundary: several partitions.
    let starts = [w(0), w(59), w(60), w(61), w(660)];
    for s in starts {
        lake.commit_window("interop", s, window(s)).unwrap();
    }
    let pseudo = Pseudonymizer::new(b"interop-key").unwrap();
    let topo_path = dir.path().join("topology.csv");
    std::fs::write(
        &topo_path,
        "user,home_id,access_element,core_element,region,plan_mbps\n\
         10.0.0.1,,olt1/pon1,bng1,north,300\n\
         10.0.0.2,h2,olt1/pon1,bng1,,\n\
         460001234567890,,cell-7,upf1,south,100\n",
    )
    .unwrap();
    assert_eq!(lake.load_topology(&topo_path, &pseudo).unwrap().loaded, 3);
    let cpath = dir.path().join("complaints.csv");
    std::fs::write(
        &cpath,
        "complaint_id,user,reported_at,service,text\n\
         c1,10.0.0.2,2024-03-05T13:10:00Z,video,\"buffering, again\"\n\
         c2,10.0.0.1,1709730000,,\n",
    )
    .unwrap();
    assert_eq!(
        lake.load_complaints(&cpath, &pseudo, &Topology::default())
            .unwrap()
            .loaded,
        2
    );
    let d = DemarcationRow {
        complaint_id: Some("c1".into()),
        user_key: pseudo.user_key("h2"),
        window_start_s: w(-20),
        window_end_s: w(10),
        verdict: "access".into(),
        element: Some("olt1/pon1".into()),
        confidence: 0.75,
        evidence: json!({"n": 7, "k": 4, "lower_bound": 0.31}),
        evaluated_at_s: w(12),
    };
    let nf = DemarcationRow {
        complaint_id: None,
        element: None,
        verdict: "no_fault_found".into(),
        ..d.clone()
    };
    lake.append(
        Table::Demarcations,
        vec![convert::demarcations_batch(&[d, nf]).unwrap()],
    )
    .unwrap();

    let mut tables = Map::new();
    for t in Table::ALL {
        let mut a = aggregates(&lake, t);
        assert!(a["rows"].as_u64().unwrap() > 0, "{t} has rows");
        if t.is_windowed() {
            a["txn"] = json!(starts[starts.len() - 1]);
        }
        tables.insert(t.name().to_string(), a);
    }
    let expected = json!({
        "schema_version": SCHEMA_VERSION,
        "app_id": "cemflow/interop",
        "tables": tables,
    });
    let exp_path = dir.path().join("expected.json");
    std::fs::write(&exp_path, serde_json::to_vec_pretty(&expected).unwrap()).unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(std::fs::canonicalize(&root).unwrap())
        .arg(&exp_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "python readers disagree with cemflow:\n{stdout}\n{stderr}"
    );
}
