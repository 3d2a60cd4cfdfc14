//! Snapshots of the terminal UI at 120x40, 80x24 and 40x12, drawn with ratatui's
//! `TestBackend` from injected samples: no terminal, no network, no sleeps, no clock.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sockscope::app::{App, AppInfo, Event};
use sockscope::config::Settings;
use sockscope::sampler::{Sample, Sampler};
use sockscope::sockets::fake::FakeSource;
use sockscope::workload::stats::{Percentiles, Stats};

/// A blank sample from the real sampler on an empty fake table; tests set the fields.
fn template() -> Sample {
    static TEMPLATE: OnceLock<Sample> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let (_tx, rx) = tokio::sync::watch::channel(Settings::default());
            let t0 = Instant::now();
            let source = Box::new(FakeSource::default());
            let mut sampler = Sampler::new(source, 8080, Arc::new(Stats::default()), rx, t0);
            sampler.sample(t0)
        })
        .clone()
}

fn new_app() -> App {
    new_app_with(None)
}

fn new_app_with(scenario: Option<(String, String)>) -> App {
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:8080".parse().unwrap()];
    let info = AppInfo {
        port: 8080,
        backend: "procfs".into(),
        server_addrs: addrs,
        server: true,
        client: true,
        color: false,
        scenario,
    };
    App::new(info, Settings::default())
}

/// The story of the article: pool 2 with 10 workers churns connections, so client
/// TIME_WAIT climbs; at `change_at` (if any) the pool goes to 10 and churn stops.
fn run(app: &mut App, seconds: u64, change_at: Option<u64>) {
    let mut requests = 0u64;
    let mut conns = 0u64;
    let mut time_wait = 0u32;
    for i in 1..=seconds * 10 {
        let t_ms = i * 100;
        if change_at == Some(t_ms) {
            for _ in 0..8 {
                press(app, KeyCode::Up);
            }
        }
        let churn = change_at.is_none_or(|c| t_ms < c);
        requests += 140;
        if churn {
            conns += 60;
            time_wait += 60;
        } else {
            conns += (i % 50 == 0) as u64;
        }
        let mut s = template();
        s.t_ms = t_ms;
        s.poll_ms = 0.8;
        s.client.established = 10;
        s.server.established = 10;
        s.client.time_wait = time_wait;
        s.client.syn_sent = if churn { 1 } else { 0 };
        s.server.close_wait = (i % 37 == 0) as u32;
        s.listen = 1;
        s.requests_per_s = 1400.0;
        s.new_connections_per_s = if churn { 600.0 } else { 0.0 };
        s.totals.requests = requests;
        s.totals.new_connections = conns;
        s.totals.accepted = conns;
        s.totals.reused_responses = requests - conns.min(requests);
        s.latency_ms = Percentiles {
            p50: Some(3.9),
            p90: Some(5.0),
            p99: Some(6.1),
        };
        s.kernel = Default::default();
        s.kernel.tw_recycled = if churn { 5 } else { 0 };
        app.update(Event::Sample(Box::new(s)));
    }
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    app.update(Event::Resize(w, h));
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal
        .draw(|f| sockscope::ui::draw(app, f))
        .expect("draw");
    terminal
}

#[test]
fn default_screen() {
    for (w, h) in [(120, 40), (80, 24), (40, 12)] {
        let mut app = new_app();
        run(&mut app, 30, None);
        let t = render(&mut app, w, h);
        insta::assert_snapshot!(format!("default_{w}x{h}"), t.backend());
    }
}

#[test]
fn before_the_first_sample() {
    let mut app = new_app();
    let t = render(&mut app, 120, 40);
    insta::assert_snapshot!("first_frame_120x40", t.backend());
}

#[test]
fn setting_change_marker() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = new_app();
        run(&mut app, 45, Some(25_000));
        press(&mut app, KeyCode::Char('d'));
        let t = render(&mut app, w, h);
        let text = t.backend().to_string();
        assert!(text.contains("pool 2->10"), "{text}");
        insta::assert_snapshot!(format!("marker_{w}x{h}"), t.backend());
    }
}

