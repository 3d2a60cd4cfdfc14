//! Every preset, run headless by the built binary on a free port for a couple of seconds,
//! ends with its phenomenon in the summary. Runs one at a time: the exact counts are facts
//! of a machine that is not starved.

mod common;

use std::process::Command;

use serde_json::Value;

/// Runs `--scenario name` headless with `extra` flags and returns the summary and the
/// sample lines; the run must end without a single failed request.
fn run(name: &str, extra: &[&str]) -> (Value, Vec<Value>) {
    let (summary, lines) = run_allowing_errors(name, extra);
    assert_eq!(summary["errors_total"], 0, "{name}: {summary}");
    (summary, lines)
}

/// Like `run`, for a scenario whose point is errors.
fn run_allowing_errors(name: &str, extra: &[&str]) -> (Value, Vec<Value>) {
    let port = common::clean_port().to_string();
    let mut args = vec!["--headless", "--scenario", name, "--port", &port];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(&args)
        .output()
        .expect("run sockscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {stderr}");
    let mut lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let summary = lines.pop().expect("summary line")["summary"].clone();
    assert!(summary.is_object(), "{name}: no summary");
    assert_eq!(
        summary["accepted"], summary["new_connections"],
        "{name}: {summary}"
    );
    (summary, lines)
}

fn n(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64().unwrap_or_else(|| panic!("{path:?} in {v}"))
}

#[tokio::test]
async fn undrained_opens_a_connection_per_request_and_resets_it() {
    let _serial = common::exclusive().await;
    let (s, samples) = run("undrained", &["--requests", "20", "--linger", "300ms"]);
    assert_eq!(n(&s, &["requests"]), 20);
    assert_eq!(n(&s, &["new_connections"]), 20, "{s}");
    // The client closes first, mostly with unread data, which the kernel answers with a
    // reset instead of a FIN: fewer TIME_WAIT than connections, none on the server side.
    assert!(n(&s, &["client", "time_wait"]) < 20, "{s}");
    assert_eq!(n(&s, &["server", "time_wait"]), 0, "{s}");
    let resets: u64 = samples.iter().map(|l| n(l, &["kernel", "out_rsts"])).sum();
    assert!(resets > 0, "the kernel sent resets");
}

#[tokio::test]
async fn drained_reuses_one_connection() {
    let _serial = common::exclusive().await;
    let (s, _) = run("drained", &["--requests", "20"]);
    assert_eq!(n(&s, &["new_connections"]), 1, "{s}");
    assert_eq!(n(&s, &["reused_responses"]), 19, "{s}");
}

#[tokio::test]
async fn pool_2_churns_into_client_time_wait() {
    let _serial = common::exclusive().await;
    let (s, _) = run("pool-2", &["--requests", "20", "--linger", "300ms"]);
    assert!(n(&s, &["new_connections"]) > 10, "{s}");
    assert!(n(&s, &["client", "time_wait"]) > 0, "{s}");
    assert_eq!(n(&s, &["server", "time_wait"]), 0, "{s}");
}

#[tokio::test]
async fn pool_10_holds_exactly_the_workers() {
    let _serial = common::exclusive().await;
    // As in experiments.rs: exactly 10 unless the CPU is starved; one exact run in three.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (s, _) = run("pool-10", &["--requests", "20"]);
        assert_eq!(n(&s, &["settings", "workers"]), 10);
        let conns = n(&s, &["new_connections"]);
        assert!((10..=12).contains(&conns), "{s}");
        if conns == 10 {
            assert_eq!(n(&s, &["client", "time_wait"]), 0, "{s}");
            return;
        }
        runs.push(conns);
    }
    panic!("no run held exactly 10 connections: {runs:?}");
}

#[tokio::test]
async fn tiny_bodies_dropped_are_still_reused() {
    let _serial = common::exclusive().await;
    let (s, _) = run("tiny-bodies", &["--requests", "20"]);
    assert_eq!(n(&s, &["new_connections"]), 1, "{s}");
    assert_eq!(s["settings"]["body"], "drop");
}

#[tokio::test]
async fn leak_piles_close_wait_on_the_client() {
    let _serial = common::exclusive().await;
    // Held for 60 s in the preset; 2.5 s lets the 1 s idle timeout close the first ones.
    let (s, _) = run("leak", &["--duration", "2500ms"]);
    assert!(n(&s, &["client", "close_wait"]) > 0, "{s}");
    let fin = n(&s, &["server", "fin_wait1"]) + n(&s, &["server", "fin_wait2"]);
    assert!(fin > 0, "{s}");
}

