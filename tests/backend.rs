//! `Config.backend` reaches the engine: samples name the backend that produced them and,
//! with no fallback, carry no notice.

#![cfg(target_os = "linux")]

use std::time::Duration;

use sockscope::config::Config;
use sockscope::engine::Engine;
use sockscope::sockets::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_backend_samples_the_server_port() {
    for backend in [
        Backend::Auto,
        Backend::Netlink,
        Backend::Procfs,
        Backend::Netstat2,
    ] {
        let config = Config {
            port: 0,
            client: false,
            interval: Duration::from_millis(20),
            backend,
            ..Config::default()
        };
        let mut engine = Engine::start(&config).await.unwrap();
        let want = if backend == Backend::Auto {
            "netlink"
        } else {
            backend.name()
        };
        assert_eq!(engine.backend(), want);
        let sample = tokio::time::timeout(Duration::from_secs(5), engine.next_sample())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sample.backend, want);
        assert_eq!(sample.backend_notice, None);
        assert_eq!(sample.socket_error, None);
        // The in-process server listens on the port (127.0.0.1, and ::1 where it exists).
        assert_eq!(
            sample.listen as usize,
            engine.server_addrs().len(),
            "{backend}"
        );
    }
}
