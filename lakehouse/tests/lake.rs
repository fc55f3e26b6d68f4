#![recursion_limit = "256"]
//! Real Delta tables in temporary directories: create, commit, read back, exactly-once,
//! crash healing, maintenance, dimension loads.

mod common;

use arrow::array::{
    Array, Date32Array, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use cemflow_dataflow::{Pseudonymizer, Topology};
use cemflow_lakehouse::{
    Lake, LakeError, LakeOptions, OptimizeOptions, Table, TableBatches, VacuumOptions,
    SCHEMA_VERSION_KEY,
};
use common::*;
use std::collections::BTreeMap;

fn rows(lake: &Lake, t: Table) -> usize {
    lake.read_table(t, None)
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} type"))
}

fn all_rows(lake: &Lake) -> Vec<usize> {
    Table::WINDOWED.iter().map(|t| rows(lake, *t)).collect()
}

#[test]
fn open_creates_every_table_with_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    for t in Table::ALL {
        assert!(lake.table_exists(t).unwrap(), "{t}");
        let dt = lake.table(t).unwrap();
        let snap = dt.snapshot().unwrap();
        let cfg = snap.metadata().configuration();
        assert_eq!(
            cfg.get(SCHEMA_VERSION_KEY).cloned(),
            Some(cemflow_lakehouse::SCHEMA_VERSION.to_string()),
            "{t}"
        );
        assert_eq!(
            snap.metadata().partition_columns().to_vec(),
            t.partition_columns()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        assert!(snap
            .metadata()
            .description()
            .unwrap_or("")
            .contains("schema_version"));
        assert!(dir.path().join(t.name()).join("_delta_log").is_dir());
    }
    let info = lake.info().unwrap();
    assert_eq!(info.len(), 9);
    assert!(info.iter().all(|i| i.exists
        && i.rows == 0
        && i.schema_version == Some(cemflow_lakehouse::SCHEMA_VERSION.to_string())));
    // Re-opening an existing lake creates nothing and passes the version check.
    drop(lake);
    let again = Lake::open_existing(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(again.info().unwrap()[0].version, Some(0));
}

#[test]
fn open_existing_refuses_an_empty_dir_and_unsupported_schemes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    match Lake::open_existing(dir.path().to_str().unwrap()) {
        Err(LakeError::NotALake { .. }) => {}
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("nope");
    assert!(matches!(
        Lake::open_existing(missing.to_str().unwrap()),
        Err(LakeError::NotALake { .. })
    ));
    // s3:// is compiled in (tests/cli/lake.rs runs it against a local S3 server);
    // other object stores are not.
    let e = Lake::open("gs://bucket/lake").unwrap_err();
    assert!(matches!(e, LakeError::UnsupportedScheme { .. }), "{e}");
    assert!(e.to_string().contains("`gs`"), "{e}");
}

#[test]
fn commit_and_read_back_values() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let report = lake
        .commit_windows("probe-a", vec![(w(0), window(w(0))), (w(1), window(w(1)))])
        .unwrap();
    assert_eq!(report.tables.len(), 6);
    for (tc, n) in report.tables.iter().zip(ROWS_PER_WINDOW) {
        assert_eq!(tc.rows, 2 * n, "{:?}", tc.table);
        assert_eq!(tc.txn_version, Some(w(1)));
        assert!(tc.delta_version.is_some());
    }
    assert_eq!(
        all_rows(&lake),
        ROWS_PER_WINDOW.iter().map(|n| n * 2).collect::<Vec<_>>()
    );

    // user_minute values survive the round trip.
    let um = lake.read_table(Table::UserMinute, None).unwrap();
    let mut got = BTreeMap::new();
    for b in &um {
        let ws = col::<TimestampMicrosecondArray>(b, "window_start");
        let uk = col::<StringArray>(b, "user_key");
        let cat = col::<StringArray>(b, "category");
        let cei = col::<Float32Array>(b, "cei");
        let bd = col::<Int64Array>(b, "bytes_down");
        let rs = col::<Float32Array>(b, "rtt_server_ms");
        let date = col::<Date32Array>(b, "date");
        for i in 0..b.num_rows() {
            assert_eq!(date.value(i), 19_787); // 2024-03-05
            got.insert(
                (
                    ws.value(i) / 1_000_000,
                    uk.value(i).to_string(),
                    cat.value(i).to_string(),
                ),
                (cei.value(i), bd.value(i), rs.is_null(i)),
            );
        }
    }
    let mut want = BTreeMap::new();
    for r in user_minutes(w(0)).into_iter().chain(user_minutes(w(1))) {
        want.insert(
            (r.window_start_s, r.user_key, r.category),
            (r.cei, r.bytes_down as i64, r.rtt_server_ms.is_none()),
        );
    }
    assert_eq!(got, want);

    // flows: timestamps parsed, partitions derived from first_ts.
    let fl = lake.read_table(Table::Flows, None).unwrap();
    let b = &fl[0];
    let first = col::<TimestampMicrosecondArray>(b, "first_ts");
    let hour = col::<Int32Array>(b, "hour");
    assert_eq!(first.value(0) % 1_000_000, 250_000);
    assert_eq!(hour.value(0), 13);
    assert_eq!(col::<StringArray>(b, "server_ip").value(0), "203.0.113.7");
    assert!(dir.path().join("flows/date=2024-03-05/hour=13").is_dir());

    // Row counts from the log statistics agree.
    for t in Table::WINDOWED {
        assert_eq!(lake.row_count(t).unwrap() as usize, rows(&lake, t), "{t}");
    }
    assert_eq!(
        lake.committed_window(Table::Anomalies, "probe-a").unwrap(),
        Some(w(1))
    );
    assert_eq!(lake.watermark("probe-a").unwrap(), Some(w(1)));
}

