//! The workload: server, client workers, their counters, and the `Controller` through which
//! the UI (or a test, or a scenario step) changes settings while everything runs.

pub mod client;
pub mod server;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::Error;
use crate::config::{BodyMode, Settings};
use client::{CountingConnector, HttpClient, build_client};

/// A one-way "stop now" signal every task of a run listens to.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending half of [`Shutdown`]; firing it (or dropping it) stops the run's tasks.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Resolves once the run stops.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the trigger is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Changes the running workload. Cheap to clone; every change is validated, applied at once
/// (workers read settings before each request, the server before each response) and seen
/// in the next sample's `settings`.
#[derive(Clone)]
pub struct Controller {
    settings: Arc<watch::Sender<Settings>>,
    client: Arc<watch::Sender<HttpClient>>,
    connector: CountingConnector,
}

impl Controller {
    pub(crate) fn new(settings: Settings, connector: CountingConnector) -> Controller {
        let client = build_client(&connector, settings.pool, settings.h2c);
        Controller {
            settings: Arc::new(watch::channel(settings).0),
            client: Arc::new(watch::channel(client).0),
            connector,
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Settings> {
        self.settings.subscribe()
    }

    pub(crate) fn subscribe_client(&self) -> watch::Receiver<HttpClient> {
        self.client.subscribe()
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.settings.borrow().clone()
    }

    /// Applies `change` to a copy of the settings, validates it, and puts it in force.
    /// A new pool size swaps in a new client; the old pool's connections close when the
    /// last request using it is done. Returns the settings now in force.
    pub fn update(&self, change: impl FnOnce(&mut Settings)) -> Result<Settings, Error> {
        let mut outcome = Err(Error::usage("settings unchanged"));
        // The whole read-change-write happens under the channel's lock, so two callers
        // cannot lose each other's changes.
        self.settings.send_if_modified(|current| {
            let mut next = current.clone();
            change(&mut next);
            if let Err(e) = next.validate() {
                outcome = Err(e);
                return false;
            }
            if next.pool != current.pool || next.h2c != current.h2c {
                self.client
                    .send_replace(build_client(&self.connector, next.pool, next.h2c));
            }
            outcome = Ok(next.clone());
            let changed = next != *current;
            *current = next;
            changed
        });
        outcome
    }

    pub fn set_pool(&self, pool: usize) -> Result<Settings, Error> {
        self.update(|s| s.pool = pool)
    }

    pub fn set_body(&self, body: BodyMode) -> Result<Settings, Error> {
        self.update(|s| s.body = body)
    }

    pub fn set_workers(&self, workers: usize) -> Result<Settings, Error> {
        self.update(|s| s.workers = workers)
    }

    pub fn set_think(&self, think: Duration) -> Result<Settings, Error> {
        self.update(|s| s.think = think)
    }

    pub fn set_paused(&self, paused: bool) -> Result<Settings, Error> {
        self.update(|s| s.paused = paused)
    }
}
