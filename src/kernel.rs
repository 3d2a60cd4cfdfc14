//! System-wide TCP counters from `/proc/net/snmp` and `/proc/net/netstat` that explain a
//! picture: opens on each side, resets sent, sockets closed with unread data, TIME_WAITs
//! recycled. They count the whole network namespace, not only the watched port.

use std::fs;

use serde::Serialize;

/// The counters sockscope shows, as totals or as deltas between two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounters {
    /// Tcp ActiveOpens: connects started (client side).
    pub active_opens: u64,
    /// Tcp PassiveOpens: connections accepted by a listener (server side).
    pub passive_opens: u64,
    /// Tcp OutRsts: segments sent with RST.
    pub out_rsts: u64,
    /// Tcp EstabResets: established connections reset.
    pub estab_resets: u64,
    /// TcpExt TCPAbortOnClose: sockets closed with unread data (sent RST, no TIME_WAIT).
    pub tcp_abort_on_close: u64,
    /// TcpExt TWRecycled: TIME_WAIT sockets reused for a new connect.
    pub tw_recycled: u64,
}

impl KernelCounters {
    /// Reads the current totals; `None` where the files are missing (not Linux).
    pub fn read() -> Option<KernelCounters> {
        let snmp = fs::read_to_string("/proc/net/snmp").ok()?;
        // netstat's TcpExt is extra detail: missing, its counters stay 0.
        let netstat = fs::read_to_string("/proc/net/netstat").unwrap_or_default();
        Some(KernelCounters::parse(&snmp, &netstat))
    }

    /// Parses the two files' "Prefix: names" / "Prefix: values" line pairs.
    pub fn parse(snmp: &str, netstat: &str) -> KernelCounters {
        let mut c = KernelCounters::default();
        for text in [snmp, netstat] {
            let mut lines = text.lines();
            while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
                let (Some((prefix, names)), Some((_, values))) =
                    (names.split_once(':'), values.split_once(':'))
                else {
                    continue;
                };
                for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                    let Ok(v) = value.parse::<u64>() else {
                        continue;
                    };
                    match (prefix, name) {
                        ("Tcp", "ActiveOpens") => c.active_opens = v,
                        ("Tcp", "PassiveOpens") => c.passive_opens = v,
                        ("Tcp", "OutRsts") => c.out_rsts = v,
                        ("Tcp", "EstabResets") => c.estab_resets = v,
                        ("TcpExt", "TCPAbortOnClose") => c.tcp_abort_on_close = v,
                        ("TcpExt", "TWRecycled") => c.tw_recycled = v,
                        _ => {}
                    }
                }
            }
        }
        c
    }

    /// `self - earlier`, saturating.
    pub fn since(&self, earlier: &KernelCounters) -> KernelCounters {
        KernelCounters {
            active_opens: self.active_opens.saturating_sub(earlier.active_opens),
            passive_opens: self.passive_opens.saturating_sub(earlier.passive_opens),
            out_rsts: self.out_rsts.saturating_sub(earlier.out_rsts),
            estab_resets: self.estab_resets.saturating_sub(earlier.estab_resets),
            tcp_abort_on_close: self
                .tcp_abort_on_close
                .saturating_sub(earlier.tcp_abort_on_close),
            tw_recycled: self.tw_recycled.saturating_sub(earlier.tw_recycled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snmp_and_netstat_pairs() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
            Tcp: 1 200 120000 -1 1234 567 8 9 10 11 12 13 14 15 16\n";
        let netstat = "TcpExt: SyncookiesSent TWRecycled TCPAbortOnClose\nTcpExt: 0 42 7\n\
            IpExt: InNoRoutes\nIpExt: 0\n";
        let c = KernelCounters::parse(snmp, netstat);
        assert_eq!(
            c,
            KernelCounters {
                active_opens: 1234,
                passive_opens: 567,
                out_rsts: 15,
                estab_resets: 9,
                tcp_abort_on_close: 7,
                tw_recycled: 42,
            }
        );
        let later = KernelCounters {
            active_opens: 1240,
            ..c
        };
        assert_eq!(later.since(&c).active_opens, 6);
        assert_eq!(c.since(&later).active_opens, 0);
    }

    #[test]
    fn reads_this_host() {
        // Every Linux host has /proc/net/snmp; the counters only grow.
        let a = KernelCounters::read().expect("/proc/net/snmp");
        let _conn = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| std::net::TcpStream::connect(l.local_addr()?));
        let b = KernelCounters::read().expect("/proc/net/snmp");
        assert!(b.active_opens > a.active_opens, "{a:?} -> {b:?}");
    }
}