#[test]
fn recommit_is_skipped_exactly_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    {
        let lake = Lake::open(&root).unwrap();
        lake.commit_window("src1", w(0), window(w(0))).unwrap();
        lake.commit_windows("src1", vec![(w(1), window(w(1))), (w(2), window(w(2)))])
            .unwrap();
    }
    let lake = Lake::open(&root).unwrap(); // a restart
    let before = all_rows(&lake);
    let versions: Vec<_> = lake.info().unwrap().iter().map(|i| i.version).collect();
    // Replaying everything writes nothing.
    let r = lake
        .commit_windows(
            "src1",
            (0..3).map(|i| (w(i), window(w(i)))).collect::<Vec<_>>(),
        )
        .unwrap();
    assert!(r.all_skipped());
    assert_eq!(r.rows(), 0);
    assert_eq!(r.skipped_rows(), 3 * ROWS_PER_WINDOW.iter().sum::<usize>());
    assert_eq!(all_rows(&lake), before);
    let after: Vec<_> = lake.info().unwrap().iter().map(|i| i.version).collect();
    assert_eq!(versions, after, "a pure replay makes no commit");
    // A replay overlapping new windows writes only the new ones.
    let r = lake
        .commit_windows(
            "src1",
            (1..5).map(|i| (w(i), window(w(i)))).collect::<Vec<_>>(),
        )
        .unwrap();
    assert_eq!(r.rows(), 2 * ROWS_PER_WINDOW.iter().sum::<usize>());
    assert_eq!(
        all_rows(&lake),
        ROWS_PER_WINDOW.iter().map(|n| n * 5).collect::<Vec<_>>()
    );
    // commit_window with a start ≤ the committed version skips the whole batch.
    let r = lake.commit_window("src1", w(3), window(w(3))).unwrap();
    assert!(r.all_skipped());
}

#[test]
fn sources_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    // A root with a space (percent-encoded in the table URIs).
    let root = dir.path().join("my lake");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    assert!(lake.table_uri(Table::Flows).ends_with("my%20lake/flows"));
    lake.commit_window("a", w(5), window(w(5))).unwrap();
    let r = lake.commit_window("b", w(5), window(w(5))).unwrap();
    assert_eq!(r.skipped_rows(), 0);
    assert_eq!(r.rows(), ROWS_PER_WINDOW.iter().sum::<usize>());
    assert_eq!(
        lake.committed_window(Table::Flows, "a").unwrap(),
        Some(w(5))
    );
    assert_eq!(
        lake.committed_window(Table::Flows, "b").unwrap(),
        Some(w(5))
    );
    assert_eq!(lake.committed_window(Table::Flows, "c").unwrap(), None);
    assert_eq!(lake.watermark("c").unwrap(), None);
    assert_eq!(
        all_rows(&lake),
        ROWS_PER_WINDOW.iter().map(|n| n * 2).collect::<Vec<_>>()
    );
    assert!(matches!(
        lake.commit_window("bad id", w(6), TableBatches::new()),
        Err(LakeError::SourceId(_))
    ));
}

