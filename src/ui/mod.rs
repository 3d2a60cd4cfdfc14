//! Pure drawing: `draw(&App, &mut Frame)` reads the model and paints one frame. Nothing
//! here changes state, reads the clock or touches the terminal, so snapshot tests can
//! drive it with `TestBackend` and injected samples.

mod charts;
mod help;
mod panels;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, on_off};
use crate::config::{format_duration, format_size};

/// Below this the screen is one line asking for a larger terminal.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 15;
/// From this size on, the charts are shown beside the numbers.
pub const CHARTS_WIDTH: u16 = 80;
pub const CHARTS_HEIGHT: u16 = 24;
/// Width of the numbers column when the charts are shown.
const LEFT_WIDTH: u16 = 40;

/// Colours and emphasis. Without colour (`NO_COLOR`) the same screen is drawn with bold
/// and text alone; nothing is told by colour only.
#[derive(Clone, Copy)]
pub(crate) struct Theme {
    color: bool,
}

impl Theme {
    pub(crate) fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// ESTABLISHED, TIME_WAIT, CLOSE_WAIT.
    pub(crate) fn state(self, i: usize) -> Style {
        self.fg([Color::Green, Color::Yellow, Color::Red][i.min(2)])
    }

    pub(crate) fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn marker(self) -> Style {
        self.fg(Color::Magenta)
    }

    pub(crate) fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn dim(self) -> Style {
        if self.color {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new()
        }
    }

    pub(crate) fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// Paints the whole screen for `app` into `frame`.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let theme = Theme {
        color: app.info.color,
    };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let controls = controls_lines(app, theme, area.width);
    let notice_line = notice_line(app, theme);
    // A scenario's caption or watch text may take a second line; nothing else does.
    let notice_rows = if (notice_line.width() as u16) > area.width {
        2
    } else {
        1
    };
    let [header, body, bar, notice] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(controls.len() as u16),
        Constraint::Length(notice_rows),
    ])
    .areas(area);
    draw_header(app, theme, frame, header);
    if area.width >= CHARTS_WIDTH && area.height >= CHARTS_HEIGHT {
        let [left, right] =
            Layout::horizontal([Constraint::Length(LEFT_WIDTH), Constraint::Fill(1)]).areas(body);
        panels::draw(app, theme, frame, left);
        charts::draw(app, theme, frame, right);
    } else {
        panels::draw(app, theme, frame, body);
    }
    frame.render_widget(Paragraph::new(controls), bar);
    frame.render_widget(
        Paragraph::new(notice_line).wrap(ratatui::widgets::Wrap { trim: false }),
        notice,
    );
    if app.help {
        help::draw(theme, frame, area);
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let (w, h) = (area.width, area.height);
    let candidates = [
        format!(
            "Terminal too small ({w}x{h}): please enlarge it to {MIN_WIDTH}x{MIN_HEIGHT}. q quits"
        ),
        format!("Terminal too small ({w}x{h}): need {MIN_WIDTH}x{MIN_HEIGHT}. q quits"),
        format!("Too small ({w}x{h}): need {MIN_WIDTH}x{MIN_HEIGHT}"),
        format!("need {MIN_WIDTH}x{MIN_HEIGHT}"),
    ];
    let text = candidates
        .iter()
        .find(|c| c.chars().count() <= w as usize)
        .unwrap_or(&candidates[candidates.len() - 1]);
    let row = Rect::new(
        area.x,
        area.y + area.height / 2,
        area.width,
        1.min(area.height),
    );
    frame.render_widget(
        Paragraph::new(text.as_str()).alignment(Alignment::Center),
        row,
    );
}

