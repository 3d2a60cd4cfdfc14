//! The kernel's TCP socket table: one row type, one trait for the backends that read it,
//! and a pure `classify` that turns rows into per-side state counts.

pub mod fake;
#[cfg(target_os = "linux")]
pub mod netlink;
pub mod netstat2;
#[cfg(target_os = "linux")]
pub mod procfs;

use std::net::SocketAddr;

use serde::Serialize;

/// A TCP state as the kernel names it (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    /// Every state but LISTEN, in the kernel's order: the keys of [`StateCounts`].
    pub const CONNECTION_STATES: [TcpState; 10] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Closing,
    ];

    /// Maps the kernel's numeric state (`/proc/net/tcp` column `st`, `inet_diag_msg.idiag_state`).
    /// NEW_SYN_RECV (12), the kernel's request-socket state, is reported as SYN_RECV, as `ss` does.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// The lower-case key used in JSON output (`time_wait`).
    pub fn key(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::Listen => "listen",
            TcpState::Closing => "closing",
        }
    }

    /// The upper-case name `ss` and `netstat` print (`TIME_WAIT`).
    pub fn label(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }
}

/// One socket of the table, as every backend reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
}

/// A failure to read the socket table. It is reported, never turned into an empty table.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct SocketError {
    pub backend: &'static str,
    pub message: String,
}

/// A way to read the TCP socket table. Implementations keep whatever state makes the next
/// read cheap (an open netlink socket, a buffer) and may filter on `port` early, but must
/// return every socket whose local or remote port is `port`, in any state.
pub trait SocketSource: Send {
    /// Short name shown in the header and in samples (`procfs`, `netlink`, ...).
    fn name(&self) -> &'static str;

    /// Replaces `out` with the current sockets that involve `port`; `out` is reused across
    /// calls so that polling does not allocate.
    fn snapshot(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<(), SocketError>;
}

/// Which way to read the socket table (`--backend`; `backend = "netlink"` in a scenario).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// netlink on Linux, falling back to procfs with a notice; netstat2 elsewhere.
    #[default]
    Auto,
    /// sock_diag with the kernel-side port filter, as `ss` does (Linux).
    Netlink,
    /// /proc/net/tcp and tcp6: slower, and not one consistent snapshot (Linux).
    Procfs,
    /// The netstat2 crate: portable, unfiltered.
    Netstat2,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Netlink => "netlink",
            Backend::Procfs => "procfs",
            Backend::Netstat2 => "netstat2",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Opens `backend`. The `String` is a notice to show the user when `Auto` had to fall back
/// to a slower or less exact backend than the platform's best.
pub fn open(backend: Backend) -> Result<(Box<dyn SocketSource>, Option<String>), SocketError> {
    match backend {
        Backend::Auto => Ok(open_auto()),
        Backend::Netstat2 => Ok((Box::new(self::netstat2::Netstat2Source::new()), None)),
        #[cfg(target_os = "linux")]
        Backend::Netlink => Ok((Box::new(netlink::NetlinkSource::new()?), None)),
        #[cfg(target_os = "linux")]
        Backend::Procfs => Ok((Box::new(procfs::ProcfsSource::new()), None)),
        #[cfg(not(target_os = "linux"))]
        Backend::Netlink | Backend::Procfs => Err(SocketError {
            backend: backend.name(),
            message: "only available on Linux; use --backend netstat2".into(),
        }),
    }
}

#[cfg(target_os = "linux")]
fn open_auto() -> (Box<dyn SocketSource>, Option<String>) {
    // One real dump proves the kernel answers (a sandbox may allow the socket and refuse
    // the request); port 0 matches little more than the listeners.
    let probe = netlink::NetlinkSource::new().and_then(|mut source| {
        source.snapshot(0, &mut Vec::new())?;
        Ok(source)
    });
    auto_from(probe)
}

#[cfg(target_os = "linux")]
fn auto_from(
    probe: Result<netlink::NetlinkSource, SocketError>,
) -> (Box<dyn SocketSource>, Option<String>) {
    match probe {
        Ok(source) => (Box::new(source), None),
        Err(e) => (
            Box::new(procfs::ProcfsSource::new()),
            Some(format!(
                "netlink sock_diag unavailable ({}): using procfs, slower and not a consistent snapshot",
                e.message
            )),
        ),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_auto() -> (Box<dyn SocketSource>, Option<String>) {
    (Box::new(self::netstat2::Netstat2Source::new()), None)
}

/// Test support: listening sockets on a port of the tests' own.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::ErrorKind;
    use std::net::TcpListener;

    use super::{Backend, open};

    /// Listeners on 127.0.0.1:P and, where the host has IPv6, [::1]:P, on a port P that no
    /// other socket uses. Holding the number on both loopbacks keeps a test of the other
    /// family off it (a bind to port 0 may hand the same number out per address), and a
    /// port where an earlier listener's connections still linger (TIME_WAIT lasts 60 s on
    /// a busy host) is passed over.
    pub(crate) fn listeners() -> (TcpListener, Option<TcpListener>) {
        let (mut source, _) = open(Backend::Auto).unwrap();
        let mut rows = Vec::new();
        for _ in 0..50 {
            let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = v4.local_addr().unwrap().port();
            let v6 = match TcpListener::bind(("::1", port)) {
                Ok(l) => Some(l),
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                // No IPv6 loopback on this host.
                Err(_) => None,
            };
            source.snapshot(port, &mut rows).unwrap();
            if rows.len() == 1 + usize::from(v6.is_some()) {
                return (v4, v6);
            }
        }
        panic!("no port without other sockets in 50 tries");
    }
}

/// Count of sockets per connection state on one side of the port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub established: u32,
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub fin_wait1: u32,
    pub fin_wait2: u32,
    pub time_wait: u32,
    pub close: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub closing: u32,
}

impl StateCounts {
    fn slot(&mut self, state: TcpState) -> Option<&mut u32> {
        Some(match state {
            TcpState::Established => &mut self.established,
            TcpState::SynSent => &mut self.syn_sent,
            TcpState::SynRecv => &mut self.syn_recv,
            TcpState::FinWait1 => &mut self.fin_wait1,
            TcpState::FinWait2 => &mut self.fin_wait2,
            TcpState::TimeWait => &mut self.time_wait,
            TcpState::Close => &mut self.close,
            TcpState::CloseWait => &mut self.close_wait,
            TcpState::LastAck => &mut self.last_ack,
            TcpState::Closing => &mut self.closing,
            TcpState::Listen => return None,
        })
    }

