//! Busy or missing resources end in one clear line, or are counted while the run goes on.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
}

fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a summary line");
    serde_json::from_str::<Value>(last).expect("JSON")["summary"].clone()
}

#[test]
fn an_address_the_host_does_not_have_is_one_line() {
    // 192.0.2.1 (TEST-NET-1) is never a local address, so bind fails with EADDRNOTAVAIL;
    // nothing is sent anywhere.
    let out = bin()
        .args([
            "--headless",
            "--duration",
            "1s",
            "--port",
            "0",
            "--bind",
            "192.0.2.1",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot listen on 192.0.2.1"), "{err}");
    assert!(err.contains("--bind"), "{err}");
}

#[tokio::test]
async fn running_out_of_file_descriptors_is_counted_and_survived() {
    let _serial = common::exclusive().await;
    let port = common::clean_port().to_string();
    // 40 descriptors for the whole process (soft and hard: sockscope cannot raise it),
    // 60 workers each wanting a connection: connects and accepts hit EMFILE.
    let script = format!(
        "ulimit -n 40 && exec '{}' --headless --port {port} --workers 60 --pool 0 \
         --think 1ms --server-delay 0ms --body-size 11B --duration 2s",
        env!("CARGO_BIN_EXE_sockscope")
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run under sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let s = summary(&out);
    assert!(
        s["errors"]["too_many_files"].as_u64().unwrap_or(0) > 0,
        "EMFILE counted by kind: {s}"
    );
    assert!(
        s["requests"].as_u64().unwrap_or(0) > 0,
        "requests still succeed: {s}"
    );
}

#[tokio::test]
async fn hold_mode_stops_holding_at_its_bound_and_says_so() {
    let _serial = common::exclusive().await;
    let port = common::clean_port().to_string();
    let out = bin()
        .args([
            "--headless",
            "--port",
            &port,
            "--body",
            "hold",
            "--hold",
            "2s",
            "--max-held",
            "3",
            "--workers",
            "1",
            "--think",
            "1ms",
            "--requests",
            "10",
        ])
        .output()
        .expect("run");
    let s = summary(&out);
    assert_eq!(s["requests"], 10, "{s}");
    assert_eq!(s["hold_overflow"], 7, "3 held, 7 dropped at once: {s}");
}

#[tokio::test]
async fn no_client_serves_another_client_given_by_target() {
    let _serial = common::exclusive().await;
    let port = common::clean_port();
    let server = bin()
        .args([
            "--headless",
            "--no-client",
            "--port",
            &port.to_string(),
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    // Wait (bounded) until it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = bin()
        .args([
            "--headless",
            "--target",
            &format!("http://127.0.0.1:{port}/"),
            "--workers",
            "2",
            "--requests",
            "5",
            "--pool",
            "10",
        ])
        .output()
        .expect("run the client");
    let c = summary(&client);
    assert_eq!(c["requests"], 10, "{c}");
    assert_eq!(c["port"], port, "watches the target's port");
    assert_eq!(c["listen"], 2, "sees the other process's listeners: {c}");
    assert_eq!(c["accepted"], 0, "no server of its own");
    // Stop the server early with SIGINT: it still prints its summary.
    // SAFETY: kill() with a pid we own and a standard signal.
    unsafe { libc::kill(server.id() as i32, libc::SIGINT) };
    let out = server.wait_with_output().expect("server output");
    let s = summary(&out);
    assert_eq!(s["served"], 10, "{s}");
    // One connection was opened by the probe above.
    assert_eq!(
        s["accepted"].as_u64(),
        c["new_connections"].as_u64().map(|n| n + 1),
        "server: {s}\nclient: {c}"
    );
}

#[tokio::test]
async fn ephemeral_port_exhaustion_is_counted_and_recovers() {
    let _serial = common::exclusive().await;
    // The per-socket port range needs Linux 6.3+; say so rather than fail elsewhere.
    if !common::local_port_range_supported() {
        return;
    }
    let port = common::clean_port().to_string();
    // Ten ports, pool 0: every request closes its connection into client TIME_WAIT, so
    // after ten requests connect fails with EADDRNOTAVAIL until TIME_WAITs can be reused.
    let out = bin()
        .args([
            "--headless",
            "--port",
            &port,
            "--pool",
            "0",
            "--workers",
            "2",
            "--think",
            "0ms",
            "--server-delay",
            "0ms",
            "--body-size",
            "11B",
            "--local-ports",
            "41000-41009",
            "--duration",
            "2500ms",
        ])
        .output()
        .expect("run");
    let s = summary(&out);
    assert!(
        s["errors"]["addr_not_available"].as_u64().unwrap_or(0) > 0,
        "EADDRNOTAVAIL counted by kind: {s}"
    );
    assert!(s["requests"].as_u64().unwrap_or(0) >= 10, "{s}");
    // With tcp_tw_reuse on (1, or 2 = loopback only, the default), a TIME_WAIT over a
    // second old is reused: the run gets past its first ten ports.
    if common::tw_reuse_on() {
        assert!(s["requests"].as_u64().unwrap_or(0) > 10, "recovered: {s}");
    }
}

/// Runs `script` under `sh -c`; `None` when the tool it needs is missing or not allowed
/// here (the test then says why and passes, rather than testing nothing silently).
fn sh(script: &str) -> Option<Output> {
    let out = Command::new("sh")
        .args(["-c", script])
        .env("SOCKSCOPE", env!("CARGO_BIN_EXE_sockscope"))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    // 125-127: the wrapper (setpriv, unshare) could not run or was refused.
    if matches!(out.status.code(), Some(125..=127)) {
        eprintln!(
            "skipped: {script}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(out)
}

#[test]
fn a_privileged_port_without_privilege_is_one_line() {
    // As root every port binds; drop to nobody for the one thing being tested.
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let script = if is_root {
        "command -v setpriv >/dev/null || exit 127; \
         exec setpriv --reuid=nobody --regid=nogroup --clear-groups \"$SOCKSCOPE\" --headless --duration 1s --port 81"
    } else {
        "exec \"$SOCKSCOPE\" --headless --duration 1s --port 81"
    };
    let Some(out) = sh(script) else { return };
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("--port"), "{err}");
}

#[test]
fn without_ipv6_the_server_listens_on_ipv4_only() {
    // A private network namespace with IPv6 turned off on its loopback: nothing outside
    // the namespace is touched.
    let script = "command -v unshare >/dev/null || exit 127; \
        exec unshare -n sh -c 'ip link set lo up || exit 126; \
        sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 || exit 126; \
        \"$SOCKSCOPE\" --headless --port 0 --workers 1 --requests 3; \
        \"$SOCKSCOPE\" --headless --port 0 --bind ::1 --duration 1s'";
    let Some(out) = sh(script) else { return };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let s: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(s["summary"]["listen"], 1, "127.0.0.1 only: {s}");
    assert_eq!(s["summary"]["requests"], 3, "{s}");
    // Asked for explicitly, ::1 is an error line.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot listen on [::1]"), "{err}");
    assert_eq!(out.status.code(), Some(1));
}
