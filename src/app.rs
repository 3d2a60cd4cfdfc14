//! The terminal UI's model: the one owner of its state, changed only by [`App::update`],
//! which is pure (no terminal, no clock, no network) and returns [`Command`]s that the
//! runtime loop (`tui.rs`) applies to the workload's `Controller`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crossterm::event::KeyEvent;

use crate::action::{self, Action};
use crate::config::{BodyMode, MAX_WORKERS, Settings, format_duration, format_size};
use crate::sampler::{Sample, Totals};

/// How much history the charts show.
pub const WINDOW_MS: u64 = 60_000;
/// Hard cap on kept samples, whatever their timestamps say: 60 s at the shortest interval
/// (10 ms), plus slack. Keeps the history bounded even if time stood still.
pub const MAX_POINTS: usize = 6_100;
/// Numbers in the throughput panel are averaged over this much history, so that a 100 ms
/// sample period does not make them flicker.
pub const RATE_WINDOW_MS: u64 = 1_000;
/// Think-time steps for `[` and `]`.
pub const THINK_STEPS: [Duration; 9] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_secs(1),
];
/// Body sizes `b` cycles through.
pub const BODY_SIZES: [u64; 4] = [11, 8 * 1024, 64 * 1024, 1024 * 1024];
/// How long (sample time) a notice stays on screen.
const NOTICE_MS: u64 = 5_000;
/// Changes of one setting this close together (sample time) share one chart marker.
const MARKER_MERGE_MS: u64 = 1_500;
/// Ticks (1 s each) without a sample before the screen says the sampler is stalled.
const STALL_TICKS: u32 = 3;

/// What the UI is looking at; fixed for the run.
#[derive(Clone, Debug)]
pub struct AppInfo {
    pub port: u16,
    pub backend: String,
    pub server_addrs: Vec<SocketAddr>,
    /// The in-process server runs.
    pub server: bool,
    /// The in-process client workload runs.
    pub client: bool,
    /// Colours allowed (`NO_COLOR` unset).
    pub color: bool,
    /// The scenario's name and what to watch for, when the run started from one.
    pub scenario: Option<(String, String)>,
}

/// Everything that can happen to the app.
#[derive(Clone, Debug)]
pub enum Event {
    Key(KeyEvent),
    Action(Action),
    Sample(Box<Sample>),
    Resize(u16, u16),
    /// A heartbeat (once a second) that lets the app notice a stalled sampler.
    Tick,
    /// The settings now in force, as the `Controller` reported them after a change.
    Settings(Box<Settings>),
    /// Something failed outside the app (a rejected change, the sampler gone); shown, not fatal.
    EngineError(String),
    /// News from the engine that stays on screen (the `--requests` workload is done).
    Info(String),
}

/// One setting to change; applied by the runtime with `Controller::update`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingChange {
    Body(BodyMode),
    Pool(usize),
    Workers(usize),
    Think(Duration),
    BodySize(u64),
    Keepalive(bool),
    Paused(bool),
}

impl SettingChange {
    pub fn apply(&self, s: &mut Settings) {
        match *self {
            SettingChange::Body(b) => s.body = b,
            SettingChange::Pool(n) => s.pool = n,
            SettingChange::Workers(n) => s.workers = n,
            SettingChange::Think(d) => s.think = d,
            SettingChange::BodySize(n) => s.body_size = n,
            SettingChange::Keepalive(on) => s.keepalive = on,
            SettingChange::Paused(p) => s.paused = p,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            SettingChange::Body(_) => Kind::Body,
            SettingChange::Pool(_) => Kind::Pool,
            SettingChange::Workers(_) => Kind::Workers,
            SettingChange::Think(_) => Kind::Think,
            SettingChange::BodySize(_) => Kind::BodySize,
            SettingChange::Keepalive(_) => Kind::Keepalive,
            SettingChange::Paused(_) => Kind::Paused,
        }
    }
}