    /// The count for `state`; LISTEN is not a connection state and is always 0 here.
    pub fn get(&self, state: TcpState) -> u32 {
        // A copy lets one `match` (in `slot`) serve both reading and counting.
        let mut copy = *self;
        copy.slot(state).map_or(0, |n| *n)
    }

    /// Sum over every state.
    pub fn total(&self) -> u32 {
        TcpState::CONNECTION_STATES
            .iter()
            .map(|s| self.get(*s))
            .sum()
    }
}

/// The socket table around one port, split by side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Classified {
    /// Sockets whose remote port is the port: the connecting side.
    pub client: StateCounts,
    /// Sockets whose local port is the port, LISTEN excluded: the accepting side.
    pub server: StateCounts,
    /// Listening sockets on the port (one per bound address).
    pub listen: u32,
}

/// Splits `rows` into client side (remote port == `port`) and server side (local port ==
/// `port`). A socket connected from the port to itself counts on both sides, as `ss` would
/// list it under both filters. Rows that do not involve the port are ignored.
pub fn classify(rows: &[SocketRow], port: u16) -> Classified {
    let mut out = Classified::default();
    for row in rows {
        if row.state == TcpState::Listen {
            if row.local.port() == port {
                out.listen += 1;
            }
            continue;
        }
        if row.local.port() == port
            && let Some(n) = out.server.slot(row.state)
        {
            *n += 1;
        }
        if row.remote.port() == port
            && let Some(n) = out.client.slot(row.state)
        {
            *n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(local: &str, remote: &str, state: TcpState) -> SocketRow {
        SocketRow {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
        }
    }

    #[test]
    fn every_state_is_counted_on_its_side_for_v4_and_v6() {
        let mut rows = Vec::new();
        for (i, state) in TcpState::CONNECTION_STATES.iter().enumerate() {
            // i+1 client-side rows over IPv4 and i+1 server-side rows over IPv6.
            for j in 0..=i {
                let eph = 40000 + (i * 16 + j) as u16;
                rows.push(row(&format!("127.0.0.1:{eph}"), "127.0.0.1:8080", *state));
                rows.push(row("[::1]:8080", &format!("[::1]:{eph}"), *state));
            }
        }
        let c = classify(&rows, 8080);
        for (i, state) in TcpState::CONNECTION_STATES.iter().enumerate() {
            assert_eq!(c.client.get(*state), i as u32 + 1, "client {state:?}");
            assert_eq!(c.server.get(*state), i as u32 + 1, "server {state:?}");
        }
        assert_eq!(c.listen, 0);
        assert_eq!(c.client.total(), 55);
    }

    #[test]
    fn listen_is_apart_and_other_ports_are_ignored() {
        let rows = [
            row("127.0.0.1:8080", "0.0.0.0:0", TcpState::Listen),
            row("[::1]:8080", "[::]:0", TcpState::Listen),
            row("127.0.0.1:9090", "0.0.0.0:0", TcpState::Listen),
            row("127.0.0.1:5000", "127.0.0.1:9090", TcpState::TimeWait),
            row("10.0.0.1:5000", "93.184.216.34:8080", TcpState::Established),
            row("127.0.0.1:8081", "127.0.0.1:18080", TcpState::Established),
        ];
        let c = classify(&rows, 8080);
        assert_eq!(c.listen, 2);
        assert_eq!(c.server.total(), 0);
        // A connection to any host's port 8080 is client side, as `ss '( dport = :8080 )'` says.
        assert_eq!(c.client.established, 1);
        assert_eq!(c.client.total(), 1);
    }

    #[test]
    fn self_connection_counts_on_both_sides() {
        let rows = [row(
            "127.0.0.1:8080",
            "127.0.0.1:8080",
            TcpState::Established,
        )];
        let c = classify(&rows, 8080);
        assert_eq!(c.client.established, 1);
        assert_eq!(c.server.established, 1);
    }

    #[test]
    fn kernel_state_numbers_map_like_ss() {
        assert_eq!(TcpState::from_kernel(1), Some(TcpState::Established));
        assert_eq!(TcpState::from_kernel(6), Some(TcpState::TimeWait));
        assert_eq!(TcpState::from_kernel(8), Some(TcpState::CloseWait));
        assert_eq!(TcpState::from_kernel(10), Some(TcpState::Listen));
        assert_eq!(TcpState::from_kernel(12), Some(TcpState::SynRecv));
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(13), None);
        for s in TcpState::CONNECTION_STATES {
            assert_eq!(s.key(), s.label().to_lowercase());
        }
    }

    #[test]
    fn backends_open_by_name() {
        use clap::ValueEnum;
        let names: Vec<String> = Backend::value_variants()
            .iter()
            .map(|b| b.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(names, ["auto", "netlink", "procfs", "netstat2"]);
        let json: Vec<Backend> = serde_json::from_str(r#"["auto","netstat2"]"#).unwrap();
        assert_eq!(json, [Backend::Auto, Backend::Netstat2]);
        assert_eq!(serde_json::to_value(Backend::Netlink).unwrap(), "netlink");
        for b in Backend::value_variants() {
            assert_eq!(b.to_possible_value().unwrap().get_name(), b.name());
            let linux_only = matches!(b, Backend::Netlink | Backend::Procfs);
            if cfg!(not(target_os = "linux")) && linux_only {
                assert!(open(*b).is_err(), "{b}");
                continue;
            }
            let (source, notice) = open(*b).unwrap();
            assert_eq!(notice, None, "{b}");
            let auto = if cfg!(target_os = "linux") {
                "netlink"
            } else {
                "netstat2"
            };
            let want = if *b == Backend::Auto { auto } else { b.name() };
            assert_eq!(source.name(), want);
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn auto_falls_back_to_procfs_with_a_notice() {
        let (source, notice) = auto_from(Err(SocketError {
            backend: "netlink",
            message: "cannot open a NETLINK_SOCK_DIAG socket: Operation not permitted".into(),
        }));
        assert_eq!(source.name(), "procfs");
        assert_eq!(
            notice.as_deref(),
            Some(
                "netlink sock_diag unavailable (cannot open a NETLINK_SOCK_DIAG socket: \
                 Operation not permitted): using procfs, slower and not a consistent snapshot"
            )
        );
    }

    #[test]
    fn counts_serialize_with_lower_case_state_keys() {
        let mut c = StateCounts::default();
        *c.slot(TcpState::TimeWait).unwrap() = 3;
        let v = serde_json::to_value(c).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want: Vec<&str> = TcpState::CONNECTION_STATES
            .iter()
            .map(|s| s.key())
            .collect();
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["time_wait"], 3);
    }
}
