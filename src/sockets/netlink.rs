//! netlink sock_diag (`SOCK_DIAG_BY_FAMILY`), the way `ss` reads the table: one dump per
//! address family with a bytecode filter, so the kernel itself keeps only the sockets whose
//! source or destination port is the watched one and sends nothing else. Each dump is one
//! walk of the kernel's hash tables, far cheaper than formatting `/proc/net/tcp` as text.
//!
//! The messages are small fixed layouts from `linux/netlink.h`, `linux/sock_diag.h` and
//! `linux/inet_diag.h`; they are written out by hand (native byte order, as the kernel
//! expects) and their bytes are unit-tested against what `ss` sends.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{SocketError, SocketRow, SocketSource, TcpState};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_COND: u8 = 7;
const INET_DIAG_BC_D_COND: u8 = 8;
/// States 0..11, exactly what `ss -a` asks for. The kernel adds NEW_SYN_RECV (12, request
/// sockets of a handshake in progress) by itself when SYN_RECV is asked. Not `u32::MAX`:
/// bit 13 is TCP_BOUND_INACTIVE (Linux 6.7+), which makes every dump also walk the whole
/// bind hash for bound-but-idle sockets: measured here, a poll cost several times more.
const ALL_STATES: u32 = 0xfff;

/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte socket id,
/// left all zero: a dump then selects nothing by it (non-zero ports there would be ANDed).
const REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg`, the fixed part of each reply.
const DIAG_MSG_LEN: usize = 72;
/// Bytecode for `sport == P || dport == P`: two 16-byte conditions and a 4-byte jump.
const FILTER_LEN: usize = 36;
/// The whole request: header, `inet_diag_req_v2`, one attribute holding the filter.
pub(crate) const REQUEST_LEN: usize = NLMSG_HDRLEN + REQ_V2_LEN + 4 + FILTER_LEN;

/// The kernel puts one dump part of at most 32 KiB in each read (`netlink_recvmsg` caps its
/// allocation size there), so a larger buffer would not mean fewer reads; twice that leaves
/// room for kernels with bigger pages.
const RECV_BUF: usize = 64 * 1024;
/// A dump the kernel marks inconsistent (`NLM_F_DUMP_INTR`) is taken again, this many times.
const MAX_RETRIES: usize = 3;
/// A kernel that never answers must not hang the sampler: a read waits this long at most.
const RECV_TIMEOUT_S: u64 = 5;

/// One inet_diag condition, `ss`'s layout: op (code, yes, no), then `inet_diag_hostcond`
/// (family AF_UNSPEC and prefix length 0, i.e. any address; port as a host-order int), then
/// 4 address bytes that a 0-bit prefix never reads. `yes` steps to the next op; `no` skips
/// 4 bytes further.
fn port_cond(code: u8, port: u16) -> [u8; 16] {
    let mut op = [0u8; 16];
    op[0] = code;
    op[1] = 16;
    op[2..4].copy_from_slice(&20u16.to_ne_bytes());
    op[8..12].copy_from_slice(&i32::from(port).to_ne_bytes());
    op
}

/// `sport == port || dport == port` as the kernel's `inet_diag_bc_run` reads it: a socket
/// is kept when the program steps exactly to its end, dropped when it steps past it.
/// S_COND true -> the JMP, whose `no` (a JMP is always false) lands on the end: keep.
/// S_COND false -> D_COND; true lands on the end (keep), false 4 bytes past it (drop).
pub(crate) fn port_filter(port: u16) -> [u8; FILTER_LEN] {
    let mut bc = [0u8; FILTER_LEN];
    bc[0..16].copy_from_slice(&port_cond(INET_DIAG_BC_S_COND, port));
    bc[16] = INET_DIAG_BC_JMP;
    bc[17] = 4;
    bc[18..20].copy_from_slice(&20u16.to_ne_bytes());
    bc[20..36].copy_from_slice(&port_cond(INET_DIAG_BC_D_COND, port));
    bc
}

/// A dump request for TCP sockets of `family` (AF_INET or AF_INET6) in any state whose
/// source or destination port is `port`.
pub(crate) fn request(family: u8, seq: u32, port: u16) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in the sender.
    let r = NLMSG_HDRLEN;
    m[r] = family;
    m[r + 1] = libc::IPPROTO_TCP as u8;
    m[r + 4..r + 8].copy_from_slice(&ALL_STATES.to_ne_bytes());
    let a = r + REQ_V2_LEN;
    m[a..a + 2].copy_from_slice(&((4 + FILTER_LEN) as u16).to_ne_bytes());
    m[a + 2..a + 4].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    m[a + 4..].copy_from_slice(&port_filter(port));
    m
}

/// What one read's worth of messages said about the dump.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// NLMSG_DONE arrived: the dump is complete.
    pub done: bool,
    /// Some message carried NLM_F_DUMP_INTR: the tables changed under the dump.
    pub interrupted: bool,
    /// NLMSG_ERROR arrived with this errno: the request was refused, the dump is over.
    pub refused: Option<i32>,
}

/// How a dump ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dump {
    Complete,
    /// The kernel marked it inconsistent: take it again.
    Interrupted,
    /// NLMSG_ERROR with this errno.
    Refused(i32),
}

fn refused(errno: i32) -> SocketError {
    err(format!(
        "the kernel refused the sock_diag request: {}",
        io::Error::from_raw_os_error(errno)
    ))
}

fn err(message: String) -> SocketError {
    SocketError {
        backend: "netlink",
        message,
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses the messages of one read into `out`. Messages of another sequence number are
/// leftovers of an earlier request and are skipped. An NLMSG_ERROR (or a failed NLMSG_DONE)
/// is an error, never an empty table.
pub(crate) fn parse_chunk(
    buf: &[u8],
    seq: u32,
    out: &mut Vec<SocketRow>,
) -> Result<Chunk, SocketError> {
    let mut chunk = Chunk::default();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, off) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err(err(format!(
                "malformed reply: message of {len} bytes at offset {off} of {}",
                buf.len()
            )));
        }
        let kind = u16_at(buf, off + 4);
        let flags = u16_at(buf, off + 6);
        let msg_seq = u32_at(buf, off + 8);
        let payload = &buf[off + NLMSG_HDRLEN..off + len];
        // Messages are padded to 4 bytes.
        off += (len + 3) & !3;
        if msg_seq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            chunk.interrupted = true;
        }
        match kind {
            NLMSG_DONE => {
                // The dump's own status; negative when it failed part-way.
                if payload.len() >= 4 {
                    let status = u32_at(payload, 0) as i32;
                    if status < 0 {
                        return Err(err(format!(
                            "dump failed: {}",
                            io::Error::from_raw_os_error(-status)
                        )));
                    }
                }
                chunk.done = true;
                return Ok(chunk);
            }
            NLMSG_ERROR => {
                // errno 0 would be an acknowledgement, which a dump never asks for: an
                // error all the same, never a table.
                let errno = if payload.len() >= 4 {
                    (u32_at(payload, 0) as i32).saturating_neg()
                } else {
                    0
                };
                chunk.refused = Some(errno);
                return Ok(chunk);
            }
            SOCK_DIAG_BY_FAMILY => {
                if payload.len() < DIAG_MSG_LEN {
                    return Err(err(format!(
                        "malformed reply: inet_diag_msg of {} bytes",
                        payload.len()
                    )));
                }
                if let Some(row) = parse_diag_msg(payload) {
                    out.push(row);
                }
            }
            NLMSG_NOOP => {}
            _ => {}
        }
    }
    Ok(chunk)
}

/// One `inet_diag_msg`; `None` for a state or family this program does not know.
fn parse_diag_msg(p: &[u8]) -> Option<SocketRow> {
    let state = TcpState::from_kernel(p[1])?;
    // inet_diag_sockid at offset 4: ports and addresses in network byte order.
    let sport = u16::from_be_bytes([p[4], p[5]]);
    let dport = u16::from_be_bytes([p[6], p[7]]);
    let addr = |at: usize| -> Option<IpAddr> {
        match i32::from(p[0]) {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                p[at],
                p[at + 1],
                p[at + 2],
                p[at + 3],
            ))),
            libc::AF_INET6 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&p[at..at + 16]);
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        }
    };
    Some(SocketRow {
        local: SocketAddr::new(addr(8)?, sport),
        remote: SocketAddr::new(addr(24)?, dport),
        state,
    })
}

/// The netlink backend: one NETLINK_SOCK_DIAG socket, kept open across polls.
pub struct NetlinkSource {
    /// `None` after a failed dump: whatever the kernel still had queued is dropped with
    /// the old socket, and the next poll opens a fresh one.
    socket: Option<OwnedFd>,
    seq: u32,
    buf: Vec<u8>,
}

fn os_err(what: &str) -> SocketError {
    err(format!("{what}: {}", io::Error::last_os_error()))
}

fn open_socket() -> Result<OwnedFd, SocketError> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(os_err("cannot open a NETLINK_SOCK_DIAG socket"));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    socket2::SockRef::from(&fd)
        .set_read_timeout(Some(std::time::Duration::from_secs(RECV_TIMEOUT_S)))
        .map_err(|e| {
            err(format!(
                "cannot set a read timeout on the netlink socket: {e}"
            ))
        })?;
    Ok(fd)
}

impl NetlinkSource {
    /// Opens the socket; fails where sock_diag is not available (no kernel support, or a
    /// sandbox that forbids netlink).
    pub fn new() -> Result<NetlinkSource, SocketError> {
        Ok(NetlinkSource {
            socket: Some(open_socket()?),
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends `req` (whose sequence number is `self.seq`) and reads the dump into `out`.
    pub(crate) fn dump(
        &mut self,
        req: &[u8],
        out: &mut Vec<SocketRow>,
    ) -> Result<Dump, SocketError> {
        let fd = match &self.socket {
            Some(fd) => fd.as_raw_fd(),
            None => {
                let fd = open_socket()?;
                let raw = fd.as_raw_fd();
                self.socket = Some(fd);
                raw
            }
        };
        loop {
            // SAFETY: `req` is a live buffer of the length passed.
            let n = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
            if n >= 0 {
                if n as usize != req.len() {
                    return Err(err(format!("short send: {n} of {} bytes", req.len())));
                }
                break;
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(os_err("cannot send the dump request"));
            }
        }
        let mut interrupted = false;
        loop {
            // MSG_TRUNC makes recv return the message's real length, so a message larger
            // than the buffer is detected instead of silently cut.
            // SAFETY: `self.buf` is a live buffer of the length passed.
            let n = unsafe {
                libc::recv(
                    fd,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        return Err(err(format!(
                            "no answer from the kernel within {RECV_TIMEOUT_S} s"
                        )));
                    }
                    _ => return Err(err(format!("cannot read the dump: {e}"))),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(err(format!(
                    "a reply of {n} bytes does not fit the {} byte buffer",
                    self.buf.len()
                )));
            }
            if n == 0 {
                return Err(err("the dump ended without NLMSG_DONE".into()));
            }
            let chunk = parse_chunk(&self.buf[..n], self.seq, out)?;
            interrupted |= chunk.interrupted;
            if let Some(errno) = chunk.refused {
                return Ok(Dump::Refused(errno));
            }
            if chunk.done {
                return Ok(if interrupted {
                    Dump::Interrupted
                } else {
                    Dump::Complete
                });
            }
        }
    }

    /// Both families into `out`; `Ok(false)` if either dump was interrupted.
    fn dump_all(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<bool, SocketError> {
        let mut consistent = true;
        for family in [libc::AF_INET, libc::AF_INET6] {
            self.seq = self.seq.wrapping_add(1);
            let req = request(family as u8, self.seq, port);
            match self.dump(&req, out)? {
                Dump::Complete => {}
                Dump::Interrupted => consistent = false,
                // A kernel built without IPv6 has no AF_INET6 handler (ENOENT): it has no
                // IPv6 sockets either, as procfs without /proc/net/tcp6.
                Dump::Refused(libc::ENOENT) if family == libc::AF_INET6 => {}
                Dump::Refused(errno) => return Err(refused(errno)),
            }
        }
        Ok(consistent)
    }
}

impl SocketSource for NetlinkSource {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn snapshot(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<(), SocketError> {
        for _ in 0..=MAX_RETRIES {
            out.clear();
            match self.dump_all(port, out) {
                Ok(true) => return Ok(()),
                Ok(false) => continue,
                Err(e) => {
                    out.clear();
                    self.socket = None;
                    return Err(e);
                }
            }
        }
        out.clear();
        Err(err(format!(
            "the socket table changed under every one of {} dumps (NLM_F_DUMP_INTR)",
            MAX_RETRIES + 1
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::classify;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// The filter `ss -tan '( sport = :8080 or dport = :8080 )'` (iproute2 6.1) sends, as
    /// `strace -e trace=sendmsg -s 4096 -xx` shows it on x86_64.
    const SS_FILTER_8080: [u8; 36] = [
        0x07, 0x10, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x04, 0x14, 0x00, 0x08, 0x10, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0x1f,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    #[cfg(target_endian = "little")]
    fn filter_bytes_are_the_ones_ss_sends() {
        assert_eq!(port_filter(8080), SS_FILTER_8080);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn request_bytes_are_the_ones_ss_sends() {
        let mut want = vec![
            112, 0, 0, 0, // nlmsg_len
            20, 0, // SOCK_DIAG_BY_FAMILY
            0x01, 0x03, // NLM_F_REQUEST | NLM_F_DUMP
            0x40, 0xe2, 0x01, 0x00, // seq 123456, as ss numbers its request
            0, 0, 0, 0, // pid
            2, 6, 0, 0, // AF_INET, IPPROTO_TCP, no extensions, pad
            0xff, 0x0f, 0, 0, // ss -a: states 0..11
        ];
        want.extend([0u8; 48]); // socket id: unused by a dump
        want.extend([40, 0, 1, 0]); // nlattr: 40 bytes, INET_DIAG_REQ_BYTECODE
        want.extend(SS_FILTER_8080);
        assert_eq!(request(libc::AF_INET as u8, 123456, 8080).to_vec(), want);
        let v6 = request(libc::AF_INET6 as u8, 123456, 8080);
        assert_eq!(v6[16], 10);
        assert_eq!(v6[17..], want[17..]);
    }

    fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = Vec::new();
        m.extend((len as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(payload);
        m.resize((len + 3) & !3, 0);
        m
    }

    fn diag_v4(state: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; DIAG_MSG_LEN];
        p[0] = libc::AF_INET as u8;
        p[1] = state;
        p[4..6].copy_from_slice(&sport.to_be_bytes());
        p[6..8].copy_from_slice(&dport.to_be_bytes());
        p[8..12].copy_from_slice(&[127, 0, 0, 1]);
        p[24..28].copy_from_slice(&[127, 0, 0, 2]);
        p
    }

    #[test]
    fn parses_rows_and_skips_other_requests_messages() {
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, 7, &diag_v4(6, 40000, 8080));
        buf.extend(msg(SOCK_DIAG_BY_FAMILY, 2, 6, &diag_v4(1, 1, 2)));
        buf.extend(msg(NLMSG_DONE, 2, 7, &0i32.to_ne_bytes()));
        let mut rows = Vec::new();
        let chunk = parse_chunk(&buf, 7, &mut rows).unwrap();
        assert_eq!(
            chunk,
            Chunk {
                done: true,
                ..Chunk::default()
            }
        );
        assert_eq!(
            rows,
            vec![SocketRow {
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "127.0.0.2:8080".parse().unwrap(),
                state: TcpState::TimeWait,
            }]
        );
    }

    #[test]
    fn errors_and_interruptions_are_reported() {
        let mut rows = Vec::new();
        let intr = msg(
            SOCK_DIAG_BY_FAMILY,
            2 | NLM_F_DUMP_INTR,
            1,
            &diag_v4(1, 1, 2),
        );
        assert!(parse_chunk(&intr, 1, &mut rows).unwrap().interrupted);

        let mut e = (-libc::EINVAL).to_ne_bytes().to_vec();
        e.extend([0u8; 16]); // the offending request's header
        let chunk = parse_chunk(&msg(NLMSG_ERROR, 0, 1, &e), 1, &mut rows).unwrap();
        assert_eq!(chunk.refused, Some(libc::EINVAL));
        assert!(
            refused(libc::EINVAL)
                .to_string()
                .contains("Invalid argument")
        );

        let failed = msg(NLMSG_DONE, 2, 1, &(-libc::ENOBUFS).to_ne_bytes());
        assert!(parse_chunk(&failed, 1, &mut rows).is_err());

        let mut cut = msg(SOCK_DIAG_BY_FAMILY, 2, 1, &diag_v4(1, 1, 2));
        cut.truncate(40);
        assert!(parse_chunk(&cut, 1, &mut rows).is_err());
        let short = msg(SOCK_DIAG_BY_FAMILY, 2, 1, &[0u8; 8]);
        assert!(parse_chunk(&short, 1, &mut rows).is_err());
    }

    /// Polls until `done` says the table settled; loopback FINs take microseconds, the
    /// deadline only bounds a broken run.
    fn snapshot_until(
        src: &mut NetlinkSource,
        port: u16,
        done: impl Fn(&[SocketRow]) -> bool,
    ) -> Vec<SocketRow> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rows = Vec::new();
        loop {
            src.snapshot(port, &mut rows).unwrap();
            if done(&rows) || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// On each loopback (IPv4, and IPv6 where the host has it): a listener, one established
    /// pair and one client-side TIME_WAIT; plus a pair on another port that the filter must
    /// leave out.
    #[test]
    fn sees_listeners_established_pairs_and_time_waits_over_ipv4_and_ipv6() {
        let (v4, v6) = crate::sockets::testing::listeners();
        let port = v4.local_addr().unwrap().port();
        let mut held = Vec::new();
        for listener in std::iter::once(&v4).chain(v6.as_ref()) {
            let addr = listener.local_addr().unwrap();
            held.push(TcpStream::connect(addr).unwrap());
            held.push(listener.accept().unwrap().0);
            let closing = TcpStream::connect(addr).unwrap();
            let (mut closed, _) = listener.accept().unwrap();
            drop(closing);
            // The server sees EOF, then closes: the client closed first, keeps TIME_WAIT.
            assert_eq!(closed.read(&mut [0u8; 1]).unwrap(), 0);
        }
        if v6.is_none() {
            eprintln!("IPv6 part skipped: ::1 is not available on this host");
        }
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        held.push(TcpStream::connect(other.local_addr().unwrap()).unwrap());
        held.push(other.accept().unwrap().0);

        let n = 1 + u32::from(v6.is_some());
        let mut src = NetlinkSource::new().unwrap();
        let rows = snapshot_until(&mut src, port, |rows| {
            classify(rows, port).client.time_wait == n
        });
        let c = classify(&rows, port);
        assert_eq!(c.listen, n, "{rows:?}");
        assert_eq!(c.client.established, n, "{rows:?}");
        assert_eq!(c.server.established, n, "{rows:?}");
        assert_eq!(c.client.time_wait, n, "{rows:?}");
        assert_eq!(c.client.total() + c.server.total(), 3 * n, "{rows:?}");
        // The kernel filtered: nothing but these sockets came back, in both families.
        assert_eq!(rows.len(), 4 * n as usize, "{rows:?}");
        assert!(
            rows.iter()
                .all(|r| r.local.port() == port || r.remote.port() == port)
        );
        if v6.is_some() {
            assert_eq!(rows.iter().filter(|r| r.local.is_ipv6()).count(), 4);
        }
    }

    #[test]
    fn a_refused_request_is_an_error_and_the_socket_stays_usable() {
        let mut src = NetlinkSource::new().unwrap();
        src.seq = 41;
        let mut bad = request(libc::AF_INET as u8, 41, 1);
        // The first condition's "yes" jumps past the end: the kernel's audit says EINVAL.
        bad[NLMSG_HDRLEN + REQ_V2_LEN + 4 + 1] = 200;
        let mut rows = Vec::new();
        assert_eq!(
            src.dump(&bad, &mut rows).unwrap(),
            Dump::Refused(libc::EINVAL)
        );
        assert!(rows.is_empty());

        let (v4, v6) = crate::sockets::testing::listeners();
        let port = v4.local_addr().unwrap().port();
        src.snapshot(port, &mut rows).unwrap();
        assert_eq!(classify(&rows, port).listen, 1 + u32::from(v6.is_some()));
    }
}
