//! The numbers: socket states per side, and the throughput panel.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::Theme;
use crate::app::App;
use crate::sockets::TcpState;

/// Always shown, emphasized: the three states the story is about.
const MAIN_STATES: [TcpState; 3] = [
    TcpState::Established,
    TcpState::TimeWait,
    TcpState::CloseWait,
];

pub(crate) fn draw(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let table = state_lines(app, theme);
    let [top, bottom] = Layout::vertical([
        Constraint::Length(table.len() as u16 + 2),
        Constraint::Fill(1),
    ])
    .areas(area);
    let title = format!(" sockets on port {} ", app.info.port);
    frame.render_widget(
        Paragraph::new(table).block(Block::bordered().title(Span::styled(title, theme.title()))),
        top,
    );
    frame.render_widget(
        Paragraph::new(throughput_lines(app, theme))
            .block(Block::bordered().title(Span::styled(" throughput ", theme.title()))),
        bottom,
    );
}

fn state_lines(app: &App, theme: Theme) -> Vec<Line<'static>> {
    let (client, server, listen) = match &app.latest {
        Some(s) => (s.client, s.server, s.listen),
        None => Default::default(),
    };
    let mut lines = vec![Line::styled(
        format!(
            "{:<12}{:>8}{:>8}{:>8}",
            "state", "client", "server", "total"
        ),
        theme.dim(),
    )];
    let row = |state: TcpState| {
        let (c, s) = (client.get(state), server.get(state));
        format!("{:<12}{c:>8}{s:>8}{:>8}", state.label(), c + s)
    };
    for (i, state) in MAIN_STATES.iter().enumerate() {
        lines.push(Line::styled(
            row(*state),
            theme.state(i).add_modifier(Modifier::BOLD),
        ));
    }
    for state in TcpState::CONNECTION_STATES {
        if MAIN_STATES.contains(&state) {
            continue;
        }
        if client.get(state) + server.get(state) > 0 {
            lines.push(Line::raw(row(state)));
        }
    }
    lines.push(Line::styled(
        format!("LISTEN {listen} (server, apart)"),
        theme.dim(),
    ));
    lines
}

/// `1234.5` -> `1235`, `12.34` -> `12.3`, `0.25` -> `0.25`: a rate in at most 6 columns.
pub(crate) fn rate(x: f64) -> String {
    if x >= 100_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x == 0.0 {
        "0".to_owned()
    } else {
        format!("{x:.2}")
    }
}

/// `12345` -> `12.3k`: a count in few columns.
pub(crate) fn count(n: u64) -> String {
    if n >= 10_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}ms"),
        Some(v) => format!("{v:.2}ms"),
        None => "-".to_owned(),
    }
}

fn throughput_lines(app: &App, theme: Theme) -> Vec<Line<'static>> {
    let r = app.rates();
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<15}"), theme.dim()),
            Span::raw(v),
        ])
    };
    let reuse = match (r.reuse_ratio, r.requests_per_s > 0.0) {
        (Some(x), _) => format!("{x:.1} req per new conn"),
        (None, true) => "no new conns".to_owned(),
        (None, false) => "-".to_owned(),
    };
    let reused = match r.reused_pct {
        Some(p) => format!("{p:.1}% of responses"),
        None => "-".to_owned(),
    };
    let t = app.totals_since_reset();
    let (latency, errors) = match &app.latest {
        Some(s) => (
            format!("p50 {}  p99 {}", ms(s.latency_ms.p50), ms(s.latency_ms.p99)),
            format!("{} ({} since reset)", rate(s.errors_per_s), count(t.errors)),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    };
    let errors_line = if t.errors > 0 {
        Line::from(vec![
            Span::styled(format!("{:<15}", "errors/s"), theme.dim()),
            Span::styled(errors, theme.error()),
        ])
    } else {
        kv("errors/s", errors)
    };
    // One line per kind of error in the last sample, so none is cut off the panel's edge.
    let kinds = app
        .latest
        .iter()
        .flat_map(|s| s.errors_per_s_by_kind.iter())
        .map(|(kind, per_s)| {
            Line::from(vec![
                Span::styled(format!("  {kind:<20}"), theme.dim()),
                Span::styled(rate(*per_s), theme.error()),
            ])
        });
    let mut lines = vec![
        kv("requests/s", rate(r.requests_per_s)),
        kv("new conns/s", rate(r.new_connections_per_s)),
        kv("reuse", reuse),
        kv("reused", reused),
        kv("latency", latency),
        errors_line,
    ];
    lines.extend(kinds);
    lines.extend([
        kv(
            "kernel RST/s",
            format!(
                "{} ({} abort/close)",
                rate(r.resets_per_s),
                rate(r.aborts_per_s)
            ),
        ),
        kv("TW recycled/s", rate(r.tw_recycled_per_s)),
        kv(
            "since reset",
            format!(
                "{} req, {} conns",
                count(t.requests),
                count(t.new_connections)
            ),
        ),
    ]);
    lines
}
