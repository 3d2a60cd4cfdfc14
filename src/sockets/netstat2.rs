//! The `netstat2` crate: the portable backend, and the default where there is no netlink
//! (macOS, Windows). On Linux it dumps every TCP socket over sock_diag without a filter and
//! opens new netlink sockets on each poll, so the netlink backend is cheaper there.
//!
//! Only `iterate_sockets_info_without_pids` is used: the PID lookup scans all of /proc on
//! each call (DESIGN: ~4 ms). Its `Err` items are propagated. A limit of netstat2 0.11 on
//! Linux that this wrapper cannot lift: a netlink error message from the kernel ends its
//! iterator as if the dump were complete, so such a failure looks like a short table.

use ::netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo};

use super::{SocketError, SocketRow, SocketSource, TcpState};

#[derive(Debug, Default)]
pub struct Netstat2Source;

impl Netstat2Source {
    pub fn new() -> Self {
        Netstat2Source
    }
}

fn err(e: ::netstat2::error::Error) -> SocketError {
    // netstat2 words an OS error as "Failed to call ffi"; the OS's own words say more.
    let message = match e {
        ::netstat2::error::Error::OsError(io) => format!("cannot read the socket table: {io}"),
        other => format!("cannot read the socket table: {other}"),
    };
    SocketError {
        backend: "netstat2",
        message,
    }
}

fn state_of(s: ::netstat2::TcpState) -> Option<TcpState> {
    use ::netstat2::TcpState as N;
    Some(match s {
        N::Established => TcpState::Established,
        N::SynSent => TcpState::SynSent,
        N::SynReceived => TcpState::SynRecv,
        N::FinWait1 => TcpState::FinWait1,
        N::FinWait2 => TcpState::FinWait2,
        N::TimeWait => TcpState::TimeWait,
        N::Closed | N::DeleteTcb => TcpState::Close,
        N::CloseWait => TcpState::CloseWait,
        N::LastAck => TcpState::LastAck,
        N::Listen => TcpState::Listen,
        N::Closing => TcpState::Closing,
        // On Linux the only kernel state netstat2 does not name is NEW_SYN_RECV (12), a
        // handshake in progress, which `ss` and the other backends show as SYN_RECV.
        #[cfg(target_os = "linux")]
        N::Unknown => TcpState::SynRecv,
        #[cfg(not(target_os = "linux"))]
        N::Unknown => return None,
    })
}

impl SocketSource for Netstat2Source {
    fn name(&self) -> &'static str {
        "netstat2"
    }

    fn snapshot(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<(), SocketError> {
        out.clear();
        let sockets = ::netstat2::iterate_sockets_info_without_pids(
            AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6,
            ProtocolFlags::TCP,
        )
        .map_err(err)?;
        for info in sockets {
            let info = match info {
                Ok(info) => info,
                Err(e) => {
                    out.clear();
                    return Err(err(e));
                }
            };
            let ProtocolSocketInfo::Tcp(tcp) = info.protocol_socket_info else {
                continue;
            };
            if tcp.local_port != port && tcp.remote_port != port {
                continue;
            }
            if let Some(state) = state_of(tcp.state) {
                out.push(SocketRow {
                    local: (tcp.local_addr, tcp.local_port).into(),
                    remote: (tcp.remote_addr, tcp.remote_port).into(),
                    state,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::classify;
    use std::net::TcpStream;

    #[test]
    fn sees_a_listener_and_an_established_pair() {
        let (listener, v6) = crate::sockets::testing::listeners();
        let port = listener.local_addr().unwrap().port();
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let mut rows = Vec::new();
        Netstat2Source::new().snapshot(port, &mut rows).unwrap();
        let c = classify(&rows, port);
        assert_eq!(c.listen, 1 + u32::from(v6.is_some()));
        assert_eq!(c.client.established, 1);
        assert_eq!(c.server.established, 1);
        assert_eq!(rows.len(), 3 + usize::from(v6.is_some()));
    }

    #[test]
    fn every_named_state_maps_to_its_kernel_state() {
        use ::netstat2::TcpState as N;
        assert_eq!(state_of(N::TimeWait), Some(TcpState::TimeWait));
        assert_eq!(state_of(N::CloseWait), Some(TcpState::CloseWait));
        assert_eq!(state_of(N::SynReceived), Some(TcpState::SynRecv));
        assert_eq!(state_of(N::Closed), Some(TcpState::Close));
        assert_eq!(state_of(N::Listen), Some(TcpState::Listen));
    }
}