#[tokio::test]
async fn server_close_moves_time_wait_to_the_server() {
    let _serial = common::exclusive().await;
    let (s, _) = run("server-close", &["--requests", "10", "--linger", "300ms"]);
    assert_eq!(n(&s, &["new_connections"]), 20, "{s}");
    // The server closes first, so the TIME_WAIT is mostly its own; under CPU pressure the
    // client sometimes reads `Connection: close` and closes before the server's FIN lands.
    assert!(
        n(&s, &["server", "time_wait"]) > n(&s, &["client", "time_wait"]),
        "{s}"
    );
}

#[tokio::test]
async fn no_pool_leaves_time_wait_on_the_client() {
    let _serial = common::exclusive().await;
    let (s, _) = run("no-pool", &["--requests", "20", "--linger", "300ms"]);
    assert_eq!(n(&s, &["new_connections"]), 200, "{s}");
    assert!(n(&s, &["client", "time_wait"]) >= 190, "{s}");
    assert_eq!(n(&s, &["server", "time_wait"]), 0, "{s}");
}

#[tokio::test]
async fn port_exhaustion_runs_out_of_ports_and_recovers() {
    let _serial = common::exclusive().await;
    // The per-socket port range needs Linux 6.3+; say so rather than fail elsewhere.
    if !common::local_port_range_supported() {
        return;
    }
    let (s, _) = run_allowing_errors("port-exhaustion", &["--duration", "2500ms"]);
    assert!(n(&s, &["errors", "addr_not_available"]) > 0, "{s}");
    assert!(n(&s, &["client", "time_wait"]) <= 20, "only 20 ports: {s}");
    if common::tw_reuse_on() {
        assert!(
            n(&s, &["requests"]) > 20,
            "recovered past the first 20 ports: {s}"
        );
    }
}

#[tokio::test]
async fn h2c_uses_one_connection_for_every_worker() {
    let _serial = common::exclusive().await;
    // As in experiments.rs: 1 connection, 2 in a rare hyper-util race; one exact in three.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (s, _) = run("h2c", &["--requests", "20"]);
        assert_eq!(n(&s, &["requests"]), 200);
        let conns = n(&s, &["new_connections"]);
        assert!((1..=2).contains(&conns), "{s}");
        if conns == 1 {
            return;
        }
        runs.push(conns);
    }
    panic!("no h2c run used exactly 1 connection: {runs:?}");
}

#[tokio::test]
async fn tour_shows_its_first_caption() {
    let _serial = common::exclusive().await;
    let (s, samples) = run("tour", &["--duration", "500ms"]);
    assert_eq!(s["settings"]["body"], "drop");
    let captions: Vec<&str> = samples
        .iter()
        .filter_map(|l| l["caption"].as_str())
        .collect();
    assert!(
        captions.iter().any(|c| c.starts_with("1/5 undrained")),
        "{captions:?}"
    );
}

#[tokio::test]
async fn steps_change_settings_on_time_and_show_their_captions() {
    let _serial = common::exclusive().await;
    let path = std::env::temp_dir().join(format!("sockscope-steps-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        r#"
description = "steps"
watch = "captions"
[settings]
workers = 2
pool = 2
[[step]]
at = "300ms"
caption = "bigger pool"
set = { pool = 10 }
[[step]]
at = "600ms"
caption = "drop bodies"
set = { body = "drop" }
"#,
    )
    .expect("write scenario");
    let p = path.to_str().expect("utf-8 path");
    let (s, samples) = run(p, &["--duration", "1500ms", "--interval", "50ms"]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(s["settings"]["pool"], 10);
    assert_eq!(s["settings"]["body"], "drop");
    // Steps are never early, never undone, and each caption comes with its step's change
    // (how many samples fall between the steps depends on the machine's load).
    let mut pool_seen = false;
    for l in &samples {
        if n(l, &["t_ms"]) < 300 {
            assert_eq!(l["settings"]["pool"], 2, "not before its time: {l}");
        }
        pool_seen |= l["settings"]["pool"] == 10;
        if pool_seen {
            assert_eq!(l["settings"]["pool"], 10, "never undone: {l}");
        }
        match l["caption"].as_str() {
            None => assert_eq!(l["settings"]["pool"], 2, "{l}"),
            Some("bigger pool") => assert_eq!(l["settings"]["body"], "drain", "{l}"),
            Some("drop bodies") => assert_eq!(l["settings"]["body"], "drop", "{l}"),
            Some(other) => panic!("unexpected caption {other}"),
        }
    }
    let last = samples.last().expect("samples");
    assert_eq!(last["caption"], "drop bodies");
}
