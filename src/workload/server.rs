//! The in-process HTTP server: hyper through hyper-util's auto builder (HTTP/1.1, and h2c
//! when a client speaks it), counting accepts, responses and closes.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Shutdown;
use super::stats::Stats;
use crate::Error;
use crate::config::Settings;

/// Listening sockets, bound before anything else starts so a busy port fails fast.
pub struct Listeners {
    pub port: u16,
    listeners: Vec<TcpListener>,
}

impl Listeners {
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

fn bind_error(addr: SocketAddr, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::AddrInUse => Error::PortInUse {
            port: addr.port(),
            addr: addr.ip(),
        },
        io::ErrorKind::PermissionDenied => Error::BindDenied { addr },
        _ => Error::Bind { addr, source: e },
    }
}

/// Binds `port` on every address of `bind`, or, when `bind` is empty, on 127.0.0.1 and on
/// ::1 if the host has IPv6 (its absence is not an error). Port 0 takes a free port from
/// the first address and uses it for the others.
pub async fn bind(bind: &[IpAddr], port: u16) -> Result<Listeners, Error> {
    let (addrs, v6_optional) = if bind.is_empty() {
        (
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            true,
        )
    } else {
        (bind.to_vec(), false)
    };
    let mut port = port;
    let mut listeners = Vec::new();
    for ip in addrs {
        let addr = SocketAddr::new(ip, port);
        match TcpListener::bind(addr).await {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr().map_err(|e| bind_error(addr, e))?.port();
                }
                listeners.push(l);
            }
            // No IPv6 on this host (no ::1, or the family is off): serve IPv4 only.
            Err(e)
                if v6_optional
                    && ip.is_ipv6()
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT)
                    ) => {}
            Err(e) => return Err(bind_error(addr, e)),
        }
    }
    Ok(Listeners { port, listeners })
}

/// What every request handler shares: the live settings and the response body, made once
/// per body size rather than once per request.
struct Handler {
    settings: watch::Receiver<Settings>,
    stats: Arc<Stats>,
    body: Mutex<Bytes>,
}

impl Handler {
    fn current(&self) -> (Duration, bool, Bytes) {
        let (delay, keepalive, size) = {
            let s = self.settings.borrow();
            (s.server_delay, s.keepalive, s.body_size as usize)
        };
        let mut body = self.body.lock().unwrap_or_else(|p| p.into_inner());
        if body.len() != size {
            *body = Bytes::from(vec![b'x'; size]);
        }
        (delay, keepalive, body.clone())
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let (delay, keepalive, body) = self.current();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut res = Response::new(Full::new(body));
        // Keep-alive is read per response, so toggling it acts on open connections at once:
        // hyper closes an HTTP/1.1 connection after a response that says `Connection: close`.
        if !keepalive && req.version() <= Version::HTTP_11 {
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        self.stats.served.fetch_add(1, Relaxed);
        Ok(res)
    }
}

/// Accepts and serves on every listener until `shutdown`.
pub fn spawn(
    listeners: Listeners,
    settings: watch::Receiver<Settings>,
    stats: Arc<Stats>,
    shutdown: Shutdown,
) {
    let handler = Arc::new(Handler {
        settings,
        stats,
        body: Mutex::new(Bytes::new()),
    });
    for listener in listeners.listeners {
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = accept_loop(listener, handler, shutdown.clone()) => {}
                _ = shutdown.wait() => {}
            }
        });
    }
}

async fn accept_loop(listener: TcpListener, handler: Arc<Handler>, shutdown: Shutdown) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                handler.stats.accepted.fetch_add(1, Relaxed);
                tokio::spawn(serve(stream, handler.clone(), shutdown.clone()));
            }
            Err(e) => {
                // EMFILE and friends: the connection waits in the backlog; retry shortly.
                handler.stats.accept_errors.fetch_add(1, Relaxed);
                let pause = if super::stats::ErrorKind::of_io(&e)
                    == super::stats::ErrorKind::TooManyFiles
                {
                    Duration::from_millis(50)
                } else {
                    Duration::from_millis(5)
                };
                tokio::time::sleep(pause).await;
            }
        }
    }
}

async fn serve(stream: TcpStream, handler: Arc<Handler>, shutdown: Shutdown) {
    // Small responses go out at once rather than waiting on Nagle.
    let _ = stream.set_nodelay(true);
    let idle = handler.settings.borrow().idle_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer is what makes `header_read_timeout` (and so the idle close) work at all;
    // setting the timeout without it panics (DESIGN facts).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    let h = handler.clone();
    let service = service_fn(move |req| {
        let h = h.clone();
        async move { h.handle(req).await }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // A connection error (reset, timeout) ends the connection like a close does.
        _ = conn => {}
        _ = shutdown.wait() => {}
    }
    handler.stats.closed.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_problem_and_the_fix() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let denied = bind_error(addr, io::Error::from_raw_os_error(libc::EACCES)).to_string();
        assert!(denied.contains("permission denied"), "{denied}");
        assert!(denied.contains("--port"), "{denied}");
        let busy = bind_error(addr, io::Error::from_raw_os_error(libc::EADDRINUSE)).to_string();
        assert!(
            busy.contains("port 80 is already in use on 127.0.0.1"),
            "{busy}"
        );
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        let gone = bind_error(v6, io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)).to_string();
        assert!(gone.contains("cannot listen on [::1]:8080"), "{gone}");
        assert!(gone.contains("--bind"), "{gone}");
    }

    #[tokio::test]
    async fn port_zero_binds_the_same_free_port_on_every_default_address() {
        let l = bind(&[], 0).await.expect("bind");
        assert_ne!(l.port, 0);
        let addrs = l.addrs();
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == l.port && a.ip().is_loopback())
        );
        assert!(addrs.iter().any(|a| a.is_ipv4()));
        // IPv6 is optional: present exactly when this host has ::1.
        let has_v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
        assert_eq!(addrs.iter().any(|a| a.is_ipv6()), has_v6);
    }
}
