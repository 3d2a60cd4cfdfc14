//! Helpers shared by the in-process tests: a clean free port, a bounded run, and waiting on
//! samples with a deadline instead of sleeping.

#![allow(dead_code)]

use std::time::Duration;

use sockscope::config::Config;
use sockscope::engine::{Engine, Summary};
use sockscope::sampler::Sample;
use sockscope::sockets::{Backend, open};

/// How long any single run may take before the test fails instead of hanging.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A port the OS calls free and that no socket in the table involves, not even a
/// TIME_WAIT left by an earlier test: counts on it start from zero.
pub fn clean_port() -> u16 {
    let mut rows = Vec::new();
    let (mut source, _) = open(Backend::Auto).expect("a socket-table backend");
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().expect("local addr").port();
        drop(l);
        source
            .snapshot(port, &mut rows)
            .expect("read the socket table");
        if rows.is_empty() {
            return port;
        }
    }
    panic!("no clean ephemeral port found in 100 tries");
}

/// Exact connection counts (pool 10 holds exactly 10) are facts of an unloaded machine:
/// when CPU starves hyper's task that returns a connection to the pool, a worker finds
/// no idle connection and hyper opens another. Tests that assert exact counts take this
/// lock so that they do not starve each other on a 2-core runner.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The default config on a clean port, sampling every 50 ms.
pub fn config() -> Config {
    Config {
        port: clean_port(),
        interval: Duration::from_millis(50),
        ..Config::default()
    }
}

/// Starts the engine; a busy port (another test won the race for it) is retried.
pub async fn start(mut config: Config) -> Engine {
    for _ in 0..5 {
        match Engine::start(&config).await {
            Ok(engine) => return engine,
            Err(sockscope::Error::PortInUse { .. }) => config.port = clean_port(),
            Err(e) => panic!("engine did not start: {e}"),
        }
    }
    panic!("no free port after 5 tries");
}

/// Waits for a `--requests` workload to end, then checks the invariant every run must
/// hold: the server accepted exactly the connections the client opened.
pub async fn finish(engine: &mut Engine) -> Summary {
    tokio::time::timeout(RUN_LIMIT, engine.workload_finished())
        .await
        .expect("workload did not finish in time");
    let (_, summary) = engine.finish().await;
    assert_eq!(
        summary.accepted, summary.new_connections,
        "server accepts must equal client connects: {summary:#?}"
    );
    summary
}

/// Reads samples until `pred` holds or `limit` passes; returns the matching sample or
/// panics with the last one seen.
pub async fn wait_for(
    engine: &mut Engine,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&Sample) -> bool,
) -> Sample {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, engine.next_sample()).await {
            Ok(Some(s)) if pred(&s) => return s,
            Ok(Some(s)) => last = Some(s),
            Ok(None) => panic!("sampler stopped while waiting for {what}"),
            Err(_) => {
                panic!("timed out after {limit:?} waiting for {what}; last sample: {last:#?}")
            }
        }
    }
}

/// True where a socket can be given its own ephemeral port range (Linux 6.3+,
/// `IP_LOCAL_PORT_RANGE`); otherwise says why the caller skips.
pub fn local_port_range_supported() -> bool {
    let probe = tokio::net::TcpSocket::new_v4().expect("socket");
    match sockscope::os::set_local_port_range(&probe, (41000, 41019)) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: this kernel has no IP_LOCAL_PORT_RANGE ({e})");
            false
        }
    }
}

/// True when connect may reuse a TIME_WAIT over a second old (`tcp_tw_reuse` 1, or 2 =
/// loopback only, the default): what lets a run out of ports recover within seconds.
pub fn tw_reuse_on() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").is_ok_and(|v| v.trim() != "0")
}
