//! The `?` overlay: every key, and one line each on what the body modes, the pool size and
//! keep-alive do (DESIGN.md's measured facts).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::Theme;
use crate::action::BINDINGS;

/// One line each, short enough (<= 60 columns) to stay one line on an 80-column screen.
const EXPLAIN: [(&str, &str); 6] = [
    (
        "drain",
        "read each body to its end; the conn returns to the pool",
    ),
    (
        "drop",
        "unread: hyper reads what arrived (8-400KiB), closes if more",
    ),
    (
        "hold",
        "keep it unread (--hold) like an unclosed Go body: conn busy",
    ),
    (
        "pool",
        "idle conns kept (Go: 2); < workers -> client TIME_WAIT churn",
    ),
    (
        "keep-alive",
        "off: server closes each conn, TIME_WAIT moves to the server",
    ),
    (
        "kernel",
        "RST/s, abort/close, TW recycled: whole host, not this port",
    ),
];

pub(crate) fn draw(theme: Theme, frame: &mut Frame, area: Rect) {
    let mut lines = vec![Line::styled("Keys", theme.title())];
    for (key, what) in BINDINGS {
        lines.push(Line::from(vec![
            Span::styled(format!("  {key:<14}"), theme.key()),
            Span::raw(what),
        ]));
    }
    lines.push(Line::styled("What they do", theme.title()));
    for (name, what) in EXPLAIN {
        lines.push(Line::from(vec![
            Span::styled(format!("  {name:<12}"), theme.title()),
            Span::raw(what),
        ]));
    }
    let width = area.width.saturating_sub(4).min(80);
    let inner_width = width.saturating_sub(2);
    // Rows after wrapping, with one spare per wrapped line since words do not split evenly.
    let rows: usize = lines
        .iter()
        .map(|l| {
            let w = l.width().max(1);
            let n = w.div_ceil(inner_width.max(1) as usize);
            if n > 1 { n + 1 } else { 1 }
        })
        .sum();
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let height = (rows as u16 + 2).min(area.height.saturating_sub(2));
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        paragraph
            .block(Block::bordered().title(Span::styled(" help: ? or Esc closes ", theme.title()))),
        popup,
    );
}
