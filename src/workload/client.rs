//! The client workload: hyper-util's pooled legacy `Client` (the engine inside reqwest)
//! behind a connector that counts and tags every connection, and the worker loops.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use super::Shutdown;
use super::stats::{ErrorKind, Stats};
use crate::config::{BodyMode, Settings};

/// A request that has no answer by then counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed request, doubled for each failure in a row up to the maximum, so
/// a refused port or a full descriptor table is not hammered in a hot loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// Descriptors kept back from client connections for everything else the process opens:
/// stdio, the runtime, listeners, the sampler's reads.
const FD_RESERVE: u64 = 24;
/// hyper-util's (and Go's) idle-connection lifetime in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub type HttpClient = Client<CountingConnector, Empty<Bytes>>;

/// Which connection served a response: the connector attaches it to each connection and
/// hyper-util copies it into every response's extensions. The analogue of Go's
/// `httptrace.GotConnInfo`.
#[derive(Clone, Debug)]
pub struct ConnId {
    pub id: u64,
    responses: Arc<AtomicU64>,
}

impl ConnId {
    /// Counts one more response on this connection; true if it had served one before.
    pub fn mark_response(&self) -> bool {
        self.responses.fetch_add(1, Relaxed) > 0
    }
}

/// A TCP stream that reports its `ConnId` to hyper-util.
pub struct CountedIo {
    io: TokioIo<TcpStream>,
    id: ConnId,
    _slot: OpenSlot,
}

impl Connection for CountedIo {
    fn connected(&self) -> Connected {
        Connected::new().extra(self.id.clone())
    }
}

impl Read for CountedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for CountedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Connects over plain TCP and counts each new connection once it is established, the
/// client-side twin of the server's accept count.
#[derive(Clone)]
pub struct CountingConnector {
    stats: Arc<Stats>,
    next_id: Arc<AtomicU64>,
    /// Client connections open now.
    open: Arc<AtomicU64>,
    /// Most client connections at once: half of the descriptors left after a reserve, so
    /// that the in-process server can always accept what the client connects. Without it,
    /// at the descriptor limit, connected-but-unaccepted sockets would hold every
    /// descriptor and nothing would move until requests time out.
    budget: u64,
    /// Ephemeral ports the client may use (`--local-ports`), to reach exhaustion fast.
    local_ports: Option<(u16, u16)>,
}

impl CountingConnector {
    pub fn new(stats: Arc<Stats>, local_ports: Option<(u16, u16)>) -> Self {
        let limit = crate::os::fd_limit().unwrap_or(1024);
        CountingConnector {
            stats,
            next_id: Arc::new(AtomicU64::new(0)),
            open: Arc::new(AtomicU64::new(0)),
            budget: (limit.saturating_sub(FD_RESERVE) / 2).max(1),
            local_ports,
        }
    }
}

/// Connects to `host:port`, from an ephemeral port in `local_ports` when given.
async fn connect(host: &str, port: u16, local_ports: Option<(u16, u16)>) -> io::Result<TcpStream> {
    let Some(range) = local_ports else {
        return TcpStream::connect((host, port)).await;
    };
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for the target"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    crate::os::set_local_port_range(&socket, range)?;
    socket.connect(addr).await
}

impl tower_service::Service<Uri> for CountingConnector {
    type Response = CountedIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<CountedIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let slot = OpenSlot::take(&this.open, this.budget)
                // Over budget is reported as what it stands for: too many open files.
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EMFILE))?;
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL has no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, connect(&host, port, this.local_ports))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            let _ = stream.set_nodelay(true);
            this.stats.new_connections.fetch_add(1, Relaxed);
            Ok(CountedIo {
                io: TokioIo::new(stream),
                id: ConnId {
                    id: this.next_id.fetch_add(1, Relaxed),
                    responses: Arc::new(AtomicU64::new(0)),
                },
                _slot: slot,
            })
        })
    }
}

