//! The sampler: every interval one read of the socket table, the workload's counters and the
//! kernel's, turned into a [`Sample`]. It runs on its own OS thread so that reading /proc
//! never stalls a runtime thread that serves requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::config::Settings;
use crate::kernel::KernelCounters;
use crate::sockets::{SocketRow, SocketSource, StateCounts, classify};
use crate::workload::stats::{Counters, Percentiles, Stats};

/// One observation. Its JSON form is the headless output's line format (README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// The socket-table backend that produced the counts.
    pub backend: &'static str,
    /// How long reading the socket table took.
    pub poll_ms: f64,
    /// Set when `--backend auto` fell back to a lesser backend, saying why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_notice: Option<String>,
    /// Set when the socket table could not be read; the counts are then all 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_error: Option<String>,
    /// Sockets whose remote port is the port.
    pub client: StateCounts,
    /// Sockets whose local port is the port (LISTEN apart).
    pub server: StateCounts,
    pub listen: u32,
    pub requests_per_s: f64,
    pub new_connections_per_s: f64,
    pub accepted_per_s: f64,
    pub errors_per_s: f64,
    /// Non-zero error rates by kind.
    pub errors_per_s_by_kind: BTreeMap<&'static str, f64>,
    /// Requests per new connection over the interval; `null` when no connection was opened.
    pub reuse_ratio: Option<f64>,
    /// Percentage of this interval's responses that came on a reused connection.
    pub reused_pct: Option<f64>,
    pub latency_ms: Percentiles,
    /// Responses held unread right now (hold mode).
    pub held: u64,
    /// Deltas of the system-wide kernel counters over the interval.
    pub kernel: KernelCounters,
    /// Running totals since the start.
    pub totals: Totals,
    /// The workload settings in force when the sample was taken.
    pub settings: Settings,
    /// The caption of the scenario step last applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// Counts since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub new_connections: u64,
    pub accepted: u64,
    pub errors: u64,
    pub reused_responses: u64,
    /// Responses dropped at once because `--max-held` were already held.
    pub hold_overflow: u64,
}

impl Totals {
    /// `self - earlier`, saturating: totals since a baseline (the TUI's reset).
    pub fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            requests: self.requests.saturating_sub(earlier.requests),
            new_connections: self.new_connections.saturating_sub(earlier.new_connections),
            accepted: self.accepted.saturating_sub(earlier.accepted),
            errors: self.errors.saturating_sub(earlier.errors),
            reused_responses: self
                .reused_responses
                .saturating_sub(earlier.reused_responses),
            hold_overflow: self.hold_overflow.saturating_sub(earlier.hold_overflow),
        }
    }

    fn of(c: &Counters) -> Totals {
        Totals {
            requests: c.requests,
            new_connections: c.new_connections,
            accepted: c.accepted,
            errors: c.errors_total(),
            reused_responses: c.reused_responses,
            hold_overflow: c.hold_overflow,
        }
    }
}

/// Makes samples. Pure apart from its inputs, so tests drive it with a fake socket source
/// and chosen instants.
pub struct Sampler {
    source: Box<dyn SocketSource>,
    port: u16,
    stats: Arc<Stats>,
    settings: watch::Receiver<Settings>,
    /// Where scenario step captions arrive; `None` without a scenario.
    caption: Option<watch::Receiver<Option<String>>>,
    start: Instant,
    prev_at: Instant,
    prev: Counters,
    prev_kernel: Option<KernelCounters>,
    rows: Vec<SocketRow>,
    notice: Option<String>,
}

impl Sampler {
    pub fn new(
        source: Box<dyn SocketSource>,
        port: u16,
        stats: Arc<Stats>,
        settings: watch::Receiver<Settings>,
        start: Instant,
    ) -> Sampler {
        Sampler {
            source,
            port,
            prev: stats.counters(),
            stats,
            settings,
            caption: None,
            start,
            prev_at: start,
            prev_kernel: KernelCounters::read(),
            rows: Vec::new(),
            notice: None,
        }
    }

