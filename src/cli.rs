//! Command-line flags (clap derive). Parsing turns them into a validated [`Config`].

use std::net::IpAddr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::Error;
use crate::config::{BodyMode, Config, Settings, parse_duration, parse_size};
use crate::scenario::{self, SettingsPatch};
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

    /// Start from a preset (see --list-scenarios) or a TOML scenario file; flags given
    /// here override it
    #[arg(long, value_name = "NAME|PATH", help_heading = "Run")]
    pub scenario: Option<String>,

    /// List the preset scenarios with what each shows, then exit
    #[arg(long, help_heading = "Run")]
    pub list_scenarios: bool,

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

    /// Most responses hold mode keeps at once; past it a response is dropped at once and
    /// counted as hold_overflow
    #[arg(long, value_name = "N", default_value_t = crate::config::DEFAULT_MAX_HELD, help_heading = "Client")]
    pub max_held: u32,

    /// How long hold mode keeps a response unread
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", help_heading = "Client")]
    pub hold: Duration,

    /// A worker's pause between requests
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2ms", help_heading = "Client")]
    pub think: Duration,

    /// Cap on total requests per second, all workers together
    #[arg(long, value_name = "R", help_heading = "Client")]
    pub rate: Option<f64>,

    /// Send the client's requests to this http:// URL instead of the in-process server,
    /// which is then not started; the port watched is the URL's unless --port is given
    #[arg(long, value_name = "URL", value_parser = parse_target, help_heading = "Client")]
    pub target: Option<hyper::Uri>,

    /// Ephemeral ports the client may connect from, e.g. 40000-40019: shows port
    /// exhaustion (addr_not_available errors) in seconds (Linux 6.3+)
    #[arg(long, value_name = "LO-HI", value_parser = crate::config::parse_port_range, help_heading = "Client")]
    pub local_ports: Option<(u16, u16)>,

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
    /// The run these flags describe, validated: defaults, then the scenario (if any), then
    /// every flag given on the command line (`matches` says which were).
    pub fn into_config(self, matches: &ArgMatches) -> Result<Config, Error> {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let scenario = self.scenario.as_deref().map(scenario::load).transpose()?;
        let mut settings = Settings::default();
        let mut run = scenario::RunPatch::default();
        if let Some(sc) = &scenario {
            sc.settings.apply(&mut settings);
            run = sc.run.clone();
        }
        SettingsPatch {
            body: given("body").then_some(self.body),
            pool: given("pool").then_some(self.pool),
            workers: given("workers").then_some(self.workers),
            think: given("think").then_some(self.think),
            rate: self.rate,
            paused: None,
            hold: given("hold").then_some(self.hold),
            body_size: given("body_size").then_some(self.body_size),
            server_delay: given("server_delay").then_some(self.server_delay),
            keepalive: self.no_keepalive.then_some(false),
            idle_timeout: given("idle_timeout").then_some(self.idle_timeout),
            h2c: self.h2c.then_some(true),
        }
        .apply(&mut settings);
        // Run-level values: a flag given wins, then the scenario, then the flag's default.
        fn prefer<T>(flag_given: bool, flag: T, from_file: Option<T>) -> T {
            if flag_given {
                flag
            } else {
                from_file.unwrap_or(flag)
            }
        }
        let port = match &self.target {
            Some(t) if !given("port") => t.port_u16().unwrap_or(80),
            _ => self.port,
        };
        let config = Config {
            port,
            bind: self.bind,
            interval: prefer(given("interval"), self.interval, run.interval),
            duration: prefer(given("duration"), self.duration, run.duration.map(Some)),
            requests: prefer(given("requests"), self.requests, run.requests.map(Some)),
            linger: prefer(given("linger"), self.linger, run.linger),
            server: !(self.no_server || self.watch || self.target.is_some()),
            client: !(self.no_client || self.watch),
            settings,
            scenario,
            max_held: self.max_held,
            target: self.target,
            local_ports: prefer(
                given("local_ports"),
                self.local_ports,
                run.local_ports.map(Some),
            ),
            backend: prefer(given("backend"), self.backend, run.backend),
        };
        config.validate()?;
        Ok(config)
    }
}

fn parse_target(text: &str) -> Result<hyper::Uri, String> {
    text.parse::<hyper::Uri>()
        .map_err(|e| format!("'{text}' is not a URL ({e}); write it like http://127.0.0.1:8080/"))
}