/// One unit of the connector's connection budget, given back when dropped (with the
/// connection, or on a failed connect).
struct OpenSlot(Arc<AtomicU64>);

impl OpenSlot {
    fn take(open: &Arc<AtomicU64>, budget: u64) -> Option<OpenSlot> {
        if open.fetch_add(1, Relaxed) >= budget {
            open.fetch_sub(1, Relaxed);
            return None;
        }
        Some(OpenSlot(open.clone()))
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Builds a client whose pool keeps at most `pool` idle connections per host. Pool
/// settings are fixed at build time, so a live resize builds a new client.
pub fn build_client(connector: &CountingConnector, pool: usize, h2c: bool) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .http2_only(h2c)
        .build(connector.clone())
}

/// What the workers share.
pub struct Workload {
    pub settings: watch::Receiver<Settings>,
    pub client: watch::Receiver<HttpClient>,
    pub stats: Arc<Stats>,
    pub uri: Uri,
    /// Requests per worker before it stops; `None` runs until shutdown.
    pub requests_per_worker: Option<u64>,
    /// One permit per response that may be held at once (hold mode).
    held: Arc<Semaphore>,
    max_held: u32,
    /// The next free slot of the shared rate limit, and the rate it was computed for.
    next_slot: std::sync::Mutex<Option<(Instant, f64)>>,
    /// `quota_done[i]`: worker i has made all its requests (set before `worker_done`).
    quota_done: std::sync::Mutex<Vec<bool>>,
    worker_done: Notify,
}

impl Workload {
    pub fn new(
        settings: watch::Receiver<Settings>,
        client: watch::Receiver<HttpClient>,
        stats: Arc<Stats>,
        uri: Uri,
        requests_per_worker: Option<u64>,
        max_held: u32,
    ) -> Self {
        Workload {
            settings,
            client,
            stats,
            uri,
            requests_per_worker,
            held: Arc::new(Semaphore::new(max_held as usize)),
            max_held,
            next_slot: std::sync::Mutex::new(None),
            quota_done: std::sync::Mutex::new(Vec::new()),
            worker_done: Notify::new(),
        }
    }

    /// Runs the workers until every active worker has done its requests (never, without
    /// `requests_per_worker`) or until shutdown; workers are added when the setting grows
    /// and park, rather than exit, when it shrinks or the run is paused.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut settings = self.settings.clone();
        let mut workers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let finished = async {
            loop {
                let target = settings.borrow_and_update().workers;
                while workers.len() < target {
                    let me = self.clone();
                    let idx = workers.len();
                    workers.push(tokio::spawn(async move { me.worker(idx).await }));
                }
                if self.requests_per_worker.is_some() && self.quota_done_below(target) {
                    return;
                }
                tokio::select! {
                    changed = settings.changed() => if changed.is_err() { return },
                    _ = self.worker_done.notified() => {}
                }
            }
        };
        tokio::select! {
            _ = finished => {}
            _ = shutdown.wait() => {}
        }
        for w in &workers {
            w.abort();
        }
    }

    fn quota_done_below(&self, n: usize) -> bool {
        let done = self.quota_done.lock().unwrap_or_else(|p| p.into_inner());
        done.len() >= n && done[..n].iter().all(|d| *d)
    }

    /// Waits until no response is held any more.
    pub async fn held_released(&self) {
        // Taking every permit means every hold task has given its own back.
        if let Ok(all) = self.held.acquire_many(self.max_held).await {
            drop(all);
        }
    }

