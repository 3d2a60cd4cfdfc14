//! `/proc/net/tcp` and `/proc/net/tcp6` through the `procfs` crate: portable across Linux
//! kernels and needs nothing but procfs, but it formats every socket of the namespace as
//! text and is not one consistent snapshot (DESIGN: 13 ms a poll, off by up to 20 under
//! churn). The netlink backend is the fast, exact one.

use super::{SocketError, SocketRow, SocketSource, TcpState};

#[derive(Debug, Default)]
pub struct ProcfsSource;

impl ProcfsSource {
    pub fn new() -> Self {
        ProcfsSource
    }
}

fn state_of(s: &procfs::net::TcpState) -> TcpState {
    use procfs::net::TcpState as P;
    match s {
        P::Established => TcpState::Established,
        P::SynSent => TcpState::SynSent,
        P::SynRecv | P::NewSynRecv => TcpState::SynRecv,
        P::FinWait1 => TcpState::FinWait1,
        P::FinWait2 => TcpState::FinWait2,
        P::TimeWait => TcpState::TimeWait,
        P::Close => TcpState::Close,
        P::CloseWait => TcpState::CloseWait,
        P::LastAck => TcpState::LastAck,
        P::Listen => TcpState::Listen,
        P::Closing => TcpState::Closing,
    }
}

impl SocketSource for ProcfsSource {
    fn name(&self) -> &'static str {
        "procfs"
    }

    fn snapshot(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<(), SocketError> {
        out.clear();
        let err = |e: procfs::ProcError| SocketError {
            backend: "procfs",
            message: format!("cannot read /proc/net/tcp: {e}"),
        };
        let v4 = procfs::net::tcp().map_err(err)?;
        // A kernel without IPv6 has no tcp6 file: that is an empty table, not an error.
        let v6 = match procfs::net::tcp6() {
            Ok(v) => v,
            Err(procfs::ProcError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(err(e)),
        };
        out.extend(
            v4.iter()
                .chain(v6.iter())
                .filter(|e| e.local_address.port() == port || e.remote_address.port() == port)
                .map(|e| SocketRow {
                    local: e.local_address,
                    remote: e.remote_address,
                    state: state_of(&e.state),
                }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_listener_and_an_established_pair() {
        let (listener, v6) = crate::sockets::testing::listeners();
        let port = listener.local_addr().unwrap().port();
        let listen = 1 + u32::from(v6.is_some());
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let mut rows = Vec::new();
        let mut source = ProcfsSource::new();
        let want = |c: &super::super::Classified| {
            c.listen == listen && c.client.established == 1 && c.server.established == 1
        };
        // /proc/net/tcp is read a page at a time, and other programs' sockets opening and
        // closing between reads can make it skip or repeat one of ours: a few reads.
        let mut c = Default::default();
        for _ in 0..30 {
            source.snapshot(port, &mut rows).unwrap();
            c = super::super::classify(&rows, port);
            if want(&c) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(want(&c), "{c:?}");
        drop(client);
    }
}
