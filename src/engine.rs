//! The engine: binds the server, starts the client workload and the sampler, and hands
//! out samples and a `Controller`. The TUI, headless mode and tests all drive one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::config::{Config, Settings};
use crate::sampler::{self, Sample, SampleNow, Sampler};
use crate::sockets::{SocketSource, StateCounts};
use crate::workload::client::{CountingConnector, Workload};
use crate::workload::stats::{Counters, Percentiles, Stats};
use crate::workload::{Controller, Shutdown, ShutdownTrigger, server};

/// After the last request, how long to wait for the server's accept count to catch up with
/// the client's connect count (a connect completes in the kernel before accept runs).
const SETTLE: Duration = Duration::from_secs(2);

/// A running engine. Dropping it stops the server, the workers and the sampler.
pub struct Engine {
    port: u16,
    server_addrs: Vec<SocketAddr>,
    backend: &'static str,
    controller: Controller,
    stats: Arc<Stats>,
    samples: mpsc::Receiver<Sample>,
    sample_now: std_mpsc::Sender<SampleNow>,
    finished: watch::Receiver<bool>,
    requests_mode: bool,
    start: Instant,
    _shutdown: ShutdownTrigger,
}

/// The totals of a run, printed last in headless mode as `{"summary": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub duration_ms: u64,
    pub port: u16,
    pub backend: &'static str,
    /// Responses the client completed.
    pub requests: u64,
    /// Connections the client's connector opened.
    pub new_connections: u64,
    /// Connections the server accepted (equal to `new_connections` when both run).
    pub accepted: u64,
    /// Responses the server sent.
    pub served: u64,
    pub reused_responses: u64,
    /// Requests per new connection over the whole run.
    pub reuse_ratio: Option<f64>,
    pub errors_total: u64,
    /// Non-zero error counts by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Responses dropped at once because too many were already held.
    pub hold_overflow: u64,
    pub latency_ms: Percentiles,
    /// The last sample's socket counts.
    pub client: StateCounts,
    pub server: StateCounts,
    pub listen: u32,
    pub settings: Settings,
}

impl Engine {
    /// Starts with the socket-table backend `config.backend` names.
    pub async fn start(config: &Config) -> Result<Engine, Error> {
        let (source, notice) = crate::sockets::open(config.backend)?;
        Engine::start_inner(config, source, notice).await
    }

    pub async fn start_with_source(
        config: &Config,
        source: Box<dyn SocketSource>,
    ) -> Result<Engine, Error> {
        Engine::start_inner(config, source, None).await
    }

    async fn start_inner(
        config: &Config,
        source: Box<dyn SocketSource>,
        backend_notice: Option<String>,
    ) -> Result<Engine, Error> {
        config.validate()?;
        let stats = Arc::new(Stats::default());
        let (trigger, shutdown) = Shutdown::new();
        let connector = CountingConnector::new(stats.clone(), config.local_ports);
        let controller = Controller::new(config.settings.clone(), connector);

        let (port, server_addrs) = if config.server {
            let listeners = server::bind(&config.bind, config.port).await?;
            let port = listeners.port;
            let addrs = listeners.addrs();
            server::spawn(
                listeners,
                controller.subscribe(),
                stats.clone(),
                shutdown.clone(),
            );
            (port, addrs)
        } else {
            (config.port, Vec::new())
        };

        let (done_tx, finished) = watch::channel(false);
        let requests_mode = config.client && config.requests.is_some();
        if config.client {
            let uri = match &config.target {
                Some(t) => t.clone(),
                None => {
                    let target = client_target(&server_addrs, port);
                    format!("http://{target}/")
                        .parse()
                        .map_err(|e| Error::Runtime(format!("bad target URL for {target}: {e}")))?
                }
            };
            let workload = Arc::new(Workload::new(
                controller.subscribe(),
                controller.subscribe_client(),
                stats.clone(),
                uri,
                config.requests,
                config.max_held,
            ));
            let stats = stats.clone();
            let shutdown = shutdown.clone();
            let server = config.server;
            tokio::spawn(async move {
                workload.clone().run(shutdown).await;
                workload.held_released().await;
                if server {
                    settle(&stats).await;
                }
                let _ = done_tx.send(true);
            });
        }

        let start = Instant::now();
        let mut sampler = Sampler::new(source, port, stats.clone(), controller.subscribe(), start);
        if let Some(scenario) = &config.scenario {
            let (caption_tx, captions) = watch::channel(None);
            sampler.set_captions(captions);
            tokio::spawn(run_steps(
                scenario.steps.clone(),
                controller.clone(),
                caption_tx,
                tokio::time::Instant::from_std(start),
                shutdown.clone(),
            ));
        }
        sampler.set_notice(backend_notice);
        let backend = sampler.backend();
        // A few samples of slack: the consumer normally keeps up; if not, the sampler waits.
        let (tx, samples) = mpsc::channel(16);
        let sample_now = sampler::spawn(sampler, config.interval, tx)
            .map_err(|e| Error::Runtime(format!("cannot start the sampler thread: {e}")))?;

        Ok(Engine {
            port,
            server_addrs,
            backend,
            controller,
            stats,
            samples,
            sample_now,
            finished,
            requests_mode,
            start,
            _shutdown: trigger,
        })
    }

