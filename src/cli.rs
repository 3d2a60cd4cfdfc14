//! Command-line flags (clap derive). Parsing turns them into a validated [`Config`].

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

use crate::Error;
use crate::config::{BodyMode, Config, Settings, parse_duration, parse_size};
use crate::sockets::Backend;

/// See what your HTTP client does with TCP connections.
///
/// sockscope runs an HTTP/1.1 server and a pooled hyper client workload in one process,
/// reads the kernel's TCP socket table every 100ms, and shows ESTABLISHED, TIME_WAIT and
/// CLOSE_WAIT counts on the port beside request throughput. The server binds loopback
/// only (127.0.0.1 and ::1) unless --bind says otherwise, and the client talks only to
/// that in-process server.
#[derive(Parser, Debug, Clone)]
#[command(name = "sockscope", version, about, long_about)]
pub struct Cli {
    /// Port to serve on and watch (0 picks a free one)
    #[arg(long, short, default_value_t = 8080)]
    pub port: u16,

    /// Print JSON-lines samples and a summary instead of opening the terminal UI
    #[arg(long, help_heading = "Run")]
    pub headless: bool,

    /// Stop after this long (e.g. 10s, 2m); default: run until quit
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Run")]
    pub duration: Option<Duration>,

    /// Stop after N requests per worker, once every response is handled
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub requests: Option<u64>,

    /// Keep sampling this long after the workload stops (watch TIME_WAIT and CLOSE_WAIT appear)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0", help_heading = "Run")]
    pub linger: Duration,

    /// Time between samples of the socket table (at least 10ms)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100ms", help_heading = "Run")]
    pub interval: Duration,

    /// Do not start the in-process server (watch or load another one on --port)
    #[arg(long, help_heading = "Run")]
    pub no_server: bool,

    /// Do not start the client workload (serve other clients, e.g. curl or wrk)
    #[arg(long, help_heading = "Run")]
    pub no_client: bool,

    /// Only watch the port: no server, no client (same as --no-server --no-client)
    #[arg(long, help_heading = "Run")]
    pub watch: bool,

    /// How to read the socket table: auto (netlink on Linux, procfs if netlink is refused;
    /// netstat2 elsewhere), netlink (sock_diag, as ss), procfs (/proc/net/tcp), netstat2
    #[arg(long, value_enum, default_value_t = Backend::Auto, help_heading = "Run")]
    pub backend: Backend,

    /// Concurrent request loops
    #[arg(
        long,
        short,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Client"
    )]
    pub workers: usize,

    /// Idle connections the pool keeps per host (hyper-util's pool_max_idle_per_host).
    /// Default 2, Go's default; hyper's own default is unlimited
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Client")]
    pub pool: usize,

    /// What a worker does with a response body: drain (read it all), drop (drop it
    /// unread), hold (keep it unread for --hold, like a Go body never closed)
    #[arg(long, value_enum, default_value_t = BodyMode::Drain, help_heading = "Client")]
    pub body: BodyMode,

    /// How long hold mode keeps a response unread
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", help_heading = "Client")]
    pub hold: Duration,

    /// A worker's pause between requests
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2ms", help_heading = "Client")]
    pub think: Duration,

    /// Cap on total requests per second, all workers together
    #[arg(long, value_name = "R", help_heading = "Client")]
    pub rate: Option<f64>,

    /// HTTP/2 over cleartext (prior knowledge) for both sides
    #[arg(long, help_heading = "Client")]
    pub h2c: bool,

    /// Address the server listens on (repeat for several); default 127.0.0.1 and ::1
    #[arg(long, value_name = "ADDR", help_heading = "Server")]
    pub bind: Vec<IpAddr>,

    /// Server's pause before each response
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2ms", help_heading = "Server")]
    pub server_delay: Duration,

    /// Response body size (e.g. 11B, 16KiB, 1MiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64KiB", help_heading = "Server")]
    pub body_size: u64,

    /// Server closes each connection after one response (TIME_WAIT moves to the server side)
    #[arg(long, help_heading = "Server")]
    pub no_keepalive: bool,

    /// Server closes keep-alive connections idle this long
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s", help_heading = "Server")]
    pub idle_timeout: Duration,
}

