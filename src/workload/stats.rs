//! Counters the workload bumps and the sampler reads: plain atomics (one relaxed add per
//! event) and a latency histogram behind a mutex that is held for a few nanoseconds.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Why a request failed, as counted and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// ECONNREFUSED: nothing listens, or the accept queue is full.
    ConnectRefused,
    /// EADDRNOTAVAIL: no free ephemeral port towards this address (TIME_WAIT holds them).
    AddrNotAvailable,
    /// EMFILE/ENFILE: out of file descriptors.
    TooManyFiles,
    /// No answer within the request timeout.
    Timeout,
    /// The peer reset or closed the connection mid-exchange.
    Reset,
    /// Anything else.
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::ConnectRefused,
        ErrorKind::AddrNotAvailable,
        ErrorKind::TooManyFiles,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Other,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::AddrNotAvailable => "addr_not_available",
            ErrorKind::TooManyFiles => "too_many_files",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Other => "other",
        }
    }

    /// Classifies an error by the first OS error in its source chain.
    pub fn of(err: &(dyn std::error::Error + 'static)) -> ErrorKind {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                let kind = ErrorKind::of_io(io);
                // io::Error::other(inner) hides `inner` from source(); look inside it.
                match io.get_ref() {
                    Some(inner) if kind == ErrorKind::Other => {
                        cur = Some(inner);
                        continue;
                    }
                    _ => return kind,
                }
            }
            if let Some(h) = e.downcast_ref::<hyper::Error>() {
                if h.is_timeout() {
                    return ErrorKind::Timeout;
                }
                if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                    // Keep looking for an io::Error below; a bare close is a reset to us.
                    if e.source().is_none() {
                        return ErrorKind::Reset;
                    }
                }
            }
            cur = e.source();
        }
        ErrorKind::Other
    }

    pub fn of_io(e: &io::Error) -> ErrorKind {
        match e.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => return ErrorKind::TooManyFiles,
            Some(libc::EADDRNOTAVAIL) => return ErrorKind::AddrNotAvailable,
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::AddrNotAvailable => ErrorKind::AddrNotAvailable,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
            _ => ErrorKind::Other,
        }
    }
}

/// Latency percentiles in milliseconds; `None` when nothing was measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |q: f64| Some(h.value_at_quantile(q) as f64 / 1000.0);
        Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
        }
    }
}

struct Latency {
    interval: Histogram<u64>,
    total: Histogram<u64>,
}

/// Every counter of one run. Client and server share it; the sampler reads it.
pub struct Stats {
    /// Responses received (headers in), whatever was then done with the body.
    pub requests: AtomicU64,
    /// Connections opened by the client's connector.
    pub new_connections: AtomicU64,
    /// Responses that came on a connection that had served one before.
    pub reused_responses: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Connections the server accepted.
    pub accepted: AtomicU64,
    /// Responses the server sent.
    pub served: AtomicU64,
    /// Server connections that ended.
    pub closed: AtomicU64,
    /// Failed accepts (EMFILE, ...); the server backs off and retries.
    pub accept_errors: AtomicU64,
    /// Responses dropped at once in hold mode because `MAX_HELD` were already held.
    pub hold_overflow: AtomicU64,
    /// Requests started and not yet done with (a gauge, not a counter).
    pub in_flight: AtomicU64,
    /// Responses held unread right now in hold mode (a gauge).
    pub held: AtomicU64,
    latency: Mutex<Latency>,
}

impl Default for Stats {
    fn default() -> Self {
        // 1us .. 10 min at 3 significant digits: a few hundred KiB, made once.
        let h = || Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Stats {
            requests: AtomicU64::new(0),
            new_connections: AtomicU64::new(0),
            reused_responses: AtomicU64::new(0),
            errors: Default::default(),
            accepted: AtomicU64::new(0),
            served: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            hold_overflow: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            held: AtomicU64::new(0),
            latency: Mutex::new(Latency {
                interval: h(),
                total: h(),
            }),
        }
    }
}

/// A copy of the counters at one instant, for deltas and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub new_connections: u64,
    pub reused_responses: u64,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub accepted: u64,
    pub served: u64,
    pub closed: u64,
    pub accept_errors: u64,
    pub hold_overflow: u64,
}