/// `83_000` ms -> `00:01:23`.
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn draw_header(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let info = &app.info;
    let runs = match (info.server, info.client) {
        (true, true) => "server + client",
        (true, false) => "server only",
        (false, true) => "client only",
        (false, false) => "watching only",
    };
    let mut left = vec![Span::styled(" sockscope ", theme.title())];
    if app.settings.paused {
        left.push(Span::styled(
            " PAUSED ",
            theme.error().add_modifier(Modifier::REVERSED),
        ));
    }
    left.extend([
        Span::raw(format!(" port {} ", info.port)),
        Span::styled("│", theme.dim()),
        Span::raw(format!(" {} ", info.backend)),
        Span::styled("│", theme.dim()),
        Span::raw(format!(" {runs} ")),
        Span::styled("│", theme.dim()),
        Span::raw(format!(" up {} ", clock(app.elapsed_ms()))),
    ]);
    if let Some((name, _)) = &info.scenario {
        left.extend([
            Span::styled("│", theme.dim()),
            Span::styled(format!(" scenario {name} "), theme.key()),
        ]);
    }
    if app
        .latest
        .as_ref()
        .is_some_and(|s| s.backend_notice.is_some())
    {
        left.push(Span::styled(" (fallback) ", theme.error()));
    }
    let poll = match &app.latest {
        Some(s) => format!("poll {:.1}ms", s.poll_ms),
        None => "waiting for the first sample".to_owned(),
    };
    let left = Line::from(left);
    let used = left.width() as u16;
    frame.render_widget(Paragraph::new(left), area);
    // The right part only where it does not cover the left one; the poll time goes last.
    let right = [format!("{poll}  ? help  q quit "), format!("{poll} ")]
        .into_iter()
        .find(|r| used + r.chars().count() as u16 + 2 <= area.width);
    if let Some(right) = right {
        let width = right.chars().count() as u16;
        let r = Rect::new(area.right() - width, area.y, width, 1);
        frame.render_widget(Paragraph::new(right).style(theme.dim()), r);
    }
}

/// The controls bar: every setting beside its key, wrapped to as many lines as it needs.
fn controls_lines(app: &App, theme: Theme, width: u16) -> Vec<Line<'static>> {
    let s = &app.settings;
    let items: Vec<(&str, String)> = vec![
        ("d", format!("body {}", s.body)),
        ("↑↓", format!("pool {}", s.pool)),
        ("←→", format!("workers {}", s.workers)),
        ("[ ]", format!("think {}", format_duration(s.think))),
        ("b", format!("size {}", format_size(s.body_size))),
        ("k", format!("keep-alive {}", on_off(s.keepalive))),
        (
            "space",
            if s.paused { "PAUSED" } else { "running" }.to_owned(),
        ),
        ("r", "reset".to_owned()),
        ("?", "help".to_owned()),
        ("q", "quit".to_owned()),
    ];
    // `?` and `q` are also in the header; here they only fill room left on the last line.
    let optional_from = items.len() - 2;
    let mut lines = Vec::new();
    let mut line: Vec<Span<'static>> = vec![Span::raw(" ")];
    let mut used = 1usize;
    for (i, (key, text)) in items.into_iter().enumerate() {
        let w = key.chars().count() + 1 + text.chars().count();
        let fits = used + 2 + w <= width as usize;
        if i >= optional_from && !fits {
            break;
        }
        if used > 1 && !fits {
            lines.push(Line::from(std::mem::replace(
                &mut line,
                vec![Span::raw(" ")],
            )));
            used = 1;
        }
        if used > 1 {
            line.push(Span::raw("  "));
            used += 2;
        }
        let style = if text == "PAUSED" {
            theme.error()
        } else {
            Style::new()
        };
        line.push(Span::styled(key.to_owned(), theme.key()));
        line.push(Span::styled(format!(" {text}"), style));
        used += w;
    }
    lines.push(Line::from(line));
    lines
}

fn notice_line(app: &App, theme: Theme) -> Line<'static> {
    match app.notice() {
        Some(n) if n.error => Line::from(vec![
            Span::styled(" error: ", theme.error()),
            Span::raw(n.text.clone()),
        ]),
        Some(n) => Line::from(vec![Span::raw(" > "), Span::raw(n.text.clone())]),
        // A scenario speaks for itself: its step caption, else what to watch for.
        None => match (&app.caption, &app.info.scenario) {
            (Some(caption), _) => Line::from(vec![
                Span::styled(" ▶ ", theme.key()),
                Span::raw(caption.clone()),
            ]),
            (None, Some((_, watch))) => Line::from(vec![
                Span::styled(" watch: ", theme.key()),
                Span::raw(watch.clone()),
            ]),
            (None, None) => Line::styled(
                " Try Up until pool >= workers: TIME_WAIT stops rising.  ? explains every key",
                theme.dim(),
            ),
        },
    }
}