impl Cli {
    /// The run these flags describe, validated.
    pub fn into_config(self) -> Result<Config, Error> {
        let config = Config {
            port: self.port,
            bind: self.bind,
            interval: self.interval,
            duration: self.duration,
            requests: self.requests,
            linger: self.linger,
            server: !(self.no_server || self.watch),
            client: !(self.no_client || self.watch),
            backend: self.backend,
            settings: Settings {
                body: self.body,
                pool: self.pool,
                workers: self.workers,
                think: self.think,
                rate: self.rate,
                paused: false,
                hold: self.hold,
                body_size: self.body_size,
                server_delay: self.server_delay,
                keepalive: !self.no_keepalive,
                idle_timeout: self.idle_timeout,
                h2c: self.h2c,
            },
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses `args` (program name first) into a config, or into the one line to print.
/// `Ok(Err(text))` is help or version output, to print as it is with exit code 0.
pub fn parse<I, T>(args: I) -> Result<Result<(Cli, Config), String>, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => {
            let headless = cli.clone();
            Ok(Ok((headless, cli.into_config()?)))
        }
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                Ok(Err(e.to_string()))
            }
            _ => {
                // clap's first line says what is wrong; the rest is usage and tips.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                Err(Error::usage(format!("{first} (see --help)")))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, Error> {
        let mut all = vec!["sockscope"];
        all.extend(args);
        parse(all).map(|r| r.expect("not help").1)
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        let c = config(&[]).unwrap();
        let d = Config::default();
        assert_eq!(c.settings, d.settings);
        assert_eq!(c.port, d.port);
        assert_eq!(c.interval, d.interval);
        assert_eq!(c.linger, d.linger);
        assert!(c.server && c.client);
    }

    #[test]
    fn flags_reach_the_config() {
        let c = config(&[
            "--port",
            "0",
            "--workers",
            "3",
            "--pool",
            "0",
            "--body",
            "hold",
            "--hold",
            "1.5s",
            "--think",
            "0ms",
            "--body-size",
            "11B",
            "--no-keepalive",
            "--h2c",
            "--requests",
            "4",
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.settings.workers, 3);
        assert_eq!(c.settings.pool, 0);
        assert_eq!(c.settings.body, BodyMode::Hold);
        assert_eq!(c.settings.hold, Duration::from_millis(1500));
        assert_eq!(c.settings.think, Duration::ZERO);
        assert_eq!(c.settings.body_size, 11);
        assert!(!c.settings.keepalive && c.settings.h2c);
        assert_eq!(c.requests, Some(4));
        let w = config(&["--watch"]).unwrap();
        assert!(!w.server && !w.client);
        assert_eq!(config(&[]).unwrap().backend, Backend::Auto);
        assert_eq!(
            config(&["--backend", "netstat2"]).unwrap().backend,
            Backend::Netstat2
        );
        assert!(config(&["--backend", "ss"]).is_err());
    }

    #[test]
    fn bad_input_is_one_line_naming_the_flag() {
        for (args, needle) in [
            (&["--interval", "1ms"][..], "--interval 1ms is too short"),
            (&["--workers", "0"][..], "--workers must be at least 1"),
            (&["--think", "soon"][..], "'soon' is not a duration"),
            (&["--body-size", "lots"][..], "'lots' is not a size"),
            (&["--body", "eat"][..], "--body"),
            (&["--frobnicate"][..], "--frobnicate"),
            (&["--port", "70000"][..], "--port"),
        ] {
            let msg = config(args).unwrap_err().to_string();
            assert!(msg.contains(needle), "{args:?}: {msg}");
            assert!(!msg.contains('\n'), "{args:?}: more than one line: {msg}");
        }
    }

    #[test]
    fn help_and_version_are_not_errors() {
        let help = parse(["sockscope", "--help"]).unwrap().unwrap_err();
        assert!(help.contains("hyper's own default is unlimited"));
        assert!(help.contains("--headless"));
        let version = parse(["sockscope", "--version"]).unwrap().unwrap_err();
        assert!(version.starts_with("sockscope "));
    }
}
