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
    _held: Vec<TcpStream>,
    _listener: TcpListener,
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

/// 3 ESTABLISHED pairs, 2 client-side TIME_WAIT (client closed first), 1 server-side
/// TIME_WAIT, and a pair whose server half-closed: its client sits in CLOSE_WAIT, never
/// closing, and the server in FIN_WAIT2. `None` if `ip` cannot be bound.
fn build(ip: IpAddr) -> Option<Population> {
    let listener = TcpListener::bind((ip, 0)).ok()?;
    let port = listener.local_addr().unwrap().port();
    let mut held = Vec::new();
    for _ in 0..3 {
        let (c, s) = pair(&listener);
        held.extend([c, s]);
    }
    for _ in 0..2 {
        let (c, s) = pair(&listener);
        drop(c);
        await_eof(&s);
    }
    let (c, s) = pair(&listener);
    drop(s);
    await_eof(&c);
    drop(c);
    let (c, s) = pair(&listener);
    s.shutdown(Shutdown::Write).unwrap();
    await_eof(&c);
    held.extend([c, s]);
    Some(Population {
        port,
        _held: held,
        _listener: listener,
    })
}

fn expected() -> Classified {
    let mut want = Classified {
        listen: 1,
        ..Classified::default()
    };
    want.client.established = 3;
    want.client.time_wait = 2;
    want.client.close_wait = 1;
    want.server.established = 3;
    want.server.time_wait = 1;
    want.server.fin_wait2 = 1;
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

fn agree(ip: &str) -> Option<()> {
    let population = build(ip.parse().unwrap())?;
    let port = population.port;
    let want = expected();
    // The last FINs and ACKs are processed in microseconds on loopback; the deadline only
    // bounds a broken run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts(Backend::Netlink, port) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for backend in [Backend::Netlink, Backend::Procfs, Backend::Netstat2] {
        assert_eq!(counts(backend, port), want, "{backend} on {ip}");
    }
    match ss_counts(port) {
        Some(ss) => assert_eq!(ss, want, "ss on {ip}"),
        None => eprintln!("ss is not installed: compared the backends only"),
    }
    Some(())
}

#[test]
fn backends_and_ss_agree_over_ipv4() {
    agree("127.0.0.1").expect("bind 127.0.0.1");
}

#[test]
fn backends_and_ss_agree_over_ipv6() {
    if agree("::1").is_none() {
        eprintln!("skipped: ::1 is not available on this host");
    }
}

#[test]
fn ss_lines_parse() {
    assert_eq!(ss_port("[::ffff:127.0.0.1]:8080"), 8080);
    assert_eq!(ss_port("0.0.0.0:*"), 0);
    assert_eq!(ss_port("[fe80::1]%lo:443"), 443);
    assert_eq!(ss_state("TIME-WAIT"), Some(TcpState::TimeWait));
}
