//! Keys to actions: the one place that knows which key does what. `App::update` works on
//! actions, so tests and the help overlay never depend on crossterm's key encoding.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `d`: body mode drain -> drop -> hold -> drain.
    CycleBody,
    /// `Up`/`Down` (±1), `PgUp`/`PgDn` (±10): idle pool size, floor 0.
    Pool(i64),
    /// `Left`/`Right`: workers -1/+1, floor 1.
    Workers(i64),
    /// `[`: think time one step down.
    ThinkDown,
    /// `]`: think time one step up.
    ThinkUp,
    /// `b`: body size 11B -> 8KiB -> 64KiB -> 1MiB -> 11B.
    CycleBodySize,
    /// `k`: server keep-alive on/off.
    ToggleKeepalive,
    /// `space`: pause/resume the client.
    TogglePause,
    /// `r`: reset counters and charts.
    Reset,
    /// `?`: open/close the help overlay.
    ToggleHelp,
    /// `Esc`: close the overlay, or quit when none is open.
    Back,
    /// `q`, `Ctrl-C`.
    Quit,
}

/// The key bindings, for the help overlay: keys, then what they do.
pub const BINDINGS: [(&str, &str); 12] = [
    ("d", "body mode: drain -> drop -> hold"),
    ("Up / Down", "idle pool size +1 / -1 (floor 0)"),
    ("PgUp / PgDn", "idle pool size +10 / -10 (floor 0)"),
    ("Left / Right", "workers -1 / +1 (floor 1)"),
    ("[ / ]", "think time down / up: 0 1 2 5 10 20 50 100ms 1s"),
    ("b", "response body size: 11B 8KiB 64KiB 1MiB"),
    ("k", "server keep-alive on / off"),
    ("space", "pause / resume the client"),
    ("r", "reset counters and charts"),
    ("?", "this help (? or Esc closes it)"),
    ("q / Ctrl-C", "quit"),
    ("Esc", "close help, or quit"),
];

/// The action for a key press; `None` for keys sockscope does not use and for key releases
/// (terminals that report them would otherwise apply every change twice).
pub fn from_key(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('C') => Some(Action::Quit),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('d') => Action::CycleBody,
        KeyCode::Up => Action::Pool(1),
        KeyCode::Down => Action::Pool(-1),
        KeyCode::PageUp => Action::Pool(10),
        KeyCode::PageDown => Action::Pool(-10),
        KeyCode::Left => Action::Workers(-1),
        KeyCode::Right => Action::Workers(1),
        KeyCode::Char('[') => Action::ThinkDown,
        KeyCode::Char(']') => Action::ThinkUp,
        KeyCode::Char('b') => Action::CycleBodySize,
        KeyCode::Char('k') => Action::ToggleKeepalive,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('r') => Action::Reset,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_documented_key_maps() {
        for (code, want) in [
            (KeyCode::Char('d'), Action::CycleBody),
            (KeyCode::Up, Action::Pool(1)),
            (KeyCode::Down, Action::Pool(-1)),
            (KeyCode::PageUp, Action::Pool(10)),
            (KeyCode::PageDown, Action::Pool(-10)),
            (KeyCode::Left, Action::Workers(-1)),
            (KeyCode::Right, Action::Workers(1)),
            (KeyCode::Char('['), Action::ThinkDown),
            (KeyCode::Char(']'), Action::ThinkUp),
            (KeyCode::Char('b'), Action::CycleBodySize),
            (KeyCode::Char('k'), Action::ToggleKeepalive),
            (KeyCode::Char(' '), Action::TogglePause),
            (KeyCode::Char('r'), Action::Reset),
            (KeyCode::Char('?'), Action::ToggleHelp),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Char('q'), Action::Quit),
        ] {
            assert_eq!(from_key(key(code)), Some(want), "{code:?}");
        }
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(from_key(ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn other_keys_and_releases_do_nothing() {
        assert_eq!(from_key(key(KeyCode::Char('x'))), None);
        assert_eq!(from_key(key(KeyCode::Char('c'))), None);
        let ctrl_d = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(from_key(ctrl_d), None);
        let mut release = key(KeyCode::Up);
        release.kind = KeyEventKind::Release;
        assert_eq!(from_key(release), None);
    }
}
