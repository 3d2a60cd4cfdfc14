//! The validated run configuration, the live workload `Settings`, and the parsers for the
//! human units users type (`2ms`, `64KiB`). Everything is checked once, here.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::Error;
use crate::sockets::Backend;

/// The shortest sample period: below it the sampler's own cost starts to show.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Largest response body the server will make, so a typo cannot eat the machine's memory.
pub const MAX_BODY_SIZE: u64 = 64 * 1024 * 1024;
/// Most concurrent client loops; each costs a task and, at worst, a socket.
pub const MAX_WORKERS: usize = 10_000;
/// Default bound on responses held unread at once in hold mode; past it a response is
/// dropped at once instead (and counted as `hold_overflow`).
pub const DEFAULT_MAX_HELD: u32 = 10_000;

/// What a worker does with a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    /// Read the body to its end, then drop it: the connection goes back to the pool.
    Drain,
    /// Drop the response unread: hyper reads on a little, then closes the connection.
    Drop,
    /// Keep the response unread for `--hold`, then drop it, like a Go body never closed.
    Hold,
}

impl BodyMode {
    pub fn name(self) -> &'static str {
        match self {
            BodyMode::Drain => "drain",
            BodyMode::Drop => "drop",
            BodyMode::Hold => "hold",
        }
    }

    /// The next mode in the cycle drain -> drop -> hold -> drain.
    pub fn next(self) -> BodyMode {
        match self {
            BodyMode::Drain => BodyMode::Drop,
            BodyMode::Drop => BodyMode::Hold,
            BodyMode::Hold => BodyMode::Drain,
        }
    }
}

impl fmt::Display for BodyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn as_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// The workload settings that can change while it runs (the `Controller` changes them;
/// the server and the workers read them on every connection and request).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub body: BodyMode,
    /// hyper-util's `pool_max_idle_per_host`.
    pub pool: usize,
    pub workers: usize,
    #[serde(rename = "think_ms", serialize_with = "as_ms")]
    pub think: Duration,
    /// Cap on total requests per second, all workers together.
    pub rate: Option<f64>,
    pub paused: bool,
    #[serde(rename = "hold_ms", serialize_with = "as_ms")]
    pub hold: Duration,
    pub body_size: u64,
    #[serde(rename = "server_delay_ms", serialize_with = "as_ms")]
    pub server_delay: Duration,
    pub keepalive: bool,
    #[serde(rename = "idle_timeout_ms", serialize_with = "as_ms")]
    pub idle_timeout: Duration,
    /// HTTP/2 cleartext on both sides; fixed for the run.
    pub h2c: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body: BodyMode::Drain,
            pool: 2,
            workers: 10,
            think: Duration::from_millis(2),
            rate: None,
            paused: false,
            hold: Duration::from_secs(10),
            body_size: 64 * 1024,
            server_delay: Duration::from_millis(2),
            keepalive: true,
            idle_timeout: Duration::from_secs(5),
            h2c: false,
        }
    }
}

impl Settings {
    /// Rejects values no run can use; the message names the flag and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        if self.workers == 0 {
            return Err(Error::usage(
                "--workers must be at least 1 (use --no-client to run without a client)",
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(Error::usage(format!(
                "--workers {} is more than the {MAX_WORKERS} sockscope allows",
                self.workers
            )));
        }
        if self.body_size > MAX_BODY_SIZE {
            return Err(Error::usage(format!(
                "--body-size {} is over the cap of {}; pick a smaller size",
                format_size(self.body_size),
                format_size(MAX_BODY_SIZE)
            )));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::usage(format!(
                "--rate {rate} must be a number of requests per second above 0"
            )));
        }
        if self.idle_timeout.is_zero() {
            return Err(Error::usage(
                "--idle-timeout must be above 0 (it closes idle keep-alive connections)",
            ));
        }
        Ok(())
    }
}

