//! The last 60 s: one small chart per socket state (client as a solid braille line, server
//! as dots, so the sides differ without colour) and one for requests/s and new
//! connections/s, all on one time axis, with a labelled vertical marker for every setting
//! change so that cause and effect line up.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker as Dots;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use super::Theme;
use super::panels::{count, rate};
use crate::app::{App, Point, RATE_WINDOW_MS, WINDOW_MS};

/// Columns left of each graph for its scale.
const SCALE_WIDTH: u16 = 6;
/// Rows one chart needs: a title line and at least three graph rows.
const CHART_MIN_ROWS: u16 = 4;

#[derive(Clone, Copy, PartialEq)]
enum Which {
    State(usize),
    Rates,
}

pub(crate) fn draw(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(Span::styled(" last 60s ", theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 + CHART_MIN_ROWS || inner.width <= SCALE_WIDTH + 10 {
        return;
    }
    // A second row for marker labels when there are several, so nearby changes stay
    // readable; it costs a chart on small screens.
    let label_rows = if app.markers().nth(1).is_some() { 2 } else { 1 };
    // Which charts fit, most telling first; drawn in a fixed order.
    let fit = ((inner.height.saturating_sub(1 + label_rows) / CHART_MIN_ROWS).clamp(1, 4)) as usize;
    let priority = [
        Which::State(1),
        Which::Rates,
        Which::State(0),
        Which::State(2),
    ];
    let shown: Vec<Which> = [
        Which::State(0),
        Which::State(1),
        Which::State(2),
        Which::Rates,
    ]
    .into_iter()
    .filter(|w| priority[..fit].contains(w))
    .collect();

    let [labels, charts, axis] = Layout::vertical([
        Constraint::Length(label_rows),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let rows = Layout::vertical(vec![Constraint::Fill(1); shown.len()]).split(charts);
    let now = app.elapsed_ms();
    let graph_x = inner.x + SCALE_WIDTH;
    let graph_w = inner.width - SCALE_WIDTH;
    let mut graphs = Vec::new();
    for (which, row) in shown.iter().zip(rows.iter()) {
        graphs.push(draw_one(app, theme, frame, *which, *row, now));
    }
    draw_axis(theme, frame, axis, graph_x, graph_w);
    draw_markers(app, theme, frame, labels, &graphs, graph_x, graph_w, now);
}

/// Seconds before now (negative) of a sample time.
fn x_of(t_ms: u64, now: u64) -> f64 {
    -((now.saturating_sub(t_ms)) as f64 / 1000.0)
}

/// Rounds a maximum up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of
/// ten), so the scale reads easily and the lines still use most of the height.
fn nice_max(max: f64) -> f64 {
    if max <= 1.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

/// Requests/s and new connections/s over the trailing second at every point.
fn smoothed_rates(history: &[Point]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(history.len());
    let mut j = 0;
    for (i, p) in history.iter().enumerate() {
        while j < i && history[j + 1].t_ms + RATE_WINDOW_MS <= p.t_ms {
            j += 1;
        }
        let base = &history[j];
        let secs = p.t_ms.saturating_sub(base.t_ms) as f64 / 1000.0;
        if i == j || secs <= 0.0 {
            out.push((0.0, 0.0));
            continue;
        }
        let req = p.totals.requests.saturating_sub(base.totals.requests) as f64;
        let conns = p
            .totals
            .new_connections
            .saturating_sub(base.totals.new_connections) as f64;
        out.push((req / secs, conns / secs));
    }
    out
}

/// Draws one chart (title line, scale, graph) and returns its graph area.
fn draw_one(
    app: &App,
    theme: Theme,
    frame: &mut Frame,
    which: Which,
    area: Rect,
    now: u64,
) -> Rect {
    let [title_row, graph_row] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let [scale, graph] =
        Layout::horizontal([Constraint::Length(SCALE_WIDTH), Constraint::Fill(1)]).areas(graph_row);
    let history: Vec<Point> = app.history.iter().copied().collect();
    // Aligned titles where there is room; packed ones on narrow screens.
    let wide = area.width >= 60;
    type Series = Vec<(f64, f64)>;
    let (a, b, title, style_a, style_b): (Series, Series, Line, Style, Style) = match which {
        Which::State(i) => {
            let a: Vec<(f64, f64)> = history
                .iter()
                .map(|p| (x_of(p.t_ms, now), p.client[i] as f64))
                .collect();
            let b: Vec<(f64, f64)> = history
                .iter()
                .map(|p| (x_of(p.t_ms, now), p.server[i] as f64))
                .collect();
            let name = ["ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT"][i];
            let (c, s) = history
                .last()
                .map_or((0, 0), |p| (p.client[i], p.server[i]));
            let st = theme.state(i);
            let title = Line::from(vec![
                Span::styled(
                    format!("{name:<pad$} ", pad = if wide { 11 } else { 0 }),
                    st.add_modifier(ratatui::style::Modifier::BOLD),
                ),
                Span::styled("⠤⠤ client ", st),
                Span::raw(format!(
                    "{:<pad$}  ",
                    count(c as u64),
                    pad = if wide { 6 } else { 0 }
                )),
                Span::styled("•• server ", st),
                Span::raw(count(s as u64)),
            ]);
            (a, b, title, st, st)
        }
        Which::Rates => {
            let rates = smoothed_rates(&history);
            let a: Vec<(f64, f64)> = history
                .iter()
                .zip(&rates)
                .map(|(p, r)| (x_of(p.t_ms, now), r.0))
                .collect();
            let b: Vec<(f64, f64)> = history
                .iter()
                .zip(&rates)
                .map(|(p, r)| (x_of(p.t_ms, now), r.1))
                .collect();
            let (r, c) = rates.last().copied().unwrap_or_default();
            let sa = theme.fg(ratatui::style::Color::Cyan);
            let sb = theme.fg(ratatui::style::Color::Magenta);
            let title = Line::from(vec![
                Span::styled("⠤⠤ requests/s ", sa),
                Span::raw(format!(
                    "{:<pad$}  ",
                    rate(r),
                    pad = if wide { 6 } else { 0 }
                )),
                Span::styled("•• new conns/s ", sb),
                Span::raw(rate(c)),
            ]);
            (a, b, title, sa, sb)
        }
    };
    let max = a.iter().chain(b.iter()).map(|p| p.1).fold(0.0, f64::max);
    // A little headroom so a flat line at the maximum does not sit on the top edge.
    let top = nice_max(max * 1.1);
    frame.render_widget(Paragraph::new(title), title_row);
    let scale_lines: Vec<Line> = (0..scale.height)
        .map(|r| {
            if r == 0 {
                Line::raw(format!("{:>5}", count(top as u64)))
            } else if r + 1 == scale.height {
                Line::raw(format!("{:>5}", 0))
            } else {
                Line::raw("")
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(scale_lines).style(theme.dim()), scale);
    let line = Dataset::default()
        .marker(Dots::Braille)
        .graph_type(GraphType::Line)
        .style(style_a)
        .data(&a);
    let dots = Dataset::default()
        .marker(Dots::Dot)
        .graph_type(GraphType::Line)
        .style(style_b)
        .data(&b);
    // Where the two meet, the one drawn last stays visible. Client and server ESTABLISHED
    // are usually equal, so the client's line goes on top there; on the rates chart the
    // new-connection dots go on top, so the jump to "every request a new connection"
    // (dots on the requests line) shows.
    let datasets = match which {
        Which::Rates => vec![line, dots],
        Which::State(_) => vec![dots, line],
    };
    let window = WINDOW_MS as f64 / 1000.0;
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds([-window, 0.0]))
        .y_axis(Axis::default().bounds([0.0, top]));
    frame.render_widget(chart, graph);
    graph
}

fn column(t_ms: u64, now: u64, graph_x: u16, graph_w: u16) -> Option<u16> {
    let age = now.checked_sub(t_ms)?;
    if age > WINDOW_MS || graph_w == 0 {
        return None;
    }
    let frac = 1.0 - age as f64 / WINDOW_MS as f64;
    Some(graph_x + (frac * f64::from(graph_w - 1)).round() as u16)
}

fn draw_axis(theme: Theme, frame: &mut Frame, area: Rect, graph_x: u16, graph_w: u16) {
    let buf = frame.buffer_mut();
    let style = theme.dim();
    let y = area.y;
    buf.set_string(graph_x, y, "-60s", style);
    if graph_w > 20 {
        let mid = graph_x + (graph_w - 1) / 2;
        buf.set_string(mid.saturating_sub(1), y, "-30s", style);
    }
    let now_x = graph_x + graph_w.saturating_sub(3);
    buf.set_string(now_x, y, "now", style);
}

#[allow(clippy::too_many_arguments)]
fn draw_markers(
    app: &App,
    theme: Theme,
    frame: &mut Frame,
    labels: Rect,
    graphs: &[Rect],
    graph_x: u16,
    graph_w: u16,
    now: u64,
) {
    let style = theme.marker();
    let buf = frame.buffer_mut();
    let mut taken: Vec<(u16, u16, u16)> = Vec::new();
    for m in app.markers() {
        let Some(x) = column(m.t_ms, now, graph_x, graph_w) else {
            continue;
        };
        // The line goes only where the graph is blank, so no data point is hidden.
        for g in graphs {
            for y in g.y..g.bottom() {
                if let Some(cell) = buf.cell_mut((x, y))
                    && cell.symbol() == " "
                {
                    cell.set_symbol("┊").set_style(style);
                }
            }
        }
        let text = format!("▼{}", m.label);
        let w = text.chars().count() as u16;
        let right = graph_x + graph_w;
        // Near "now" the label ends at the line instead of starting there.
        let (start, text) = if x + w <= right {
            (x, text)
        } else {
            (
                (x + 1).saturating_sub(w).max(labels.x),
                format!("{}▼", m.label),
            )
        };
        let end = (start + w).min(right);
        // Newest markers are drawn last; each goes on the first label row where it does
        // not cover an earlier label, or over the last row if none is free.
        let row = (0..labels.height)
            .find(|r| {
                taken
                    .iter()
                    .all(|(tr, s0, e0)| *tr != *r || end <= *s0 || start >= *e0)
            })
            .unwrap_or(labels.height.saturating_sub(1));
        taken.push((row, start, end));
        buf.set_stringn(
            start,
            labels.y + row,
            &text,
            (right - start) as usize,
            style,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Totals;

    #[test]
    fn scale_tops_are_round_and_above_the_data() {
        for (max, want) in [
            (0.0, 1.0),
            (0.5, 1.0),
            (1.0, 1.0),
            (1.2, 1.5),
            (9.0, 10.0),
            (11.0, 15.0),
            (2600.0, 3000.0),
            (14_940.0, 15_000.0),
            (61_000.0, 80_000.0),
        ] {
            assert_eq!(nice_max(max), want, "{max}");
        }
    }

    #[test]
    fn smoothed_rates_use_the_trailing_second() {
        let history: Vec<Point> = (0..30u64)
            .map(|i| Point {
                t_ms: i * 100,
                totals: Totals {
                    requests: i * 50,
                    new_connections: i * 5,
                    ..Totals::default()
                },
                ..Point::default()
            })
            .collect();
        let r = smoothed_rates(&history);
        assert_eq!(r[0], (0.0, 0.0));
        // From 1 s on, 50 requests and 5 connections per 100 ms.
        for (req, conns) in &r[10..] {
            assert!((req - 500.0).abs() < 1e-9 && (conns - 50.0).abs() < 1e-9);
        }
    }

    #[test]
    fn marker_columns_span_the_graph() {
        assert_eq!(column(60_000, 60_000, 10, 61), Some(70));
        assert_eq!(column(0, 60_000, 10, 61), Some(10));
        assert_eq!(column(30_000, 60_000, 10, 61), Some(40));
        assert_eq!(column(0, 60_001, 10, 61), None, "older than the window");
        assert_eq!(column(61_000, 60_000, 10, 61), None, "in the future");
    }
}