#[test]
fn empty_windows_advance_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let mut b = TableBatches::new();
    b.add_user_minutes(&user_minutes(w(0))).unwrap();
    let r = lake.commit_window("s", w(0), b).unwrap();
    assert!(r.tables.iter().all(|t| t.delta_version.is_some()));
    assert_eq!(lake.watermark("s").unwrap(), Some(w(0)));
    assert_eq!(rows(&lake, Table::UserMinute), USERS * 3);
    assert_eq!(rows(&lake, Table::Flows), 0);
    assert_eq!(lake.info_table(Table::Flows).unwrap().files, 0);
}

#[test]
fn a_crash_between_tables_heals_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    Lake::open(&root)
        .unwrap()
        .commit_window("p", w(0), window(w(0)))
        .unwrap();
    for fail_after in 0..Table::WINDOWED.len() {
        let crashing = Lake::open_with(
            &root,
            LakeOptions {
                fail_after_tables: Some(fail_after),
                ..LakeOptions::default()
            },
        )
        .unwrap();
        let wi = w(1 + fail_after as i64);
        assert!(crashing.commit_window("p", wi, window(wi)).is_err());
        drop(crashing);
        // The restarted ingest replays from the start.
        let lake = Lake::open(&root).unwrap();
        for i in 0..=(1 + fail_after as i64) {
            lake.commit_window("p", w(i), window(w(i))).unwrap();
        }
        let n = 2 + fail_after;
        assert_eq!(
            all_rows(&lake),
            ROWS_PER_WINDOW.iter().map(|r| r * n).collect::<Vec<_>>(),
            "after a crash following {fail_after} tables"
        );
        assert_eq!(lake.watermark("p").unwrap(), Some(wi));
    }
}

#[test]
fn append_overwrite_and_schema_checks() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let d = cemflow_lakehouse::DemarcationRow {
        complaint_id: Some("c1".into()),
        user_key: user_key(1),
        window_start_s: w(0),
        window_end_s: w(30),
        verdict: "access".into(),
        element: Some("olt1/pon1".into()),
        confidence: 0.8,
        evidence: serde_json::json!({"n": 7, "k": 4}),
        evaluated_at_s: w(31),
    };
    let b = cemflow_lakehouse::convert::demarcations_batch(&[d.clone(), d]).unwrap();
    assert!(lake
        .append(Table::Demarcations, vec![b.clone()])
        .unwrap()
        .is_some());
    assert_eq!(rows(&lake, Table::Demarcations), 2);
    let ev = lake
        .read_table(Table::Demarcations, Some(&["evidence"]))
        .unwrap();
    let s = col::<StringArray>(&ev[0], "evidence").value(0).to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s).unwrap()["k"],
        4
    );
    // A batch of another table is refused, naming the table.
    let e = lake.append(Table::Complaints, vec![b.clone()]).unwrap_err();
    assert!(e.to_string().contains("complaints"), "{e}");
    let mut tb = TableBatches::new();
    assert!(tb.push(Table::Flows, b.clone()).is_err());
    // Non-windowed tables can't be window-committed.
    tb.push(Table::Demarcations, b).unwrap();
    assert!(lake.commit_window("s", w(0), tb).is_err());
}

#[test]
fn works_from_inside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let lake = Lake::open(&root).unwrap();
        lake.commit_window("s", w(0), window(w(0))).unwrap();
        let dt = lake.table_async(Table::UserMinute).await.unwrap();
        assert!(dt.version().unwrap() >= 1);
        assert_eq!(
            lake.row_count(Table::UserMinute).unwrap() as usize,
            USERS * 3
        );
    });
}

