//! The terminal runtime: a guard that restores the terminal on every way out (quit, error,
//! panic, SIGTERM/SIGINT/SIGHUP), the one event loop that feeds keys, samples, resizes and
//! ticks to `App::update`, applies its commands to the `Controller`, and redraws at most
//! once per batch of events.

use std::io::{self, IsTerminal, Stdout, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures_util::{FutureExt, StreamExt};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};

use crate::Error;
use crate::app::{App, AppInfo, Command, Event};
use crate::config::Config;
use crate::engine::Engine;
use crate::ui;

/// True while the terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set by the panic hook: some thread panicked, the loop must stop.
static PANICKED: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Leaves raw mode and the alternate screen and shows the cursor; safe to call any number
/// of times from anywhere (the panic hook, `Drop`, the signal path).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // Raw mode first: it has more side effects than the alternate screen.
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
        let _ = io::stdout().flush();
    }
}

/// Owns the terminal while the UI runs; dropping it restores the terminal.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Fails unless stdin and stdout are a terminal; checked before the engine starts, so a
/// piped run fails at once with the fix, not after binding the port.
pub fn check_terminal() -> Result<(), Error> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(Error::usage(
            "the terminal UI needs a terminal on stdin and stdout; use --headless for scripts and pipes",
        ));
    }
    Ok(())
}

impl TerminalGuard {
    pub fn enter() -> Result<TerminalGuard, Error> {
        check_terminal()?;
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // Restore first, so the panic message lands on the normal screen.
                restore();
                PANICKED.store(true, Ordering::SeqCst);
                previous(info);
            }));
        });
        let term_err = |e: io::Error| Error::Runtime(format!("cannot set up the terminal: {e}"));
        enable_raw_mode().map_err(term_err)?;
        ACTIVE.store(true, Ordering::SeqCst);
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(term_err(e));
        }
        let terminal = match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(term_err(e));
            }
        };
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// How the UI ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The user quit (or `--duration` ran out).
    Quit,
    /// A signal ended it; the number, for a 128+N exit code.
    Signal(i32),
}

/// Runs the UI on `engine` until the user quits, a signal arrives or `--duration` ends.
/// The terminal is restored before this returns, whatever the outcome.
pub async fn run(mut engine: Engine, config: &Config) -> Result<Exit, Error> {
    let info = AppInfo {
        port: engine.port(),
        backend: engine.backend().to_owned(),
        server_addrs: engine.server_addrs().to_vec(),
        server: config.server,
        client: config.client,
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        scenario: config
            .scenario
            .as_ref()
            .map(|s| (s.name.clone(), s.watch.clone())),
    };
    let mut app = App::new(info, engine.controller().settings());
    let sig = |kind: SignalKind, n: i32| {
        signal(kind)
            .map(|s| (s, n))
            .map_err(|e| Error::Runtime(format!("cannot install a signal handler: {e}")))
    };
    let (mut term, n_term) = sig(SignalKind::terminate(), libc::SIGTERM)?;
    let (mut int, n_int) = sig(SignalKind::interrupt(), libc::SIGINT)?;
    let (mut hup, n_hup) = sig(SignalKind::hangup(), libc::SIGHUP)?;

    let mut guard = TerminalGuard::enter()?;
    let result = event_loop(&mut guard, &mut app, &mut engine, config, async {
        tokio::select! {
            _ = term.recv() => n_term,
            _ = int.recv() => n_int,
            _ = hup.recv() => n_hup,
        }
    })
    .await;
    drop(guard);
    if PANICKED.load(Ordering::SeqCst) {
        return Err(Error::Runtime(
            "a task panicked (its message is printed above); the terminal was restored".into(),
        ));
    }
    result
}

async fn event_loop(
    guard: &mut TerminalGuard,
    app: &mut App,
    engine: &mut Engine,
    config: &Config,
    signals: impl std::future::Future<Output = i32>,
) -> Result<Exit, Error> {
    let draw_err = |e: io::Error| Error::Runtime(format!("cannot draw on the terminal: {e}"));
    let mut keys = EventStream::new();
    // A slow heartbeat only: it lets the app notice a stalled sampler and the loop notice a
    // panic elsewhere. Redraws follow samples and keys, not this.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let finished = engine.workload_finished();
    let mut finished_seen = false;
    tokio::pin!(signals, deadline, finished);
    let size = guard.terminal.size().map_err(draw_err)?;
    app.update(Event::Resize(size.width, size.height));
    let mut sampler_alive = true;

    loop {
        if app.take_dirty() {
            guard
                .terminal
                .draw(|f| ui::draw(app, f))
                .map_err(draw_err)?;
        }
        let event = tokio::select! {
            sample = engine.next_sample(), if sampler_alive => match sample {
                Some(s) => Event::Sample(Box::new(s)),
                None => {
                    sampler_alive = false;
                    Event::EngineError("the sampler stopped; the numbers are frozen".into())
                }
            },
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(k))) => Event::Key(k),
                Some(Ok(TermEvent::Resize(w, h))) => Event::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Error::Runtime(format!("cannot read the terminal: {e}"))),
                None => return Err(Error::Runtime("the terminal's input closed".into())),
            },
            n = &mut signals => return Ok(Exit::Signal(n)),
            _ = &mut deadline => return Ok(Exit::Quit),
            _ = &mut finished, if !finished_seen => {
                finished_seen = true;
                Event::Info("every --requests request is done; the workload stopped (q quits)".into())
            }
            _ = tick.tick() => Event::Tick,
        };
        if PANICKED.load(Ordering::SeqCst) {
            return Ok(Exit::Quit);
        }
        let is_sample = matches!(event, Event::Sample(_));
        let commands = app.update(event);
        if apply(app, engine, commands) {
            return Ok(Exit::Quit);
        }
        if is_sample {
            // Samples that queued while drawing are folded in before the next draw, so a
            // slow terminal never makes the screen lag behind.
            while let Some(Some(s)) = engine.next_sample().now_or_never() {
                app.update(Event::Sample(Box::new(s)));
            }
        }
    }
}

/// Applies commands to the workload; returns true when the app asked to quit.
fn apply(app: &mut App, engine: &Engine, commands: Vec<Command>) -> bool {
    for command in commands {
        match command {
            Command::Quit => return true,
            Command::Update(change) => {
                let controller = engine.controller();
                match controller.update(|s| change.apply(s)) {
                    Ok(settings) => {
                        app.update(Event::Settings(Box::new(settings)));
                    }
                    Err(e) => {
                        app.update(Event::EngineError(format!("change refused: {e}")));
                        app.update(Event::Settings(Box::new(controller.settings())));
                    }
                }
            }
        }
    }
    false
}