    /// Scenario step captions to carry in every sample from now on.
    pub fn set_captions(&mut self, captions: watch::Receiver<Option<String>>) {
        self.caption = Some(captions);
    }

    /// A backend fallback notice, repeated on every sample.
    pub fn set_notice(&mut self, notice: Option<String>) {
        self.notice = notice;
    }

    pub fn backend(&self) -> &'static str {
        self.source.name()
    }

    /// Takes one sample as of `now`, with rates over the time since the previous one.
    pub fn sample(&mut self, now: Instant) -> Sample {
        // Counters, settings and caption are read together, at `now`; the socket table
        // after them (it can take long on a big table: `poll_ms` says how long).
        let counters = self.stats.counters();
        let settings = self.settings.borrow().clone();
        let caption = self.caption.as_ref().and_then(|c| c.borrow().clone());
        let kernel_now = KernelCounters::read();
        let latency = self.stats.take_interval_latency();

        let poll_start = Instant::now();
        let table = self.source.snapshot(self.port, &mut self.rows);
        let poll_ms = poll_start.elapsed().as_secs_f64() * 1000.0;
        let (counts, socket_error) = match table {
            Ok(()) => (classify(&self.rows, self.port), None),
            Err(e) => (Default::default(), Some(e.to_string())),
        };

        let delta = counters.since(&self.prev);
        let secs = now.saturating_duration_since(self.prev_at).as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let kernel = match (kernel_now, self.prev_kernel) {
            (Some(k), Some(p)) => k.since(&p),
            _ => KernelCounters::default(),
        };
        let responses = delta.requests;
        let sample = Sample {
            t_ms: now.saturating_duration_since(self.start).as_millis() as u64,
            backend: self.source.name(),
            poll_ms,
            backend_notice: self.notice.clone(),
            socket_error,
            client: counts.client,
            server: counts.server,
            listen: counts.listen,
            requests_per_s: rate(delta.requests),
            new_connections_per_s: rate(delta.new_connections),
            accepted_per_s: rate(delta.accepted),
            errors_per_s: rate(delta.errors_total()),
            errors_per_s_by_kind: delta
                .errors_by_kind()
                .into_iter()
                .map(|(k, n)| (k, rate(n)))
                .collect(),
            reuse_ratio: (delta.new_connections > 0)
                .then(|| delta.requests as f64 / delta.new_connections as f64),
            reused_pct: (responses > 0)
                .then(|| 100.0 * delta.reused_responses.min(responses) as f64 / responses as f64),
            latency_ms: latency,
            held: self.stats.held.load(std::sync::atomic::Ordering::Relaxed),
            kernel,
            totals: Totals::of(&counters),
            settings,
            caption,
        };
        self.prev = counters;
        self.prev_at = now;
        self.prev_kernel = kernel_now.or(self.prev_kernel);
        sample
    }
}

/// Asks the sampler thread for an extra sample now (the final one of a run).
pub struct SampleNow;

