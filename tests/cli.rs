//! The built binary as a script would use it: bad input gets one clear line and a non-zero
//! exit; headless output has the documented JSON-lines shape.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .output()
        .expect("run the sockscope binary")
}

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    err.trim_end().to_owned()
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for (args, needle) in [
        (&["--think", "soon"][..], "'soon' is not a duration"),
        (&["--hold", "5x"][..], "'5x' is not a duration"),
        (&["--body-size", "huge"][..], "'huge' is not a size"),
        (&["--interval", "1ms"][..], "--interval 1ms is too short"),
        (&["--workers", "0"][..], "--workers must be at least 1"),
        (&["--body", "eat"][..], "'eat'"),
        (&["--no-such-flag"][..], "--no-such-flag"),
    ] {
        let mut all = vec!["--headless", "--duration", "1s"];
        all.extend_from_slice(args);
        let out = sockscope(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let line = stderr_line(&out);
        assert!(line.starts_with("sockscope: "), "{line}");
        assert!(line.contains(needle), "{args:?}: {line}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn busy_port_names_the_port_and_the_fix() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port().to_string();
    let out = sockscope(&["--headless", "--duration", "1s", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(
        line.contains(&format!("port {port} is already in use")),
        "{line}"
    );
    assert!(line.contains("--port"), "{line}");
    assert!(out.stdout.is_empty());
}

#[test]
fn help_and_version() {
    let out = sockscope(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("hyper's own default is unlimited"), "{help}");
    assert!(help.contains("loopback"), "{help}");
    let out = sockscope(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sockscope "));
}

const STATES: [&str; 10] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "closing",
];

fn assert_counts(v: &Value, what: &str) {
    for side in ["client", "server"] {
        let obj = v[side]
            .as_object()
            .unwrap_or_else(|| panic!("{what}.{side}: {v}"));
        assert_eq!(obj.len(), STATES.len(), "{what}.{side}: {v}");
        for st in STATES {
            assert!(obj[st].is_u64(), "{what}.{side}.{st}: {v}");
        }
    }
    assert!(v["listen"].is_u64(), "{what}.listen");
}

/// Pins the headless schema the README documents: field names and types.
#[test]
fn headless_output_has_the_documented_shape() {
    let port = common::clean_port().to_string();
    let out = sockscope(&[
        "--headless",
        "--port",
        &port,
        "--workers",
        "2",
        "--requests",
        "5",
        "--interval",
        "20ms",
        "--linger",
        "100ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect();
    // At least the final sample and the summary; how many periodic samples fit depends on
    // the machine (reading /proc/net/tcp takes a second on a host with 25k sockets).
    assert!(lines.len() >= 2, "{text}");
    let (summary, samples) = lines.split_last().expect("lines");
    let mut prev_t = 0;
    for s in samples {
        let t = s["t_ms"].as_u64().expect("t_ms");
        assert!(t >= prev_t, "t_ms goes forward");
        prev_t = t;
        assert_counts(s, "sample");
        for k in [
            "requests_per_s",
            "new_connections_per_s",
            "accepted_per_s",
            "errors_per_s",
            "poll_ms",
        ] {
            assert!(s[k].is_f64(), "{k}: {s}");
        }
        assert!(s["backend"].is_string());
        assert!(s["errors_per_s_by_kind"].is_object());
        assert!(s["reuse_ratio"].is_f64() || s["reuse_ratio"].is_null());
        assert!(s["reused_pct"].is_f64() || s["reused_pct"].is_null());
        for p in ["p50", "p90", "p99"] {
            let v = &s["latency_ms"][p];
            assert!(v.is_f64() || v.is_null(), "latency_ms.{p}: {s}");
        }
        for k in [
            "active_opens",
            "passive_opens",
            "out_rsts",
            "estab_resets",
            "tcp_abort_on_close",
            "tw_recycled",
        ] {
            assert!(s["kernel"][k].is_u64(), "kernel.{k}: {s}");
        }
        for k in [
            "requests",
            "new_connections",
            "accepted",
            "errors",
            "reused_responses",
        ] {
            assert!(s["totals"][k].is_u64(), "totals.{k}: {s}");
        }
        let set = &s["settings"];
        assert_eq!(set["body"], "drain");
        assert_eq!(set["workers"], 2);
        assert_eq!(set["pool"], 2);
        assert!(set["think_ms"].is_f64() && set["body_size"].is_u64());
    }
    let sum = &summary["summary"];
    assert!(sum.is_object(), "last line is the summary: {summary}");
    assert_counts(sum, "summary");
    assert_eq!(sum["requests"], 10);
    assert_eq!(sum["accepted"], sum["new_connections"]);
    assert!(sum["reused_responses"].is_u64());
    assert!(sum["errors"].is_object() && sum["errors_total"] == 0);
    assert_eq!(sum["port"].as_u64(), port.parse().ok());
    // The summary carries the last sample's counts.
    let last = samples.last().expect("a sample");
    assert_eq!(sum["client"], last["client"]);
    assert_eq!(sum["server"], last["server"]);
}

#[test]
fn watch_mode_samples_without_a_workload() {
    let port = common::clean_port().to_string();
    let out = sockscope(&[
        "--headless",
        "--watch",
        "--port",
        &port,
        "--duration",
        "300ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let last: Value = serde_json::from_str(text.lines().last().expect("summary")).expect("json");
    assert_eq!(last["summary"]["requests"], 0);
    assert_eq!(last["summary"]["listen"], 0, "no server runs: {text}");
    assert!(
        text.lines().count() >= 2,
        "a sample, then the summary: {text}"
    );
}