#[test]
fn info_optimize_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    for i in 0..8 {
        lake.commit_window("s", w(i), window(w(i))).unwrap();
    }
    let before = lake.info_table(Table::UserMinute).unwrap();
    assert_eq!(before.files, 8);
    assert_eq!(before.rows as usize, 8 * USERS * 3);
    assert_eq!(before.partitions, 1);
    assert!(before.bytes > 0 && before.smallest_file > 0);
    let n_rows = all_rows(&lake);

    let reports = lake
        .optimize(&OptimizeOptions {
            tables: vec![Table::UserMinute, Table::Flows],
            zorder_user_key: false,
            ..OptimizeOptions::default()
        })
        .unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].files_removed, 8);
    assert_eq!(reports[0].files_added, 1);
    let after = lake.info_table(Table::UserMinute).unwrap();
    assert_eq!(after.files, 1);
    assert_eq!(after.rows, before.rows);
    assert_eq!(all_rows(&lake), n_rows);

    // z-order rewrites the partition, rows intact.
    let z = lake
        .optimize(&OptimizeOptions {
            tables: vec![Table::ElementMinute],
            zorder_user_key: false,
            ..OptimizeOptions::default()
        })
        .unwrap();
    assert_eq!(z[0].files_added, 1);
    let z = lake
        .optimize(&OptimizeOptions {
            tables: vec![Table::Complaints, Table::Anomalies],
            zorder_user_key: true,
            ..OptimizeOptions::default()
        })
        .unwrap();
    assert_eq!(z.len(), 2);
    assert_eq!(all_rows(&lake), n_rows);

    // Vacuum: dry run lists, then deletes the 8 + 5 replaced files of the two tables.
    let dry = lake
        .vacuum(&VacuumOptions {
            tables: vec![Table::UserMinute],
            retention: std::time::Duration::ZERO,
            dry_run: true,
            full: false,
        })
        .unwrap();
    assert_eq!(dry[0].files_deleted, 8);
    assert!(dry[0].dry_run);
    let v = lake
        .vacuum(&VacuumOptions {
            retention: std::time::Duration::ZERO,
            ..VacuumOptions::default()
        })
        .unwrap();
    assert_eq!(v.len(), 9);
    let um = v.iter().find(|r| r.table == "user_minute").unwrap();
    assert_eq!(um.files_deleted, 8);
    assert_eq!(all_rows(&lake), n_rows);
    let parquet_files = walk(dir.path().join("user_minute"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(parquet_files, 1);
}

#[test]
fn vacuum_full_deletes_files_of_a_writer_killed_before_commit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    lake.commit_window("s", w(0), window(w(0))).unwrap();
    // An orphan Parquet file, as left by a writer killed between write and commit.
    let orphan = dir
        .path()
        .join("user_minute/date=2024-03-05/part-00000-orphan.zstd.parquet");
    std::fs::write(&orphan, b"PAR1").unwrap();
    assert_eq!(
        rows(&lake, Table::UserMinute),
        USERS * 3,
        "orphans are invisible"
    );
    let v = lake
        .vacuum(&VacuumOptions {
            tables: vec![Table::UserMinute],
            retention: std::time::Duration::ZERO,
            dry_run: false,
            full: true,
        })
        .unwrap();
    assert_eq!(v[0].files_deleted, 1);
    assert!(!orphan.exists());
    assert_eq!(rows(&lake, Table::UserMinute), USERS * 3);
}