/// Runs `sampler` on its own thread: a sample every `interval` on a fixed grid (no drift),
/// plus one whenever `SampleNow` arrives. Stops when either channel's other end is gone.
pub fn spawn(
    mut sampler: Sampler,
    interval: Duration,
    out: mpsc::Sender<Sample>,
) -> std::io::Result<std_mpsc::Sender<SampleNow>> {
    let (now_tx, now_rx) = std_mpsc::channel::<SampleNow>();
    std::thread::Builder::new()
        .name("sockscope-sampler".into())
        .spawn(move || {
            let mut next = sampler.start + interval;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                match now_rx.recv_timeout(wait) {
                    Ok(SampleNow) => {}
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {
                        next += interval;
                        // After a long stall (suspend), skip the missed ticks.
                        let now = Instant::now();
                        if next < now {
                            next = now + interval;
                        }
                    }
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
                if out.blocking_send(sampler.sample(Instant::now())).is_err() {
                    return;
                }
            }
        })?;
    Ok(now_tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::TcpState;
    use crate::sockets::fake::FakeSource;
    use std::sync::atomic::Ordering::Relaxed;

    fn row(local: &str, remote: &str, state: TcpState) -> SocketRow {
        SocketRow {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
        }
    }

    #[test]
    fn rates_are_deltas_over_the_real_interval() {
        let fake = FakeSource::new(vec![
            row("127.0.0.1:9000", "0.0.0.0:0", TcpState::Listen),
            row("127.0.0.1:40000", "127.0.0.1:9000", TcpState::TimeWait),
            row("127.0.0.1:9000", "127.0.0.1:40001", TcpState::Established),
        ]);
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = watch::channel(Settings::default());
        let t0 = Instant::now();
        let mut s = Sampler::new(Box::new(fake.clone()), 9000, stats.clone(), rx, t0);

        stats.requests.fetch_add(50, Relaxed);
        stats.new_connections.fetch_add(5, Relaxed);
        stats.reused_responses.fetch_add(45, Relaxed);
        stats.accepted.fetch_add(5, Relaxed);
        let a = s.sample(t0 + Duration::from_millis(500));
        assert_eq!(a.t_ms, 500);
        assert_eq!(a.backend, "fake");
        assert_eq!(a.listen, 1);
        assert_eq!(a.client.time_wait, 1);
        assert_eq!(a.server.established, 1);
        assert_eq!(a.requests_per_s, 100.0);
        assert_eq!(a.new_connections_per_s, 10.0);
        assert_eq!(a.accepted_per_s, 10.0);
        assert_eq!(a.reuse_ratio, Some(10.0));
        assert_eq!(a.reused_pct, Some(90.0));
        assert_eq!(a.totals.requests, 50);

        // Nothing happened in the next 250 ms: rates are 0, ratios unknown, totals kept.
        fake.set_failure(Some("boom"));
        let b = s.sample(t0 + Duration::from_millis(750));
        assert_eq!(b.requests_per_s, 0.0);
        assert_eq!(b.reuse_ratio, None);
        assert_eq!(b.reused_pct, None);
        assert_eq!(b.totals.requests, 50);
        assert_eq!(b.socket_error.as_deref(), Some("fake: boom"));
        assert_eq!(b.client.total() + b.server.total() + b.listen, 0);
    }

    #[test]
    fn sample_json_has_the_documented_keys() {
        let stats = Arc::new(Stats::default());
        let (_tx, rx) = watch::channel(Settings::default());
        let (_ctx, caption) = watch::channel(Some("step".to_owned()));
        let t0 = Instant::now();
        let mut s = Sampler::new(Box::new(FakeSource::default()), 1, stats, rx, t0);
        s.set_captions(caption);
        let v = serde_json::to_value(s.sample(t0 + Duration::from_millis(100))).unwrap();
        for key in [
            "t_ms",
            "backend",
            "poll_ms",
            "client",
            "server",
            "listen",
            "requests_per_s",
            "new_connections_per_s",
            "accepted_per_s",
            "errors_per_s",
            "errors_per_s_by_kind",
            "reuse_ratio",
            "reused_pct",
            "latency_ms",
            "held",
            "kernel",
            "totals",
            "settings",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert!(v.get("socket_error").is_none());
        assert_eq!(v["caption"], "step");
        assert!(v.get("backend_notice").is_none());
        s.set_notice(Some("netlink sock_diag unavailable".into()));
        let v = serde_json::to_value(s.sample(t0 + Duration::from_millis(200))).unwrap();
        assert_eq!(v["backend_notice"], "netlink sock_diag unavailable");
        for side in ["client", "server"] {
            for st in TcpState::CONNECTION_STATES {
                assert_eq!(v[side][st.key()], 0, "{side}.{}", st.key());
            }
        }
        for p in ["p50", "p90", "p99"] {
            assert!(v["latency_ms"][p].is_null());
        }
        assert_eq!(v["settings"]["body"], "drain");
        assert_eq!(v["settings"]["think_ms"], 2.0);
        assert_eq!(v["settings"]["pool"], 2);
    }
}
