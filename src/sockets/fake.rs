//! A socket table the test sets by hand, so the sampler and the UI run without a network.

use std::sync::{Arc, Mutex};

use super::{SocketError, SocketRow, SocketSource};

/// Shared handle: clone it, give one clone to the sampler and change the rows through the
/// other. `fail` makes the next snapshots fail, to test how errors are reported.
#[derive(Clone, Debug, Default)]
pub struct FakeSource {
    inner: Arc<Mutex<FakeTable>>,
}

#[derive(Debug, Default)]
struct FakeTable {
    rows: Vec<SocketRow>,
    fail: Option<String>,
}

impl FakeSource {
    pub fn new(rows: Vec<SocketRow>) -> Self {
        let fake = FakeSource::default();
        fake.set_rows(rows);
        fake
    }

    pub fn set_rows(&self, rows: Vec<SocketRow>) {
        self.lock().rows = rows;
    }

    pub fn set_failure(&self, message: Option<&str>) {
        self.lock().fail = message.map(str::to_owned);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeTable> {
        // A test that panicked while holding the lock left plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SocketSource for FakeSource {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn snapshot(&mut self, port: u16, out: &mut Vec<SocketRow>) -> Result<(), SocketError> {
        let table = self.lock();
        if let Some(message) = &table.fail {
            return Err(SocketError {
                backend: "fake",
                message: message.clone(),
            });
        }
        out.clear();
        out.extend(
            table
                .rows
                .iter()
                .filter(|r| r.local.port() == port || r.remote.port() == port),
        );
        Ok(())
    }
}
