//! Synthetic rows of every windowed table for the lake tests.
#![allow(dead_code)]

use cemflow_dataflow::{AnomalyRow, ElementMinute, FlowRow, RowSource, UserMinute};
use cemflow_lakehouse::{FlowTelemetryRow, TableBatches, TelemetryRow};

/// Users per window.
pub const USERS: usize = 5;

pub fn user_key(u: usize) -> String {
    format!("{:016x}", 0xabc0_0000_0000_0000u64 + u as u64)
}

pub fn user_minutes(w: i64) -> Vec<UserMinute> {
    let mut v = Vec::new();
    for u in 0..USERS {
        for cat in ["web", "video", "all"] {
            let cei = ((w / 60) as f32 * 7.0 + u as f32 * 13.0) % 100.0;
            v.push(UserMinute {
                window_start_s: w,
                user_key: user_key(u),
                category: cat.into(),
                access_element: format!("olt1/pon{}", u % 2),
                core_element: "bng1".into(),
                flows: 3,
                active_s: 12.5,
                bytes_down: 1_000_000 + u as u64 * 1000 + (w as u64 % 1000),
                bytes_up: 20_000,
                throughput_down_mbps: (cat == "video").then_some(8.5),
                rtt_client_ms: Some(12.0),
                rtt_server_ms: if u == 0 { None } else { Some(30.0) },
                retrans_rate: Some(0.01),
                loss_pct: None,
                jitter_ms: None,
                txn_ms: (cat == "web").then_some(420.0),
                ttfb_ms: None,
                mos: 1.0 + cei * 0.035,
                cei,
                poor: cei < 60.0,
                worst_server: (cei < 60.0).then(|| "203.0.113.0/24|youtube".into()),
                source: RowSource::Probe,
            });
        }
    }
    v
}

pub fn element_minutes(w: i64) -> Vec<ElementMinute> {
    ["olt1/pon0", "olt1/pon1"]
        .iter()
        .map(|e| ElementMinute {
            window_start_s: w,
            level: "access".into(),
            element_id: e.to_string(),
            users: 3,
            poor_users: 1,
            poor_share: 1.0 / 3.0,
            cei_mean: 70.0,
            cei_p10: 40.0,
            bytes_down: 3_000_000,
            rtt_client_ms_median: Some(11.0),
            rtt_server_ms_median: None,
            retrans_rate: Some(0.02),
        })
        .collect()
}

pub fn anomalies(w: i64) -> Vec<AnomalyRow> {
    vec![AnomalyRow {
        window_start_s: w,
        entity_kind: "user".into(),
        entity_id: user_key(1),
        metric: "cei".into(),
        value: 20.0,
        baseline_median: 80.0,
        baseline_mad: 5.0,
        score: 0.6745 * 60.0 / 5.0,
        anomalous: true,
        baseline: "trailing_60m".into(),
    }]
}

fn rfc3339(s: i64, micros: u32) -> String {
    let t = chrono::DateTime::from_timestamp(s, micros * 1000).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn flows(w: i64) -> Vec<FlowRow> {
    (0..USERS)
        .map(|u| {
            let j = serde_json::json!({
                "flow_id": format!("{:016x}", (w as u64) << 8 | u as u64),
                "user_key": user_key(u),
                "access_element": "olt1/pon0",
                "core_element": "bng1",
                "l4": 6, "client_port": 40000 + u, "server_ip": "203.0.113.7", "server_port": 443,
                "vlan": 100,
                "c2s_pkts": 10, "c2s_bytes": 1500, "s2c_pkts": 20, "s2c_bytes": 30000 + u,
                "c2s_ip_bytes": 1300, "s2c_ip_bytes": 29000, "c2s_payload": 500, "s2c_payload": 25000,
                "l7_proto": "TLS", "l7_by_port": false, "app": "youtube", "category": "video",
                "sni": "www.youtube.com", "tls_version": "1.3",
                "first_ts": rfc3339(w + 1, 250_000), "last_ts": rfc3339(w + 50, 0),
                "duration_s": 48.75, "end_reason": "fin",
                "c2s_tcp_flags": 0x1b, "s2c_tcp_flags": 0x1b,
                "hs_rtt_client_ms": 10.5, "rtt_client_ms": 11.0,
                "rtt_client_samples": 4, "rtt_server_samples": 0,
                "c2s_retrans": 0, "s2c_retrans": 1, "c2s_ooo": 0, "s2c_ooo": 0,
                "c2s_loss_upstream": 0, "s2c_loss_upstream": 0,
                "c2s_loss_downstream": 0, "s2c_loss_downstream": 1,
                "c2s_zero_windows": 0, "s2c_zero_windows": 0,
                "s2c_throughput_mbps": 12.25,
            });
            serde_json::from_value(j).expect("FlowRow JSON matches dataflow::rows")
        })
        .collect()
}

pub fn telemetry(w: i64) -> Vec<TelemetryRow> {
    vec![TelemetryRow {
        ts_ms: w * 1000,
        element_id: "olt1/pon0".into(),
        metric: "pon_util_pct".into(),
        value: 55.5,
    }]
}

pub fn flow_telemetry(w: i64) -> Vec<FlowTelemetryRow> {
    vec![FlowTelemetryRow {
        exporter: "192.0.2.1".into(),
        domain: 7,
        version: 10,
        export_ts_s: w + 59,
        flow_start_ms: Some(w * 1000 + 5),
        flow_end_ms: Some(w * 1000 + 9000),
        src_user_key: Some(user_key(2)),
        dst_addr: Some("198.51.100.9".into()),
        src_port: Some(51000),
        dst_port: Some(443),
        l4: Some(6),
        bytes: Some(123_456),
        packets: Some(99),
        ..Default::default()
    }]
}

/// Rows per window per table, in `Table::WINDOWED` order.
pub const ROWS_PER_WINDOW: [usize; 6] = [USERS, USERS * 3, 2, 1, 1, 1];

/// All windowed tables' rows of window `w`.
pub fn window(w: i64) -> TableBatches {
    let mut b = TableBatches::new();
    b.add_flows(&flows(w)).unwrap();
    b.add_user_minutes(&user_minutes(w)).unwrap();
    b.add_element_minutes(&element_minutes(w)).unwrap();
    b.add_anomalies(&anomalies(w)).unwrap();
    b.add_telemetry(&telemetry(w)).unwrap();
    b.add_flow_telemetry(&flow_telemetry(w)).unwrap();
    b
}

/// A window start on 2024-03-05 13:00 UTC + `i` minutes.
pub fn w(i: i64) -> i64 {
    1_709_643_600 + 60 * i
}