/// Everything a run needs, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// The watched port; 0 asks the OS for a free one (the server must then run).
    pub port: u16,
    /// Addresses the server binds; when empty, 127.0.0.1 and ::1 (if the host has IPv6).
    pub bind: Vec<IpAddr>,
    pub interval: Duration,
    /// Run length; `None` runs until quit (or until `requests` are done).
    pub duration: Option<Duration>,
    /// Requests per worker, after which the workload ends.
    pub requests: Option<u64>,
    /// How long to keep sampling after the workload ends.
    pub linger: Duration,
    /// Start the in-process server.
    pub server: bool,
    /// Start the in-process client workload.
    pub client: bool,
    pub settings: Settings,
    /// The scenario the run started from; its timed steps are applied by the engine.
    pub scenario: Option<crate::scenario::Scenario>,
    /// Most responses held at once in hold mode.
    pub max_held: u32,
    /// Where the client sends requests instead of the in-process server (`--target`).
    pub target: Option<hyper::Uri>,
    /// Ephemeral port range for the client's connections (`--local-ports LO-HI`).
    pub local_ports: Option<(u16, u16)>,
    /// How the socket table is read.
    pub backend: Backend,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 8080,
            bind: Vec::new(),
            interval: Duration::from_millis(100),
            duration: None,
            requests: None,
            linger: Duration::ZERO,
            server: true,
            client: true,
            settings: Settings::default(),
            scenario: None,
            max_held: DEFAULT_MAX_HELD,
            target: None,
            local_ports: None,
            backend: Backend::Auto,
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<(), Error> {
        if self.interval < MIN_INTERVAL {
            return Err(Error::usage(format!(
                "--interval {} is too short: the sampler needs at least {} (default 100ms)",
                format_duration(self.interval),
                format_duration(MIN_INTERVAL)
            )));
        }
        if self.port == 0 && !self.server {
            return Err(Error::usage(
                "--port 0 picks a free port for the in-process server; with --no-server name the port to watch",
            ));
        }
        if let Some(t) = &self.target
            && (t.scheme_str() != Some("http") || t.host().is_none())
        {
            return Err(Error::usage(format!(
                "--target {t} must be an http:// URL with a host, like http://127.0.0.1:8080/ (https is not supported)"
            )));
        }
        if self.max_held == 0 {
            return Err(Error::usage("--max-held must be at least 1"));
        }
        if self.requests == Some(0) {
            return Err(Error::usage("--requests must be at least 1 per worker"));
        }
        self.settings.validate()
    }
}

/// Parses a duration with a unit: `0`, `500us`, `2ms`, `1.5s`, `1m`, `1h`, or humantime's
/// compound forms (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    // humantime takes no fractions; `1.5s` is common enough to accept.
    if let Some(num) = t.strip_suffix('s').filter(|n| n.contains('.'))
        && let Ok(secs) = num.parse::<f64>()
        && (0.0..1e9).contains(&secs)
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(t).map_err(|_| {
        // escape_debug keeps a stray newline or control character from splitting the line.
        format!(
            "'{}' is not a duration; write a number and a unit, like 2ms, 1.5s or 1m",
            text.escape_debug()
        )
    })
}

/// Parses a size in bytes: `11`, `11B`, `16KiB`, `1MiB`, `1GiB` (binary) or `16KB`, `1MB`
/// (decimal), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad =
        || format!("'{text}' is not a size; write bytes with a unit, like 11B, 16KiB or 1MiB");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 || bytes.fract() != 0.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses an ephemeral port range `LO-HI` (`41000-41019`).
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || {
        format!(
            "'{}' is not a port range; write it like 40000-40019",
            text.escape_debug()
        )
    };
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// `65536` -> `64KiB`, `11` -> `11B`: the shortest exact form.
pub fn format_size(bytes: u64) -> String {
    for (unit, mult) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return format!("{}{unit}", bytes / mult);
        }
    }
    format!("{bytes}B")
}

/// `Duration` -> `2ms`, `1.5s`, `0ms`: short and readable in a status bar.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if d.is_zero() {
        "0ms".into()
    } else if ms < 1.0 {
        format!("{}us", d.as_micros())
    } else if ms < 1000.0 {
        format!("{}ms", trim_float(ms))
    } else {
        format!("{}s", trim_float(ms / 1000.0))
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
        for bad in ["", "5", "5x", "ms", "-1s", "1.5.5s", "NaNs"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("not a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("11B"), Ok(11));
        assert_eq!(parse_size("11"), Ok(11));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("64kib"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("2KB"), Ok(2000));
        for bad in ["", "KiB", "1.2.3B", "12XB", "-1B", "0.5B", "1e3B"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("not a size"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for b in [0, 11, 8192, 65536, 1 << 20, 1000] {
            assert_eq!(parse_size(&format_size(b)), Ok(b));
        }
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_duration(Duration::from_millis(2)), "2ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn validation_names_the_flag() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.interval = Duration::from_millis(1);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--interval 1ms")
        );
        let mut c = Config::default();
        c.settings.workers = 0;
        assert!(c.validate().unwrap_err().to_string().contains("--workers"));
        let mut c = Config::default();
        c.settings.body_size = MAX_BODY_SIZE + 1;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--body-size")
        );
    }
}