/// What the runtime must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Update(SettingChange),
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Body,
    Pool,
    Workers,
    Think,
    BodySize,
    Keepalive,
    Paused,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Body,
        Kind::Pool,
        Kind::Workers,
        Kind::Think,
        Kind::BodySize,
        Kind::Keepalive,
        Kind::Paused,
    ];

    fn value(self, s: &Settings) -> String {
        match self {
            Kind::Body => s.body.name().to_owned(),
            Kind::Pool => s.pool.to_string(),
            Kind::Workers => s.workers.to_string(),
            Kind::Think => format_duration(s.think),
            Kind::BodySize => format_size(s.body_size),
            Kind::Keepalive => on_off(s.keepalive).to_owned(),
            Kind::Paused => if s.paused { "paused" } else { "running" }.to_owned(),
        }
    }

    /// The short chart label: "pool 2->10", "drain->drop", "paused".
    fn label(self, from: &str, to: &str) -> String {
        match self {
            Kind::Body => format!("{from}->{to}"),
            Kind::Pool => format!("pool {from}->{to}"),
            Kind::Workers => format!("workers {from}->{to}"),
            Kind::Think => format!("think {from}->{to}"),
            Kind::BodySize => format!("size {from}->{to}"),
            Kind::Keepalive => format!("keep-alive {from}->{to}"),
            Kind::Paused => {
                if to == "paused" {
                    "paused".to_owned()
                } else {
                    "resumed".to_owned()
                }
            }
        }
    }
}

pub(crate) fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// A setting change drawn on the charts.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub t_ms: u64,
    pub label: String,
    kind: Kind,
    from: String,
}

/// One sample as the charts and the averaged numbers need it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub t_ms: u64,
    /// ESTABLISHED, TIME_WAIT, CLOSE_WAIT on the client side.
    pub client: [u32; 3],
    /// The same on the server side.
    pub server: [u32; 3],
    pub totals: Totals,
    /// Kernel counter deltas of this sample: resets sent, aborts on close, TIME_WAITs recycled.
    pub kernel: [u64; 3],
}

impl Point {
    fn of(s: &Sample) -> Point {
        let three = |c: &crate::sockets::StateCounts| [c.established, c.time_wait, c.close_wait];
        Point {
            t_ms: s.t_ms,
            client: three(&s.client),
            server: three(&s.server),
            totals: s.totals,
            kernel: [
                s.kernel.out_rsts,
                s.kernel.tcp_abort_on_close,
                s.kernel.tw_recycled,
            ],
        }
    }
}

/// A line under the controls: what just happened, or what went wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// Sample time after which it is hidden; `None` keeps it until replaced.
    until_ms: Option<u64>,
}

/// Rates averaged over [`RATE_WINDOW_MS`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub requests_per_s: f64,
    pub new_connections_per_s: f64,
    /// Requests per new connection; `None` when no connection was opened.
    pub reuse_ratio: Option<f64>,
    /// Share of responses that came on a reused connection; `None` without responses.
    pub reused_pct: Option<f64>,
    pub resets_per_s: f64,
    pub aborts_per_s: f64,
    pub tw_recycled_per_s: f64,
}

/// The UI's whole state.
pub struct App {
    pub(crate) info: AppInfo,
    pub(crate) settings: Settings,
    pub(crate) latest: Option<Sample>,
    pub(crate) history: VecDeque<Point>,
    pub(crate) markers: VecDeque<Marker>,
    /// Totals at the last `r`; the panel shows totals since then.
    pub(crate) baseline: Totals,
    /// Time and totals where the averages may start: the run's start or the last reset.
    origin: (u64, Totals),
    pub(crate) help: bool,
    pub(crate) notice: Option<Notice>,
    /// The caption of the scenario step in force, shown under the controls.
    pub(crate) caption: Option<String>,
    pub(crate) size: (u16, u16),
    ticks_without_sample: u32,
    dirty: bool,
}

impl App {
    pub fn new(info: AppInfo, settings: Settings) -> App {
        App {
            info,
            settings,
            latest: None,
            history: VecDeque::new(),
            markers: VecDeque::new(),
            baseline: Totals::default(),
            origin: (0, Totals::default()),
            help: false,
            notice: None,
            caption: None,
            size: (0, 0),
            ticks_without_sample: 0,
            dirty: true,
        }
    }

