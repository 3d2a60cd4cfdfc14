//! Headless mode: the engine's samples as JSON lines on stdout, then one summary line.
//! Each line is flushed as it is written, so a pipe sees samples live.

use std::future::Future;
use std::io::Write;

use serde::Serialize;

use crate::Error;
use crate::config::Config;
use crate::engine::{Engine, Summary};

#[derive(Serialize)]
struct SummaryLine<'a> {
    summary: &'a Summary,
}

/// Runs `engine` until the configured duration ends, a `--requests` workload is done and
/// `--linger` has passed, or `stop` resolves (Ctrl-C); writes every sample, then a final
/// fresh sample and the summary. A closed pipe ends the run quietly.
pub async fn run(
    mut engine: Engine,
    config: &Config,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<Summary, Error> {
    let start = tokio::time::Instant::now();
    let forever = start + std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = config.duration.map_or(forever, |d| start + d);
    let mut linger_until = forever;
    let mut workload_done = false;
    let finished = engine.workload_finished();
    tokio::pin!(stop, finished);
    loop {
        tokio::select! {
            sample = engine.next_sample() => {
                let Some(sample) = sample else { break };
                if !write_line(out, &sample)? {
                    return Ok(engine.summary(Some(&sample)));
                }
            }
            _ = &mut finished, if !workload_done => {
                workload_done = true;
                linger_until = tokio::time::Instant::now() + config.linger;
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::time::sleep_until(linger_until), if workload_done => break,
            _ = &mut stop => break,
        }
    }
    let (sample, summary) = engine.finish().await;
    if let Some(sample) = sample
        && !write_line(out, &sample)?
    {
        return Ok(summary);
    }
    write_line(out, &SummaryLine { summary: &summary })?;
    Ok(summary)
}

/// Writes one JSON line and flushes it; false when the reader has gone (broken pipe).
fn write_line(out: &mut impl Write, value: &impl Serialize) -> Result<bool, Error> {
    let result = serde_json::to_writer(&mut *out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Output(e)),
    }
}