    /// Milliseconds since the run started, on the clock of the samples' `t_ms`.
    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The watched port (the one the OS picked, when the config said 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The addresses the server listens on; empty without a server.
    pub fn server_addrs(&self) -> &[SocketAddr] {
        &self.server_addrs
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    pub fn counters(&self) -> Counters {
        self.stats.counters()
    }

    /// The next sample; `None` only if the sampler thread died.
    pub async fn next_sample(&mut self) -> Option<Sample> {
        self.samples.recv().await
    }

    /// Takes a sample at once, outside the regular grid, and returns it (samples already
    /// queued are skipped).
    pub async fn sample_now(&mut self) -> Option<Sample> {
        while self.samples.try_recv().is_ok() {}
        self.sample_now.send(SampleNow).ok()?;
        // The requested sample is the first one queued after the queue was emptied, or the
        // regular tick that raced it; either is at most a few ms old.
        self.samples.recv().await
    }

    /// Resolves when a `--requests` workload is done: every request made, every held
    /// response released, and the server's accepts caught up. Never resolves otherwise.
    pub fn workload_finished(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let requests_mode = self.requests_mode;
        let mut finished = self.finished.clone();
        async move {
            // A dropped sender (engine gone) also never resolves: nothing finished.
            if !requests_mode || finished.wait_for(|done| *done).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Ends the run the way a script wants it ended: stops new requests (pause), lets
    /// requests in flight finish and the server's accepts catch up, then takes a fresh
    /// sample. Returns that sample (also useful to print) and the summary, whose
    /// `settings` are those in force before the pause.
    pub async fn finish(&mut self) -> (Option<Sample>, Summary) {
        let settings = self.controller.settings();
        // Pausing is only invalid for impossible settings, which were rejected at start.
        let _ = self.controller.set_paused(true);
        if !self.server_addrs.is_empty() {
            settle(&self.stats).await;
        }
        let last = self.sample_now().await;
        let mut summary = self.summary(last.as_ref());
        summary.settings = settings;
        (last, summary)
    }

    pub fn summary(&self, last: Option<&Sample>) -> Summary {
        let c = self.stats.counters();
        Summary {
            duration_ms: self.start.elapsed().as_millis() as u64,
            port: self.port,
            backend: self.backend,
            requests: c.requests,
            new_connections: c.new_connections,
            accepted: c.accepted,
            served: c.served,
            reused_responses: c.reused_responses,
            reuse_ratio: (c.new_connections > 0)
                .then(|| c.requests as f64 / c.new_connections as f64),
            errors_total: c.errors_total(),
            errors: c.errors_by_kind(),
            hold_overflow: c.hold_overflow,
            latency_ms: self.stats.total_latency(),
            client: last.map(|s| s.client).unwrap_or_default(),
            server: last.map(|s| s.server).unwrap_or_default(),
            listen: last.map_or(0, |s| s.listen),
            settings: self.controller.settings(),
        }
    }
}

/// Applies a scenario's steps on time and publishes each caption. A step the settings
/// cannot take (a scenario file's combination) shows as a caption instead of ending the run.
async fn run_steps(
    steps: Vec<crate::scenario::Step>,
    controller: Controller,
    caption: watch::Sender<Option<String>>,
    start: tokio::time::Instant,
    shutdown: Shutdown,
) {
    let apply = async {
        for step in steps {
            tokio::time::sleep_until(start + step.at).await;
            let text = match controller.update(|s| step.set.apply(s)) {
                Ok(_) => step.caption,
                Err(e) => format!(
                    "step at {} not applied: {e}",
                    crate::config::format_duration(step.at)
                ),
            };
            caption.send_replace(Some(text));
        }
        // Keep the last caption up until the run ends.
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = apply => {}
        _ = shutdown.wait() => {}
    }
}

/// Waits (bounded) until no request is in flight and the server has accepted every
/// connection the client opened: a connect completes in the kernel before accept runs.
async fn settle(stats: &Stats) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while tokio::time::Instant::now() < deadline {
        let c = stats.counters();
        if stats.in_flight.load(std::sync::atomic::Ordering::Relaxed) == 0
            && c.accepted >= c.new_connections
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The client connects to the first server address, with a wildcard bind mapped to the
/// matching loopback; without a server, to 127.0.0.1:port.
fn client_target(server_addrs: &[SocketAddr], port: u16) -> SocketAddr {
    match server_addrs.first() {
        Some(a) if a.ip().is_unspecified() => {
            let ip = if a.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            };
            SocketAddr::new(ip, a.port())
        }
        Some(a) => *a,
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    }
}