/// Parses `args` (program name first) into a config, or into the one line to print.
/// `Ok(Err(text))` is help, version or the scenario list, to print as it is with exit
/// code 0.
pub fn parse<I, T>(args: I) -> Result<Result<(Cli, Config), String>, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    match parsed {
        Ok((cli, _)) if cli.list_scenarios => Ok(Err(scenario::list()?)),
        Ok((cli, matches)) => {
            let kept = cli.clone();
            Ok(Ok((kept, cli.into_config(&matches)?)))
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
                // Keep the useful part of clap's later lines: what would have been valid.
                use clap::error::{ContextKind, ContextValue};
                let hint = match (
                    e.get(ContextKind::ValidValue),
                    e.get(ContextKind::SuggestedArg),
                ) {
                    (Some(ContextValue::Strings(valid)), _) => {
                        format!("; expected one of: {}", valid.join(", "))
                    }
                    (_, Some(ContextValue::String(arg))) => format!("; did you mean {arg}?"),
                    _ => String::new(),
                };
                Err(Error::usage(format!("{first}{hint} (see --help)")))
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
            (&["--body", "eat"][..], "expected one of: drain, drop, hold"),
            (&["--workrs", "3"][..], "did you mean --workers?"),
            (&["--frobnicate"][..], "--frobnicate"),
            (&["--port", "70000"][..], "--port"),
        ] {
            let msg = config(args).unwrap_err().to_string();
            assert!(msg.contains(needle), "{args:?}: {msg}");
            assert!(!msg.contains('\n'), "{args:?}: more than one line: {msg}");
        }
    }

    #[test]
    fn flags_override_the_scenario_which_overrides_defaults() {
        let c = config(&["--scenario", "pool-10", "--pool", "3"]).unwrap();
        assert_eq!(c.settings.pool, 3, "the flag wins");
        assert_eq!(c.settings.workers, 10, "the scenario's value");
        assert_eq!(c.settings.body_size, 64 * 1024, "the default");
        let c = config(&["--scenario", "leak", "--no-keepalive", "--workers", "2"]).unwrap();
        assert_eq!(c.settings.body, BodyMode::Hold);
        assert_eq!(c.settings.idle_timeout, Duration::from_secs(1));
        assert!(!c.settings.keepalive);
        assert_eq!(c.settings.workers, 2);
        // A flag equal to its default still wins over the scenario when given.
        let c = config(&["--scenario", "undrained", "--body", "drain"]).unwrap();
        assert_eq!(c.settings.body, BodyMode::Drain);
        assert_eq!(
            c.scenario.as_ref().map(|s| s.name.as_str()),
            Some("undrained")
        );
    }

    #[test]
    fn scenario_files_set_run_values_too() {
        let path = std::env::temp_dir().join(format!("sockscope-cli-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "description = \"d\"\nwatch = \"w\"\n[run]\nduration = \"3s\"\ninterval = \"50ms\"\n[settings]\nworkers = 4\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = config(&["--scenario", p]).unwrap();
        assert_eq!(c.duration, Some(Duration::from_secs(3)));
        assert_eq!(c.interval, Duration::from_millis(50));
        assert_eq!(c.settings.workers, 4);
        let c = config(&["--scenario", p, "--duration", "1s", "--interval", "100ms"]).unwrap();
        assert_eq!(c.duration, Some(Duration::from_secs(1)));
        assert_eq!(c.interval, Duration::from_millis(100));
        let c = config(&["--scenario", "port-exhaustion"]).unwrap();
        assert_eq!(c.local_ports, Some((41000, 41019)));
        let c = config(&[
            "--scenario",
            "port-exhaustion",
            "--local-ports",
            "42000-42001",
        ])
        .unwrap();
        assert_eq!(c.local_ports, Some((42000, 42001)));
        std::fs::write(&path, "description = \"d\"\n[run]\nbackend = \"procfs\"\n").unwrap();
        assert_eq!(config(&["--scenario", p]).unwrap().backend, Backend::Procfs);
        assert_eq!(
            config(&["--scenario", p, "--backend", "netlink"])
                .unwrap()
                .backend,
            Backend::Netlink
        );
        std::fs::write(&path, "description = \"d\"\n[settings]\nworkers = 0\n").unwrap();
        let e = config(&["--scenario", p]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{p}:3: ")), "{e}");
        let _ = std::fs::remove_file(&path);
        let e = config(&["--scenario", "nope"]).unwrap_err().to_string();
        assert!(e.contains("--list-scenarios"), "{e}");
    }

    #[test]
    fn target_replaces_the_server_and_sets_the_port() {
        let c = config(&["--target", "http://127.0.0.1:9999/x"]).unwrap();
        assert!(!c.server && c.client);
        assert_eq!(c.port, 9999);
        assert_eq!(c.target.as_ref().map(|t| t.path()), Some("/x"));
        let c = config(&["--target", "http://localhost/", "--port", "1234"]).unwrap();
        assert_eq!(c.port, 1234);
        let e = config(&["--target", "https://example.com/"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://"), "{e}");
        let e = config(&["--target", "not a url"]).unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn port_ranges() {
        let c = config(&["--local-ports", "40000-40019"]).unwrap();
        assert_eq!(c.local_ports, Some((40000, 40019)));
        for bad in ["40000", "9-1", "0-10", "a-b", "1-70000"] {
            let e = config(&["--local-ports", bad]).unwrap_err().to_string();
            assert!(e.contains("is not a port range"), "{bad}: {e}");
        }
    }

    #[test]
    fn list_scenarios_prints_every_preset() {
        let text = parse(["sockscope", "--list-scenarios"])
            .unwrap()
            .unwrap_err();
        for (name, _) in crate::scenario::PRESETS {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name}: {text}");
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