    async fn worker(&self, idx: usize) {
        let mut settings = self.settings.clone();
        let mut done = 0u64;
        let mut backoff = ERROR_BACKOFF;
        loop {
            let s = settings.borrow_and_update().clone();
            if s.paused || idx >= s.workers {
                if settings.changed().await.is_err() {
                    break;
                }
                continue;
            }
            if self.requests_per_worker.is_some_and(|n| done >= n) {
                let mut flags = self.quota_done.lock().unwrap_or_else(|p| p.into_inner());
                if flags.len() <= idx {
                    flags.resize(idx + 1, false);
                }
                flags[idx] = true;
                break;
            }
            if let Some(rate) = s.rate {
                let slot = self.reserve_slot(rate);
                // A settings change (a new rate, a pause) re-decides instead of waiting.
                tokio::select! {
                    _ = tokio::time::sleep_until(slot) => {}
                    changed = settings.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        continue;
                    }
                }
            }
            let client = self.client.borrow().clone();
            self.stats.in_flight.fetch_add(1, Relaxed);
            let ok = self.one_request(&client, &s).await;
            self.stats.in_flight.fetch_sub(1, Relaxed);
            if ok {
                backoff = ERROR_BACKOFF;
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ERROR_BACKOFF);
            }
            done += 1;
            if !s.think.is_zero() {
                // A settings change ends the pause early, so a long think time that is
                // shortened (or a pause) takes effect at once, not after the old wait.
                tokio::select! {
                    _ = tokio::time::sleep(s.think) => {}
                    changed = settings.changed() => if changed.is_err() { break },
                }
            }
        }
        self.worker_done.notify_one();
    }

    /// Waits for this worker's turn under the shared requests-per-second cap.
    /// Reserves this worker's slot under the shared requests-per-second cap; a new rate
    /// starts a new schedule rather than serving out slots booked at the old one.
    fn reserve_slot(&self, rate: f64) -> Instant {
        let now = Instant::now();
        let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
        let slot = match *next {
            Some((n, r)) if r == rate => n.max(now),
            _ => now,
        };
        *next = Some((slot + Duration::from_secs_f64(1.0 / rate), rate));
        slot
    }

    /// One request, its body handled as the mode says. Returns false on error.
    async fn one_request(&self, client: &HttpClient, s: &Settings) -> bool {
        let start = Instant::now();
        let req = match hyper::Request::get(self.uri.clone()).body(Empty::new()) {
            Ok(r) => r,
            Err(_) => {
                self.stats.record_error(ErrorKind::Other);
                return false;
            }
        };
        let res = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(req)).await {
            Err(_) => {
                self.stats.record_error(ErrorKind::Timeout);
                return false;
            }
            Ok(Err(e)) => {
                self.stats.record_error(ErrorKind::of(&e));
                return false;
            }
            Ok(Ok(res)) => res,
        };
        if res
            .extensions()
            .get::<ConnId>()
            .is_some_and(ConnId::mark_response)
        {
            self.stats.reused_responses.fetch_add(1, Relaxed);
        }
        match s.body {
            BodyMode::Drain => {
                let mut body = res.into_body();
                let read = async {
                    while let Some(frame) = body.frame().await {
                        frame?;
                    }
                    Ok::<(), hyper::Error>(())
                };
                match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
                    Err(_) => {
                        self.stats.record_error(ErrorKind::Timeout);
                        return false;
                    }
                    Ok(Err(e)) => {
                        self.stats.record_error(ErrorKind::of(&e));
                        return false;
                    }
                    Ok(Ok(())) => {}
                }
            }
            BodyMode::Drop => drop(res),
            BodyMode::Hold => match self.held.clone().try_acquire_owned() {
                Ok(permit) => {
                    let hold = s.hold;
                    let stats = self.stats.clone();
                    stats.held.fetch_add(1, Relaxed);
                    tokio::spawn(async move {
                        tokio::time::sleep(hold).await;
                        drop(res);
                        stats.held.fetch_sub(1, Relaxed);
                        drop(permit);
                    });
                }
                Err(_) => {
                    self.stats.hold_overflow.fetch_add(1, Relaxed);
                    drop(res);
                }
            },
        }
        self.stats.requests.fetch_add(1, Relaxed);
        self.stats.record_latency(start.elapsed());
        true
    }
}