    /// The settings the app believes are in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn help_open(&self) -> bool {
        self.help
    }

    pub fn markers(&self) -> impl Iterator<Item = &Marker> {
        self.markers.iter()
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// The latest sample's time, which the header shows as elapsed time.
    pub fn elapsed_ms(&self) -> u64 {
        self.latest.as_ref().map_or(0, |s| s.t_ms)
    }

    /// True once since the last call if anything visible changed: the runtime redraws then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Totals since the start or the last reset.
    pub fn totals_since_reset(&self) -> Totals {
        let now = self.latest.as_ref().map(|s| s.totals).unwrap_or_default();
        now.since(&self.baseline)
    }

    /// Rates over the last second of history (or less, just after a start or a reset).
    pub fn rates(&self) -> Rates {
        let Some(last) = self.history.back() else {
            return Rates::default();
        };
        let since = last.t_ms.saturating_sub(RATE_WINDOW_MS);
        // The reference is the newest point at or before the window's start, or the origin
        // (the start of the run, or the last reset) when history is shorter than the window.
        let base = self
            .history
            .iter()
            .rev()
            .skip(1)
            .find(|p| p.t_ms <= since)
            .map_or((self.origin.0, self.origin.1), |p| (p.t_ms, p.totals));
        let mut kernel = [0u64; 3];
        for p in self.history.iter().filter(|p| p.t_ms > base.0) {
            for (k, d) in kernel.iter_mut().zip(p.kernel) {
                *k += d;
            }
        }
        let secs = last.t_ms.saturating_sub(base.0) as f64 / 1000.0;
        if secs <= 0.0 {
            return Rates::default();
        }
        let t = &last.totals;
        let req = t.requests.saturating_sub(base.1.requests);
        let conns = t.new_connections.saturating_sub(base.1.new_connections);
        let reused = t.reused_responses.saturating_sub(base.1.reused_responses);
        Rates {
            requests_per_s: req as f64 / secs,
            new_connections_per_s: conns as f64 / secs,
            reuse_ratio: (conns > 0).then(|| req as f64 / conns as f64),
            reused_pct: (req > 0).then(|| 100.0 * reused.min(req) as f64 / req as f64),
            resets_per_s: kernel[0] as f64 / secs,
            aborts_per_s: kernel[1] as f64 / secs,
            tw_recycled_per_s: kernel[2] as f64 / secs,
        }
    }

    /// Applies one event; returns what the runtime must do.
    pub fn update(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::Key(key) => match action::from_key(key) {
                Some(a) => self.act(a),
                None => Vec::new(),
            },
            Event::Action(a) => self.act(a),
            Event::Sample(s) => {
                self.on_sample(*s);
                Vec::new()
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.dirty = true;
                Vec::new()
            }
            Event::Tick => {
                self.ticks_without_sample = self.ticks_without_sample.saturating_add(1);
                if self.ticks_without_sample == STALL_TICKS {
                    self.set_notice(
                        format!("no sample for {STALL_TICKS}s: the sampler is stalled or gone"),
                        true,
                        None,
                    );
                }
                Vec::new()
            }
            Event::Settings(s) => {
                if *s != self.settings {
                    self.settings = *s;
                    self.dirty = true;
                }
                Vec::new()
            }
            Event::EngineError(msg) => {
                self.set_notice(msg, true, None);
                Vec::new()
            }
            Event::Info(msg) => {
                self.set_notice(msg, false, None);
                Vec::new()
            }
        }
    }

    fn on_sample(&mut self, s: Sample) {
        self.ticks_without_sample = 0;
        let t = s.t_ms;
        if let Some(err) = &s.socket_error {
            self.set_notice(format!("socket table: {err}"), true, Some(t + NOTICE_MS));
        }
        if let Some(n) = &s.backend_notice
            && self.notice.is_none()
            && self.latest.is_none()
        {
            self.set_notice(n.clone(), false, Some(t + 3 * NOTICE_MS));
        }
        if s.caption != self.caption {
            // A scenario step: mark what it changed, like a key press would.
            self.mark_changes(t, &s.settings);
            self.caption = s.caption.clone();
        }
        self.history.push_back(Point::of(&s));
        while self.history.len() > MAX_POINTS
            || self.history.front().is_some_and(|p| p.t_ms + WINDOW_MS < t)
        {
            self.history.pop_front();
        }
        while self.markers.front().is_some_and(|m| m.t_ms + WINDOW_MS < t) {
            self.markers.pop_front();
        }
        if self
            .notice
            .as_ref()
            .and_then(|n| n.until_ms)
            .is_some_and(|until| t > until)
        {
            self.notice = None;
        }
        self.latest = Some(s);
        self.dirty = true;
    }

    fn act(&mut self, a: Action) -> Vec<Command> {
        self.dirty = true;
        let s = &self.settings;
        let change = match a {
            Action::Quit => return vec![Command::Quit],
            Action::Back => {
                if self.help {
                    self.help = false;
                    return Vec::new();
                }
                return vec![Command::Quit];
            }
            Action::ToggleHelp => {
                self.help = !self.help;
                return Vec::new();
            }
            Action::Reset => {
                self.reset();
                return Vec::new();
            }
            Action::CycleBody => SettingChange::Body(s.body.next()),
            Action::Pool(delta) => {
                let next = s.pool.saturating_add_signed(delta as isize);
                if next == s.pool {
                    return self.refuse("pool size is already 0 (no idle connections kept)");
                }
                SettingChange::Pool(next)
            }
            Action::Workers(delta) => {
                let next = s
                    .workers
                    .saturating_add_signed(delta as isize)
                    .clamp(1, MAX_WORKERS);
                if next == s.workers {
                    let msg = if delta < 0 {
                        "workers is already 1 (use --no-client to run without a client)".to_owned()
                    } else {
                        format!("workers is already at the cap of {MAX_WORKERS}")
                    };
                    return self.refuse(&msg);
                }
                SettingChange::Workers(next)
            }
            Action::ThinkUp => match THINK_STEPS.iter().find(|d| **d > s.think) {
                Some(d) => SettingChange::Think(*d),
                None => return self.refuse("think time is at its largest step (1s)"),
            },
            Action::ThinkDown => match THINK_STEPS.iter().rev().find(|d| **d < s.think) {
                Some(d) => SettingChange::Think(*d),
                None => return self.refuse("think time is already 0"),
            },
            Action::CycleBodySize => {
                let next = BODY_SIZES
                    .iter()
                    .find(|n| **n > s.body_size)
                    .unwrap_or(&BODY_SIZES[0]);
                SettingChange::BodySize(*next)
            }
            Action::ToggleKeepalive => SettingChange::Keepalive(!s.keepalive),
            Action::TogglePause => SettingChange::Paused(!s.paused),
        };
        self.change(change)
    }

    fn refuse(&mut self, msg: &str) -> Vec<Command> {
        let until = self.elapsed_ms() + NOTICE_MS;
        self.set_notice(msg.to_owned(), false, Some(until));
        Vec::new()
    }

    /// Puts `change` in force in the model, marks it on the charts, and asks the runtime
    /// to apply it to the workload.
    fn change(&mut self, change: SettingChange) -> Vec<Command> {
        let kind = change.kind();
        let from = kind.value(&self.settings);
        change.apply(&mut self.settings);
        let to = kind.value(&self.settings);
        let t = self.elapsed_ms();
        let notice = kind.label(&from, &to);
        // Key repeats (Up pressed eight times) make one marker "pool 2->10", not eight.
        let merge = self
            .markers
            .back()
            .is_some_and(|m| m.kind == kind && t.saturating_sub(m.t_ms) <= MARKER_MERGE_MS);
        if merge {
            if let Some(m) = self.markers.back_mut() {
                if m.from == to {
                    // Back where it started: nothing changed after all.
                    self.markers.pop_back();
                } else {
                    m.label = kind.label(&m.from, &to);
                }
            }
        } else {
            self.markers.push_back(Marker {
                t_ms: t,
                label: kind.label(&from, &to),
                kind,
                from,
            });
        }
        self.set_notice(notice, false, Some(t + NOTICE_MS));
        vec![Command::Update(change)]
    }

    /// Marks every setting that differs between the model and `now` (a scenario step
    /// changed them in the engine), then takes `now` as the settings in force.
    fn mark_changes(&mut self, t: u64, now: &Settings) {
        for kind in Kind::ALL {
            let (from, to) = (kind.value(&self.settings), kind.value(now));
            if from != to {
                self.markers.push_back(Marker {
                    t_ms: t,
                    label: kind.label(&from, &to),
                    kind,
                    from,
                });
            }
        }
        self.settings = now.clone();
    }

    fn reset(&mut self) {
        self.baseline = self.latest.as_ref().map(|s| s.totals).unwrap_or_default();
        self.origin = (self.elapsed_ms(), self.baseline);
        self.history.clear();
        self.markers.clear();
        let until = self.elapsed_ms() + NOTICE_MS;
        self.set_notice("counters and charts reset".to_owned(), false, Some(until));
    }

    fn set_notice(&mut self, text: String, error: bool, until_ms: Option<u64>) {
        self.notice = Some(Notice {
            text,
            error,
            until_ms,
        });
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::fake::FakeSource;
    use crate::workload::stats::Stats;
    use crossterm::event::{KeyCode, KeyModifiers};
    use std::sync::Arc;
    use std::time::Instant;

    fn app() -> App {
        let info = AppInfo {
            port: 8080,
            backend: "fake".into(),
            server_addrs: Vec::new(),
            server: true,
            client: true,
            color: false,
            scenario: None,
        };
        App::new(info, Settings::default())
    }

    /// A sample at `t_ms` with the given totals, made by the real sampler on a fake table.
    fn sample(t_ms: u64, requests: u64, conns: u64) -> Sample {
        static TEMPLATE: std::sync::OnceLock<Sample> = std::sync::OnceLock::new();
        let mut s = TEMPLATE
            .get_or_init(|| {
                let stats = Arc::new(Stats::default());
                let (_tx, rx) = tokio::sync::watch::channel(Settings::default());
                let t0 = Instant::now();
                let source = Box::new(FakeSource::default());
                let mut sampler = crate::sampler::Sampler::new(source, 8080, stats, rx, t0);
                sampler.sample(t0)
            })
            .clone();
        s.t_ms = t_ms;
        s.totals.requests = requests;
        s.totals.new_connections = conns;
        s.kernel = Default::default();
        s
    }

    fn key(app: &mut App, code: KeyCode) -> Vec<Command> {
        app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn upd(c: SettingChange) -> Vec<Command> {
        vec![Command::Update(c)]
    }

    #[test]
    fn every_setting_key_makes_its_change() {
        let mut a = app();
        assert_eq!(
            key(&mut a, KeyCode::Char('d')),
            upd(SettingChange::Body(BodyMode::Drop))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('d')),
            upd(SettingChange::Body(BodyMode::Hold))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('d')),
            upd(SettingChange::Body(BodyMode::Drain))
        );
        assert_eq!(key(&mut a, KeyCode::Up), upd(SettingChange::Pool(3)));
        assert_eq!(key(&mut a, KeyCode::Down), upd(SettingChange::Pool(2)));
        assert_eq!(key(&mut a, KeyCode::PageUp), upd(SettingChange::Pool(12)));
        assert_eq!(key(&mut a, KeyCode::PageDown), upd(SettingChange::Pool(2)));
        assert_eq!(key(&mut a, KeyCode::Right), upd(SettingChange::Workers(11)));
        assert_eq!(key(&mut a, KeyCode::Left), upd(SettingChange::Workers(10)));
        let ms = Duration::from_millis;
        assert_eq!(
            key(&mut a, KeyCode::Char(']')),
            upd(SettingChange::Think(ms(5)))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('[')),
            upd(SettingChange::Think(ms(2)))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('b')),
            upd(SettingChange::BodySize(1 << 20))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('b')),
            upd(SettingChange::BodySize(11))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('b')),
            upd(SettingChange::BodySize(8192))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('k')),
            upd(SettingChange::Keepalive(false))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char(' ')),
            upd(SettingChange::Paused(true))
        );
        assert_eq!(
            key(&mut a, KeyCode::Char(' ')),
            upd(SettingChange::Paused(false))
        );
        // The model follows: the controls bar shows what was asked for.
        assert_eq!(a.settings().body_size, 8192);
        assert!(!a.settings().keepalive);
    }

    #[test]
    fn changes_apply_to_settings_like_the_controller_would() {
        let mut s = Settings::default();
        for c in [
            SettingChange::Body(BodyMode::Hold),
            SettingChange::Pool(0),
            SettingChange::Workers(3),
            SettingChange::Think(Duration::ZERO),
            SettingChange::BodySize(11),
            SettingChange::Keepalive(false),
            SettingChange::Paused(true),
        ] {
            c.apply(&mut s);
        }
        assert_eq!(s.body, BodyMode::Hold);
        assert_eq!((s.pool, s.workers, s.body_size), (0, 3, 11));
        assert!(s.think.is_zero() && !s.keepalive && s.paused);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn bounds_pool_at_0_workers_at_1_think_at_its_steps() {
        let mut a = app();
        assert_eq!(key(&mut a, KeyCode::Down), upd(SettingChange::Pool(1)));
        assert_eq!(key(&mut a, KeyCode::Down), upd(SettingChange::Pool(0)));
        assert_eq!(key(&mut a, KeyCode::Down), vec![]);
        assert_eq!(key(&mut a, KeyCode::PageDown), vec![]);
        assert_eq!(a.settings().pool, 0);
        assert!(a.notice().is_some_and(|n| n.text.contains("already 0")));
        a.update(Event::Action(Action::Pool(5)));
        assert_eq!(key(&mut a, KeyCode::PageDown), upd(SettingChange::Pool(0)));

        a.settings.workers = 2;
        assert_eq!(key(&mut a, KeyCode::Left), upd(SettingChange::Workers(1)));
        assert_eq!(key(&mut a, KeyCode::Left), vec![]);
        assert_eq!(a.settings().workers, 1);
        a.settings.workers = MAX_WORKERS;
        assert_eq!(key(&mut a, KeyCode::Right), vec![]);

        a.settings.think = Duration::ZERO;
        assert_eq!(key(&mut a, KeyCode::Char('[')), vec![]);
        a.settings.think = Duration::from_millis(3); // off the steps (from --think)
        assert_eq!(
            key(&mut a, KeyCode::Char(']')),
            upd(SettingChange::Think(Duration::from_millis(5)))
        );
        a.settings.think = Duration::from_millis(3);
        assert_eq!(
            key(&mut a, KeyCode::Char('[')),
            upd(SettingChange::Think(Duration::from_millis(2)))
        );
        a.settings.think = Duration::from_secs(1);
        assert_eq!(key(&mut a, KeyCode::Char(']')), vec![]);
        a.settings.think = Duration::from_millis(100);
        assert_eq!(
            key(&mut a, KeyCode::Char(']')),
            upd(SettingChange::Think(Duration::from_secs(1)))
        );
    }

    #[test]
    fn quit_help_and_escape() {
        let mut a = app();
        assert_eq!(key(&mut a, KeyCode::Char('q')), vec![Command::Quit]);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.update(Event::Key(ctrl_c)), vec![Command::Quit]);
        assert_eq!(key(&mut a, KeyCode::Char('?')), vec![]);
        assert!(a.help_open());
        // Esc closes the overlay first, and quits only when none is open.
        assert_eq!(key(&mut a, KeyCode::Esc), vec![]);
        assert!(!a.help_open());
        key(&mut a, KeyCode::Char('?'));
        key(&mut a, KeyCode::Char('?'));
        assert!(!a.help_open());
        assert_eq!(key(&mut a, KeyCode::Esc), vec![Command::Quit]);
        assert_eq!(key(&mut a, KeyCode::Char('x')), vec![]);
    }

    #[test]
    fn repeated_changes_share_one_marker_and_undo_removes_it() {
        let mut a = app();
        a.update(Event::Sample(Box::new(sample(5_000, 0, 0))));
        for _ in 0..8 {
            key(&mut a, KeyCode::Up);
        }
        key(&mut a, KeyCode::Char('d'));
        let labels: Vec<&str> = a.markers().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["pool 2->10", "drain->drop"]);
        assert!(a.markers().all(|m| m.t_ms == 5_000));
        // Much later, a new change is a new marker; going back and forth cancels out.
        a.update(Event::Sample(Box::new(sample(20_000, 0, 0))));
        key(&mut a, KeyCode::Char(' '));
        key(&mut a, KeyCode::Char(' '));
        assert_eq!(a.markers().count(), 2);
        key(&mut a, KeyCode::Char(' '));
        assert_eq!(a.markers().last().map(|m| m.label.as_str()), Some("paused"));
        // Markers leave with the 60 s window.
        a.update(Event::Sample(Box::new(sample(66_000, 0, 0))));
        let labels: Vec<&str> = a.markers().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["paused"]);
    }

    #[test]
    fn history_is_bounded_by_the_window_and_by_count() {
        let mut a = app();
        for i in 1..=1_000u64 {
            a.update(Event::Sample(Box::new(sample(i * 100, i, i))));
        }
        // 60 s at 100 ms: 601 points (both ends kept).
        assert_eq!(a.history_len(), 601);
        let mut b = app();
        let s = sample(1_000, 0, 0);
        for _ in 0..(MAX_POINTS + 50) {
            b.update(Event::Sample(Box::new(s.clone())));
        }
        assert_eq!(b.history_len(), MAX_POINTS);
    }

    #[test]
    fn rates_average_the_last_second_and_reset_starts_over() {
        let mut a = app();
        // 100 requests and 10 connections per 100 ms.
        for i in 1..=30u64 {
            a.update(Event::Sample(Box::new(sample(i * 100, i * 100, i * 10))));
        }
        let r = a.rates();
        assert!((r.requests_per_s - 1000.0).abs() < 1e-6, "{r:?}");
        assert!((r.new_connections_per_s - 100.0).abs() < 1e-6);
        assert_eq!(r.reuse_ratio, Some(10.0));
        assert_eq!(a.totals_since_reset().requests, 3000);

        a.update(Event::Action(Action::Reset));
        assert_eq!(a.history_len(), 0);
        assert_eq!(a.markers().count(), 0);
        assert_eq!(a.totals_since_reset().requests, 0);
        a.update(Event::Sample(Box::new(sample(3_100, 3_150, 300))));
        assert_eq!(a.totals_since_reset().requests, 150);
        let r = a.rates();
        assert!((r.requests_per_s - 1500.0).abs() < 1e-6, "{r:?}");
        assert_eq!(r.reuse_ratio, None);
    }

    #[test]
    fn engine_errors_and_stalls_are_shown_not_fatal() {
        let mut a = app();
        assert!(a.take_dirty());
        assert!(!a.take_dirty());
        assert_eq!(a.update(Event::Tick), vec![]);
        assert!(!a.take_dirty(), "a tick alone does not redraw");
        a.update(Event::Tick);
        a.update(Event::Tick);
        assert!(
            a.notice()
                .is_some_and(|n| n.error && n.text.contains("stalled"))
        );
        a.update(Event::EngineError("change refused: x".into()));
        assert_eq!(
            a.notice().map(|n| n.text.as_str()),
            Some("change refused: x")
        );
        let s = Settings {
            pool: 7,
            ..Settings::default()
        };
        a.update(Event::Settings(Box::new(s)));
        assert_eq!(a.settings().pool, 7);
    }
}
