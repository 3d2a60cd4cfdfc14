//! Every backend, and `ss` when it is installed, reports the same per-side counts for a
//! quiescent population of loopback sockets that the test builds and holds.

#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use sockscope::sockets::{Backend, Classified, SocketRow, TcpState, classify, open};

/// Sockets kept open while the backends are compared; TIME_WAITs live on in the kernel.
struct Population {
    port: u16,
    /// 1, or 2 where the host has IPv6.
    families: u32,
    _held: Vec<TcpStream>,
    _listeners: Vec<TcpListener>,
}

/// Listeners on 127.0.0.1:P and, where the host has IPv6, [::1]:P, on a port P that no
/// other socket uses. Holding the number on both loopbacks keeps other programs' binds to
/// port 0 off it, and a port where an earlier listener's connections still linger
/// (TIME_WAIT lasts 60 s on a busy host) is passed over.
fn listeners() -> Vec<TcpListener> {
    let (mut source, _) = open(Backend::Netlink).unwrap();
    let mut rows = Vec::new();
    for _ in 0..50 {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        let mut held = vec![v4];
        match TcpListener::bind(("::1", port)) {
            Ok(v6) => held.push(v6),
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(_) => eprintln!("IPv6 skipped: ::1 is not available on this host"),
        }
        source.snapshot(port, &mut rows).unwrap();
        if rows.len() == held.len() {
            return held;
        }
    }
    panic!("no port without other sockets in 50 tries");
}

fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Reads until the peer's FIN (EOF).
fn await_eof(mut s: &TcpStream) {
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
}

/// On each listener: 3 ESTABLISHED pairs, 2 client-side TIME_WAIT (client closed first),
/// 1 server-side TIME_WAIT, and a pair whose server half-closed: its client sits in
/// CLOSE_WAIT, never closing, and the server in FIN_WAIT2.
fn build() -> Population {
    let listeners = listeners();
    let port = listeners[0].local_addr().unwrap().port();
    let mut held = Vec::new();
    for listener in &listeners {
        build_on(listener, &mut held);
    }
    Population {
        port,
        families: listeners.len() as u32,
        _held: held,
        _listeners: listeners,
    }
}

fn build_on(listener: &TcpListener, held: &mut Vec<TcpStream>) {
    for _ in 0..3 {
        let (c, s) = pair(listener);
        held.extend([c, s]);
    }
    for _ in 0..2 {
        let (c, s) = pair(listener);
        drop(c);
        await_eof(&s);
    }
    let (c, s) = pair(listener);
    drop(s);
    await_eof(&c);
    drop(c);
    let (c, s) = pair(listener);
    s.shutdown(Shutdown::Write).unwrap();
    await_eof(&c);
    held.extend([c, s]);
}

fn expected(families: u32) -> Classified {
    let mut want = Classified {
        listen: families,
        ..Classified::default()
    };
    want.client.established = 3 * families;
    want.client.time_wait = 2 * families;
    want.client.close_wait = families;
    want.server.established = 3 * families;
    want.server.time_wait = families;
    want.server.fin_wait2 = families;
    want
}

fn counts(backend: Backend, port: u16) -> Classified {
    let (mut source, notice) = open(backend).unwrap();
    assert_eq!(notice, None);
    let mut rows = Vec::new();
    source.snapshot(port, &mut rows).unwrap();
    classify(&rows, port)
}

/// ss's state names (`ss -tan`), mapped to the kernel's.
fn ss_state(name: &str) -> Option<TcpState> {
    Some(match name {
        "ESTAB" => TcpState::Established,
        "SYN-SENT" => TcpState::SynSent,
        "SYN-RECV" => TcpState::SynRecv,
        "FIN-WAIT-1" => TcpState::FinWait1,
        "FIN-WAIT-2" => TcpState::FinWait2,
        "TIME-WAIT" => TcpState::TimeWait,
        "UNCONN" | "CLOSE" => TcpState::Close,
        "CLOSE-WAIT" => TcpState::CloseWait,
        "LAST-ACK" => TcpState::LastAck,
        "LISTEN" => TcpState::Listen,
        "CLOSING" => TcpState::Closing,
        _ => return None,
    })
}

/// The port of an `ss -n` address column (`127.0.0.1:80`, `[::1]:80`, `*:80`, `0.0.0.0:*`).
fn ss_port(addr: &str) -> u16 {
    let (_, port) = addr.rsplit_once(':').expect("address:port");
    if port == "*" {
        0
    } else {
        port.parse().expect("port")
    }
}

/// `ss -tanH` with the kernel filter, classified like the backends; `None` without ss.
fn ss_counts(port: u16) -> Option<Classified> {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = match Command::new("ss").args(["-tanH", &filter]).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run ss: {e}"),
    };
    assert!(out.status.success(), "ss failed: {out:?}");
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let rows: Vec<SocketRow> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert!(cols.len() >= 5, "unexpected ss line: {line}");
            SocketRow {
                local: SocketAddr::new(any, ss_port(cols[3])),
                remote: SocketAddr::new(any, ss_port(cols[4])),
                state: ss_state(cols[0]).unwrap_or_else(|| panic!("ss state in: {line}")),
            }
        })
        .collect();
    Some(classify(&rows, port))
}

/// How many reads procfs gets to come out exact while the host churns other sockets.
const PROCFS_READS: usize = 30;

#[test]
fn backends_and_ss_agree_over_ipv4_and_ipv6() {
    let population = build();
    let port = population.port;
    let want = expected(population.families);
    // The last FINs and ACKs are processed in microseconds on loopback; the deadline only
    // bounds a broken run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts(Backend::Netlink, port) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for backend in [Backend::Netlink, Backend::Netstat2] {
        assert_eq!(counts(backend, port), want, "{backend}");
    }
    // procfs gets a few reads: /proc/net/tcp comes a page per read() and the kernel finds
    // its place again between reads, so sockets that other programs on the host open and
    // close meanwhile can make it skip or repeat one of ours (DESIGN: off by up to 20 under
    // churn). netlink's filtered dump of a few sockets fits one read and gets no retry.
    let mut procfs = counts(Backend::Procfs, port);
    for _ in 1..PROCFS_READS {
        if procfs == want {
            break;
        }
        // Let a burst of other programs' churn (TIME_WAITs expiring by thousands) pass.
        std::thread::sleep(std::time::Duration::from_millis(20));
        procfs = counts(Backend::Procfs, port);
    }
    assert_eq!(procfs, want, "procfs, {PROCFS_READS} reads");
    match ss_counts(port) {
        Some(ss) => assert_eq!(ss, want, "ss"),
        None => eprintln!("ss is not installed: compared the backends only"),
    }
}

#[test]
fn ss_lines_parse() {
    assert_eq!(ss_port("[::ffff:127.0.0.1]:8080"), 8080);
    assert_eq!(ss_port("0.0.0.0:*"), 0);
    assert_eq!(ss_port("[fe80::1]%lo:443"), 443);
    assert_eq!(ss_state("TIME-WAIT"), Some(TcpState::TimeWait));
}