impl Counters {
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Non-zero error counts by kind.
    pub fn errors_by_kind(&self) -> BTreeMap<&'static str, u64> {
        ErrorKind::ALL
            .iter()
            .zip(self.errors)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.key(), n))
            .collect()
    }

    /// `self - earlier`, saturating (counters only grow, but be safe).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut errors = [0; ErrorKind::ALL.len()];
        for (i, e) in errors.iter_mut().enumerate() {
            *e = self.errors[i].saturating_sub(earlier.errors[i]);
        }
        Counters {
            requests: self.requests.saturating_sub(earlier.requests),
            new_connections: self.new_connections.saturating_sub(earlier.new_connections),
            reused_responses: self
                .reused_responses
                .saturating_sub(earlier.reused_responses),
            errors,
            accepted: self.accepted.saturating_sub(earlier.accepted),
            served: self.served.saturating_sub(earlier.served),
            closed: self.closed.saturating_sub(earlier.closed),
            accept_errors: self.accept_errors.saturating_sub(earlier.accept_errors),
            hold_overflow: self.hold_overflow.saturating_sub(earlier.hold_overflow),
        }
    }
}

impl Stats {
    pub fn record_error(&self, kind: ErrorKind) {
        let i = ErrorKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(ErrorKind::ALL.len() - 1);
        self.errors[i].fetch_add(1, Relaxed);
    }

    pub fn record_latency(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 600_000_000);
        let mut l = self.lock();
        // Values are clamped into the bounds, so recording cannot fail.
        let _ = l.interval.record(us);
        let _ = l.total.record(us);
    }

    /// Percentiles since the last call, and starts a new interval.
    pub fn take_interval_latency(&self) -> Percentiles {
        let mut l = self.lock();
        let p = Percentiles::of(&l.interval);
        l.interval.reset();
        p
    }

    /// Percentiles over the whole run.
    pub fn total_latency(&self) -> Percentiles {
        Percentiles::of(&self.lock().total)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latency> {
        self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn counters(&self) -> Counters {
        let mut errors = [0; ErrorKind::ALL.len()];
        for (i, e) in errors.iter_mut().enumerate() {
            *e = self.errors[i].load(Relaxed);
        }
        Counters {
            requests: self.requests.load(Relaxed),
            new_connections: self.new_connections.load(Relaxed),
            reused_responses: self.reused_responses.load(Relaxed),
            errors,
            accepted: self.accepted.load(Relaxed),
            served: self.served.load(Relaxed),
            closed: self.closed.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            hold_overflow: self.hold_overflow.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds() {
        let os = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            ErrorKind::of_io(&os(libc::ECONNREFUSED)),
            ErrorKind::ConnectRefused
        );
        assert_eq!(
            ErrorKind::of_io(&os(libc::EADDRNOTAVAIL)),
            ErrorKind::AddrNotAvailable
        );
        assert_eq!(ErrorKind::of_io(&os(libc::EMFILE)), ErrorKind::TooManyFiles);
        assert_eq!(ErrorKind::of_io(&os(libc::ECONNRESET)), ErrorKind::Reset);
        assert_eq!(ErrorKind::of_io(&os(libc::ETIMEDOUT)), ErrorKind::Timeout);
        // Wrapped errors are classified by the io::Error beneath.
        let wrapped = io::Error::other(os(libc::ECONNREFUSED));
        assert_eq!(ErrorKind::of(&wrapped), ErrorKind::ConnectRefused);
        assert_eq!(ErrorKind::of(&io::Error::other("odd")), ErrorKind::Other);
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Outer(#[source] io::Error);
        assert_eq!(
            ErrorKind::of(&Outer(os(libc::EADDRNOTAVAIL))),
            ErrorKind::AddrNotAvailable
        );
    }

    #[test]
    fn counters_and_latency() {
        let s = Stats::default();
        s.record_error(ErrorKind::Timeout);
        s.record_error(ErrorKind::Timeout);
        s.record_error(ErrorKind::Reset);
        s.requests.fetch_add(5, Relaxed);
        let c = s.counters();
        assert_eq!(c.errors_total(), 3);
        assert_eq!(c.errors_by_kind().get("timeout"), Some(&2));
        assert_eq!(c.errors_by_kind().len(), 2);
        assert_eq!(c.since(&Counters::default()).requests, 5);

        for ms in 1..=100 {
            s.record_latency(Duration::from_millis(ms));
        }
        let p = s.take_interval_latency();
        assert!((p.p50.unwrap() - 50.0).abs() < 0.5, "{p:?}");
        assert!((p.p99.unwrap() - 99.0).abs() < 0.5, "{p:?}");
        assert_eq!(s.take_interval_latency(), Percentiles::default());
        assert!(s.total_latency().p90.is_some());
    }
}