fn walk(p: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn load_topology_and_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let pseudo = Pseudonymizer::new(b"k").unwrap();
    let topo_path = dir.path().join("topology.csv");
    std::fs::write(
        &topo_path,
        "user,home_id,access_element,core_element,region,plan_mbps\n\
         10.0.0.1,,olt1/pon1,bng1,north,300\n\
         10.0.0.2,h2,olt1/pon1,bng1\n\
         garbage\n",
    )
    .unwrap();
    let r = lake.load_topology(&topo_path, &pseudo).unwrap();
    assert_eq!(r.loaded, 2);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 4);
    // A reload replaces the dimension.
    let r = lake.load_topology(&topo_path, &pseudo).unwrap();
    assert_eq!(r.loaded, 2);
    assert_eq!(rows(&lake, Table::Subscribers), 2);
    let subs = lake.read_table(Table::Subscribers, None).unwrap();
    let keys: Vec<String> = subs
        .iter()
        .flat_map(|b| {
            let c = col::<StringArray>(b, "user_key");
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(keys.contains(&pseudo.user_key("10.0.0.1")));
    assert!(keys.contains(&pseudo.user_key("h2")));

    let topo = Topology::from_file(
        &std::path::PathBuf::from(&topo_path).with_file_name("t2.csv"),
        Default::default(),
    );
    assert!(topo.is_err()); // missing file is an error of the dataflow loader
    let topo = Topology::parse("t", "10.0.0.2,h2,olt1/pon1,bng1\n", Default::default()).unwrap();
    let cpath = dir.path().join("complaints.csv");
    std::fs::write(
        &cpath,
        "complaint_id,user,reported_at,service,text\n\
         c1,10.0.0.2,2024-03-05T13:10:00Z,video,buffering\n\
         c2,10.0.0.1,1709644200,,\n\
         c3,10.0.0.1,not-a-time,web,slow\n",
    )
    .unwrap();
    let r = lake.load_complaints(&cpath, &pseudo, &topo).unwrap();
    assert_eq!((r.loaded, r.duplicates, r.errors.len()), (2, 0, 1));
    assert_eq!(r.errors[0].line, 4);
    let r = lake.load_complaints(&cpath, &pseudo, &topo).unwrap();
    assert_eq!((r.loaded, r.duplicates), (0, 2));
    assert_eq!(rows(&lake, Table::Complaints), 2);
    let c = lake.read_table(Table::Complaints, None).unwrap();
    let mut found = false;
    for b in &c {
        let id = col::<StringArray>(b, "complaint_id");
        let uk = col::<StringArray>(b, "user_key");
        for i in 0..b.num_rows() {
            if id.value(i) == "c1" {
                assert_eq!(uk.value(i), pseudo.user_key("h2"));
                found = true;
            }
        }
    }
    assert!(found);
    // No raw subscriber address in any file of the lake.
    for f in walk(dir.path().join("lake")) {
        let bytes = std::fs::read(&f).unwrap();
        for ip in ["10.0.0.1", "10.0.0.2"] {
            assert!(
                !bytes.windows(ip.len()).any(|w| w == ip.as_bytes()),
                "{} contains {ip}",
                f.display()
            );
        }
    }
    let e = lake
        .load_complaints(&dir.path().join("missing.csv"), &pseudo, &topo)
        .unwrap_err();
    assert!(e.to_string().contains("missing.csv"));
}

#[test]
fn a_table_of_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let lake = Lake::open(&root).unwrap();
    let dt = lake.table(Table::Telemetry).unwrap();
    let props = [(SCHEMA_VERSION_KEY.to_string(), "0".to_string())]
        .into_iter()
        .collect();
    lake.block_on(async move {
        dt.set_tbl_properties()
            .with_properties(props)
            .with_raise_if_not_exists(false)
            .await
            .unwrap()
    });
    drop(lake);
    match Lake::open(&root) {
        Err(LakeError::SchemaVersion {
            table,
            found,
            expected,
        }) => {
            assert_eq!(
                (table.as_str(), found.as_str(), expected),
                ("telemetry", "0", cemflow_lakehouse::SCHEMA_VERSION)
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Every field of the dataflow's row structs has its column, and vice versa: catches drift
/// when `dataflow/src/rows.rs` changes.
#[test]
fn schemas_cover_every_row_field() {
    fn keys(v: serde_json::Value) -> std::collections::BTreeSet<String> {
        v.as_object()
            .unwrap()
            .keys()
            .map(|k| {
                if k == "window_start_s" {
                    "window_start".to_string()
                } else {
                    k.clone()
                }
            })
            .collect()
    }
    fn columns(t: Table) -> std::collections::BTreeSet<String> {
        t.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !t.partition_columns().contains(&n.as_str()))
            .collect()
    }
    let cases = [
        (Table::Flows, serde_json::to_value(&flows(w(0))[0]).unwrap()),
        (
            Table::UserMinute,
            serde_json::to_value(&user_minutes(w(0))[0]).unwrap(),
        ),
        (
            Table::ElementMinute,
            serde_json::to_value(&element_minutes(w(0))[0]).unwrap(),
        ),
        (
            Table::Anomalies,
            serde_json::to_value(&anomalies(w(0))[0]).unwrap(),
        ),
    ];
    for (t, v) in cases {
        assert_eq!(keys(v), columns(t), "{t}");
    }
}