#[test]
fn help_overlay() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = new_app();
        run(&mut app, 10, None);
        press(&mut app, KeyCode::Char('?'));
        let t = render(&mut app, w, h);
        let text = t.backend().to_string();
        for needle in ["drain", "drop", "hold", "pool", "PgUp", "Ctrl-C"] {
            assert!(
                text.contains(needle),
                "{needle} missing at {w}x{h}:\n{text}"
            );
        }
        insta::assert_snapshot!(format!("help_{w}x{h}"), t.backend());
    }
}

#[test]
fn degraded_and_too_small() {
    let mut app = new_app();
    run(&mut app, 10, None);
    press(&mut app, KeyCode::Char(' '));
    let t = render(&mut app, 60, 20);
    let text = t.backend().to_string();
    assert!(
        text.contains("TIME_WAIT") && !text.contains("last 60s"),
        "{text}"
    );
    insta::assert_snapshot!("compact_paused_60x20", t.backend());

    let t = render(&mut app, 40, 12);
    let text = t.backend().to_string();
    assert!(text.to_lowercase().contains("too small"), "{text}");
    insta::assert_snapshot!("too_small_40x12", t.backend());
}

#[test]
fn drawing_is_pure_and_repeatable() {
    let mut app = new_app();
    run(&mut app, 5, None);
    let a = render(&mut app, 120, 40).backend().to_string();
    let b = render(&mut app, 120, 40).backend().to_string();
    assert_eq!(a, b);
    // Any size from 1x1 up draws without panicking.
    for (w, h) in [
        (1, 1),
        (10, 3),
        (49, 40),
        (50, 15),
        (79, 23),
        (80, 24),
        (200, 60),
    ] {
        render(&mut app, w, h);
    }
    let _ = Duration::ZERO;
}

#[test]
fn scenario_step_marks_the_chart_and_shows_its_caption() {
    let mut app = new_app_with(Some(("tour".into(), "follow the captions".into())));
    let mut settings = Settings::default();
    for i in 1..=200u64 {
        let t_ms = i * 100;
        let mut s = template();
        s.t_ms = t_ms;
        s.listen = 2;
        s.requests_per_s = 1400.0;
        if t_ms >= 12_000 {
            // The step at 12 s: the engine put pool 10 in force and published its caption.
            settings.pool = 10;
            s.caption = Some("2/2 pool of 10: every connection reused".into());
            s.new_connections_per_s = 0.0;
            s.client.established = 10;
        } else {
            s.caption = Some("1/2 pool of 2: watch TIME_WAIT climb".into());
            s.new_connections_per_s = 600.0;
            s.client.time_wait = (i * 60) as u32;
        }
        s.settings = settings.clone();
        app.update(Event::Sample(Box::new(s)));
    }
    assert_eq!(
        app.settings().pool,
        10,
        "the model follows the engine's settings"
    );
    let t = render(&mut app, 120, 40);
    let text = format!("{:?}", t.backend());
    assert!(text.contains("pool 2->10"), "marker label");
    assert!(text.contains("2/2 pool of 10"), "caption");
    assert!(text.contains("scenario tour"), "header");
    insta::assert_snapshot!("scenario_step_120x40", t.backend());
}

#[test]
fn errors_by_kind_get_a_line_each() {
    let mut app = new_app();
    let mut s = template();
    s.t_ms = 100;
    s.errors_per_s = 50.0;
    s.errors_per_s_by_kind.insert("addr_not_available", 40.0);
    s.errors_per_s_by_kind.insert("connect_refused", 10.0);
    s.totals.errors = 5;
    app.update(Event::Sample(Box::new(s)));
    let t = render(&mut app, 120, 40);
    let text = format!("{:?}", t.backend());
    assert!(text.contains("  addr_not_available  40.0"), "{text}");
    assert!(text.contains("  connect_refused     10.0"), "{text}");
}
