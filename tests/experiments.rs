//! The article's experiments, as measured facts of hyper (DESIGN.md), run in-process on
//! loopback, each on its own clean port, bounded in requests and time.

mod common;

use std::time::Duration;

use common::{config, finish, start, wait_for};
use sockscope::config::{BodyMode, Config};

fn sequential(body: BodyMode, body_size: u64) -> Config {
    let mut c = config();
    c.requests = Some(10);
    c.settings.workers = 1;
    c.settings.think = Duration::from_millis(1);
    c.settings.body = body;
    c.settings.body_size = body_size;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undrained_64k_body_costs_a_connection_per_request() {
    let _serial = common::exclusive().await;
    let mut engine = start(sequential(BodyMode::Drop, 64 * 1024)).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.requests, 10);
    assert_eq!(s.accepted, 10, "{s:#?}");
    assert_eq!(s.reused_responses, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undrained_8k_body_is_still_reused() {
    let _serial = common::exclusive().await;
    // hyper reads a small unread body to its end for you, so the connection survives.
    let mut engine = start(sequential(BodyMode::Drop, 8 * 1024)).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.requests, 10);
    assert_eq!(s.accepted, 1, "{s:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_body_reuses_one_connection() {
    let _serial = common::exclusive().await;
    let mut engine = start(sequential(BodyMode::Drain, 64 * 1024)).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.accepted, 1, "{s:#?}");
    assert_eq!(s.requests, 10);
    assert_eq!(s.served, 10);
    assert_eq!(
        s.reused_responses, 9,
        "ten responses on that one connection"
    );
}

/// 1 worker x 10 drained requests with `change` applied: 10 connections, and the side
/// that closed first ends with all 10 TIME_WAIT, the other side with none.
async fn ten_time_waits_on_one_side(change: impl FnOnce(&mut Config), client_closes: bool) {
    let mut c = sequential(BodyMode::Drain, 64 * 1024);
    change(&mut c);
    let mut engine = start(c).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.accepted, 10, "{s:#?}");
    let (closer, other) = if client_closes {
        ("client", "server")
    } else {
        ("server", "client")
    };
    let side = |s: &sockscope::sampler::Sample, client: bool| {
        if client {
            s.client.time_wait
        } else {
            s.server.time_wait
        }
    };
    // The last close needs a round trip to land in TIME_WAIT: poll, do not sleep.
    let last = wait_for(
        &mut engine,
        Duration::from_secs(3),
        &format!("10 {closer} TIME_WAIT"),
        |s| side(s, client_closes) == 10,
    )
    .await;
    assert_eq!(
        side(&last, !client_closes),
        0,
        "no {other} TIME_WAIT: {last:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_zero_leaves_time_wait_on_the_client_side() {
    let _serial = common::exclusive().await;
    ten_time_waits_on_one_side(|c| c.settings.pool = 0, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_keepalive_takes_the_time_wait() {
    let _serial = common::exclusive().await;
    ten_time_waits_on_one_side(|c| c.settings.keepalive = false, false).await;
}

fn concurrent(pool: usize) -> Config {
    let mut c = config();
    c.requests = Some(10);
    c.settings.workers = 10;
    c.settings.pool = pool;
    c.settings.server_delay = Duration::from_millis(2);
    c.settings.think = Duration::from_millis(2);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_ten_holds_exactly_ten_connections() {
    let _serial = common::exclusive().await;
    // Exactly 10 on a machine that is not starved. When the CPU is (a noisy 2-core runner),
    // hyper's task that returns a connection to the pool can run late, a worker finds no
    // idle connection and hyper races a new connect (DESIGN facts): tolerate up to 12 and
    // retry, but require one run of exactly 10 in three.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut engine = start(concurrent(10)).await;
        let s = finish(&mut engine).await;
        assert_eq!(s.requests, 100);
        assert!((10..=12).contains(&s.accepted), "{s:#?}");
        if s.accepted == 10 {
            assert_eq!(s.client.time_wait + s.server.time_wait, 0, "{s:#?}");
            return;
        }
        runs.push(s.accepted);
    }
    panic!("no run held exactly 10 connections: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_two_churns_connections_into_time_wait() {
    let _serial = common::exclusive().await;
    let mut engine = start(concurrent(2)).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.requests, 100);
    assert!(
        (30..=100).contains(&s.accepted),
        "accepted {}: {s:#?}",
        s.accepted
    );
    wait_for(
        &mut engine,
        Duration::from_secs(3),
        "client TIME_WAIT >= 20",
        |s| s.client.time_wait >= 20,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_bodies_leave_close_wait_when_the_server_times_out() {
    let _serial = common::exclusive().await;
    let mut c = config();
    c.requests = Some(3);
    c.settings.workers = 1;
    c.settings.think = Duration::from_millis(1);
    c.settings.body = BodyMode::Hold;
    c.settings.hold = Duration::from_secs(5);
    c.settings.body_size = 64 * 1024;
    c.settings.idle_timeout = Duration::from_secs(1);
    let mut engine = start(c).await;
    let seen = wait_for(
        &mut engine,
        Duration::from_secs(3),
        "3 client CLOSE_WAIT and 3 server FIN_WAIT",
        |s| s.client.close_wait == 3 && s.server.fin_wait1 + s.server.fin_wait2 == 3,
    )
    .await;
    assert_eq!(seen.totals.new_connections, 3, "{seen:#?}");
    // The summary waits for the held responses to be let go.
    let s = finish(&mut engine).await;
    assert_eq!(s.requests, 3);
    assert_eq!(s.accepted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_multiplexes_every_worker_on_one_connection() {
    let _serial = common::exclusive().await;
    // One connection, unless a worker checks the pool in the instant between the first
    // h2 handshake ending and the connection being shared (a rare hyper-util race, seen
    // once in a full-suite run): tolerate 2 and retry, but require one run of exactly 1.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut c = concurrent(2);
        c.settings.h2c = true;
        let mut engine = start(c).await;
        let s = finish(&mut engine).await;
        assert_eq!(s.requests, 100);
        assert!((1..=2).contains(&s.accepted), "{s:#?}");
        if s.accepted == 1 {
            return;
        }
        runs.push(s.accepted);
    }
    panic!("no h2c run used exactly 1 connection: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pool_resize_and_body_change_show_in_the_next_samples() {
    let _serial = common::exclusive().await;
    let mut c = concurrent(2);
    c.requests = None;
    let mut engine = start(c).await;
    let churn = |s: &sockscope::sampler::Sample| s.new_connections_per_s > 0.0;
    wait_for(&mut engine, Duration::from_secs(5), "pool-2 churn", churn).await;

    let changed_at = engine.elapsed_ms();
    engine.controller().set_pool(10).expect("pool 10 is valid");
    // Settings are read when a sample is taken: every sample from after the change has it.
    let first = wait_for(
        &mut engine,
        Duration::from_secs(10),
        "a sample after the change",
        |s| s.t_ms > changed_at + 1,
    )
    .await;
    assert_eq!(first.settings.pool, 10, "{first:#?}");
    // Settled: several samples in a row with no new connection while requests flow.
    let mut quiet = 0;
    wait_for(
        &mut engine,
        Duration::from_secs(10),
        "no new connections",
        |s| {
            quiet = if s.new_connections_per_s == 0.0 && s.requests_per_s > 0.0 {
                quiet + 1
            } else {
                0
            };
            quiet >= 3
        },
    )
    .await;

    // 1 MiB, not 64 KiB: a warm connection's read buffer (grown while draining 64 KiB
    // bodies) takes a whole 64 KiB response in one read, so dropping it unread does not
    // cost that connection. 1 MiB is beyond hyper's largest read buffer (~408 KiB).
    engine
        .controller()
        .update(|s| {
            s.body = BodyMode::Drop;
            s.body_size = 1 << 20;
        })
        .expect("drop with 1MiB is valid");
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "drop: a connection per request",
        |s| {
            s.settings.body == BodyMode::Drop
                && s.requests_per_s > 0.0
                && s.new_connections_per_s >= 0.5 * s.requests_per_s
        },
    )
    .await;

    engine.controller().set_paused(true).expect("pause");
    let mut idle = 0;
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "paused: no requests",
        |s| {
            idle = if s.settings.paused && s.requests_per_s == 0.0 {
                idle + 1
            } else {
                0
            };
            idle >= 2
        },
    )
    .await;
    let c = engine.counters();
    assert_eq!(c.errors.iter().sum::<u64>(), 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_rejects_impossible_settings() {
    let _serial = common::exclusive().await;
    let mut c = config();
    c.client = false;
    let engine = start(c).await;
    let before = engine.controller().settings();
    let err = engine.controller().set_workers(0).unwrap_err();
    assert!(err.to_string().contains("--workers"), "{err}");
    assert_eq!(engine.controller().settings(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_and_the_run_goes_on() {
    let _serial = common::exclusive().await;
    // A client with no server: every connect is refused, and that is data, not a crash.
    let mut c = config();
    c.server = false;
    c.settings.workers = 2;
    let mut engine = start(c).await;
    let s = wait_for(
        &mut engine,
        Duration::from_secs(5),
        "refused connects",
        |s| {
            s.errors_per_s_by_kind
                .get("connect_refused")
                .copied()
                .unwrap_or(0.0)
                > 0.0
        },
    )
    .await;
    assert_eq!(s.listen, 0);
    assert_eq!(s.totals.requests, 0);
    assert_eq!(s.errors_per_s_by_kind.len(), 1, "{s:#?}");
    let more = wait_for(&mut engine, Duration::from_secs(5), "more errors", |n| {
        n.totals.errors > s.totals.errors
    })
    .await;
    assert_eq!(more.totals.new_connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_cap_spaces_requests_out() {
    let _serial = common::exclusive().await;
    // 40 requests at 100/s cannot be done in less than ~0.39 s, however fast the machine.
    let mut c = config();
    c.requests = Some(10);
    c.settings.workers = 4;
    c.settings.think = Duration::ZERO;
    c.settings.rate = Some(100.0);
    let started = std::time::Instant::now();
    let mut engine = start(c).await;
    let s = finish(&mut engine).await;
    assert_eq!(s.requests, 40);
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "40 requests at 100/s took only {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_run_summary_agrees_with_the_server_and_the_output() {
    let _serial = common::exclusive().await;
    let mut c = config();
    c.duration = Some(Duration::from_millis(600));
    c.settings.think = Duration::ZERO;
    let engine = start(c.clone()).await;
    let v6 = engine.server_addrs().iter().any(|a| a.is_ipv6());
    let mut out = Vec::new();
    let summary = sockscope::headless::run(engine, &c, &mut out, std::future::pending())
        .await
        .expect("headless run");
    assert!(summary.requests > 0);
    // Stopped mid-flight, the totals still agree: requests in flight finish first.
    assert_eq!(summary.accepted, summary.new_connections, "{summary:#?}");
    assert_eq!(summary.served, summary.requests, "{summary:#?}");
    assert!(
        !summary.settings.paused,
        "summary shows the settings the run had"
    );
    assert_eq!(summary.listen, if v6 { 2 } else { 1 }, "127.0.0.1 and ::1");
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    // At least the final sample, then the summary (how many periodic samples fit in
    // 600 ms depends on the machine's load, so it is not asserted).
    assert!(lines.len() >= 2, "{text}");
    let final_sample: serde_json::Value =
        serde_json::from_str(lines[lines.len() - 2]).expect("json");
    assert!(final_sample["t_ms"].is_u64(), "{text}");
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).expect("json");
    assert_eq!(last["summary"]["requests"], summary.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_can_be_added_and_removed_live() {
    let _serial = common::exclusive().await;
    let mut c = concurrent(10);
    c.requests = None;
    c.settings.workers = 2;
    let mut engine = start(c).await;
    // Counts are ">=": on a starved CPU hyper may race one extra connect (DESIGN facts).
    wait_for(
        &mut engine,
        Duration::from_secs(10),
        "2 workers busy",
        |s| s.client.established >= 2 && s.requests_per_s > 0.0,
    )
    .await;
    engine.controller().set_workers(6).expect("6 workers");
    wait_for(&mut engine, Duration::from_secs(10), "6 connections", |s| {
        s.settings.workers == 6 && s.client.established >= 6
    })
    .await;
    // Fewer workers need no new connection: the pool (10) keeps the idle ones.
    engine.controller().set_workers(1).expect("1 worker");
    let one = wait_for(&mut engine, Duration::from_secs(10), "1 worker", |s| {
        s.settings.workers == 1 && s.requests_per_s > 0.0
    })
    .await;
    let later = wait_for(&mut engine, Duration::from_secs(10), "more requests", |s| {
        s.totals.requests > one.totals.requests + 20
    })
    .await;
    assert_eq!(
        later.totals.new_connections, one.totals.new_connections,
        "one worker reuses pooled connections: {later:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_think_time_acts_without_waiting_out_the_old_one() {
    let _serial = common::exclusive().await;
    let mut c = config();
    c.settings.workers = 1;
    c.settings.think = Duration::from_secs(30);
    let mut engine = start(c).await;
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "the first request",
        |s| s.totals.requests == 1,
    )
    .await;
    engine
        .controller()
        .set_think(Duration::ZERO)
        .expect("0 think");
    // With the old 30 s pause still running, a second request would be 30 s away.
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "requests after the change",
        |s| s.totals.requests > 5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_bodies_leak_after_warm_up_once_the_pool_is_fresh() {
    let _serial = common::exclusive().await;
    // The tour's last step: after draining (warm connections), hold bodies with a new
    // pool. Fresh connections cannot buffer a whole 64KiB body, so each held response
    // pins its connection until the server's idle timeout closes it: CLOSE_WAIT piles up.
    let mut c = config();
    c.settings.workers = 1;
    c.settings.pool = 10;
    c.settings.think = Duration::from_millis(1);
    c.settings.idle_timeout = Duration::from_secs(1);
    c.settings.hold = Duration::from_secs(30);
    let mut engine = start(c).await;
    wait_for(&mut engine, Duration::from_secs(5), "warm-up", |s| {
        s.totals.requests >= 50
    })
    .await;
    engine
        .controller()
        .update(|s| {
            s.body = BodyMode::Hold;
            s.pool = 2;
            s.think = Duration::from_millis(100);
        })
        .expect("hold");
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "client CLOSE_WAIT piling up",
        |s| s.client.close_wait >= 3 && s.held >= 3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faster_rate_acts_without_serving_out_the_slow_schedule() {
    let _serial = common::exclusive().await;
    let mut c = config();
    c.settings.workers = 2;
    c.settings.think = Duration::ZERO;
    c.settings.rate = Some(0.2); // one request every 5 s
    let mut engine = start(c).await;
    wait_for(
        &mut engine,
        Duration::from_secs(5),
        "the first request",
        |s| s.totals.requests >= 1,
    )
    .await;
    engine
        .controller()
        .update(|s| s.rate = Some(200.0))
        .expect("rate 200");
    // Slots booked at 0.2/s lie 5 and 10 s ahead; at 200/s, 20 requests take 0.1 s.
    wait_for(
        &mut engine,
        Duration::from_secs(4),
        "requests at the new rate",
        |s| s.totals.requests >= 20,
    )
    .await;
}
