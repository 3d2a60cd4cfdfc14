//! sockscope: an HTTP server, a client workload and a socket-table sampler in one process,
//! so that what an HTTP client does with TCP connections can be seen as it happens.
//!
//! [`engine::Engine`] starts the three parts; [`headless`] prints its samples as JSON lines.

pub mod action;
pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod headless;
pub mod kernel;
pub mod os;
pub mod sampler;
pub mod scenario;
pub mod sockets;
pub mod tui;
pub mod ui;
pub mod workload;

use std::net::SocketAddr;

/// Every failure that ends a run. Each message is one line that names the problem and the
/// fix; `main` prints it as `sockscope: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or settings (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error(
        "port {port} is already in use on {addr}; stop the program holding it or pick another port with --port"
    )]
    PortInUse { port: u16, addr: std::net::IpAddr },
    #[error(
        "cannot listen on {addr}: permission denied; ports below 1024 need root, pick another with --port"
    )]
    BindDenied { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}; pick another address with --bind")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the socket table: {0}")]
    Sockets(#[from] sockets::SocketError),
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    /// The process exit code for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}
