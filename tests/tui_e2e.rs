//! The real binary in a real terminal (tmux): keys change the workload and the controls bar
//! shows it, `q` exits 0 and SIGTERM exits 143, both leaving the alternate screen. Each
//! test has its own tmux server (`-L`), a port the OS picks, and deadlines on every wait.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_sockscope");

/// One private tmux server with one session; killed on drop, whatever happened.
struct Tmux {
    socket: String,
    status: PathBuf,
}

impl Tmux {
    /// None when tmux is not installed.
    fn start(tag: &str, args: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIPPED: tmux is not installed; the end-to-end TUI test needs it");
            return None;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let socket = format!("sockscope-e2e-{tag}-{}-{nanos}", std::process::id());
        let status = std::env::temp_dir().join(format!("{socket}.status"));
        let _ = std::fs::remove_file(&status);
        let t = Tmux { socket, status };
        // The shell writes the exit status, then stays so the restored screen can be read.
        let cmd = format!(
            "'{BIN}' {args}; echo $? > '{}'; sleep 60",
            t.status.display()
        );
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ]);
        assert!(out.status.success(), "tmux new-session failed: {out:?}");
        Some(t)
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "e2e"]).stdout).into()
    }

    fn keys(&self, key: &str) {
        let out = self.tmux(&["send-keys", "-t", "e2e", key]);
        assert!(out.status.success(), "send-keys {key}: {out:?}");
    }

    fn display(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "e2e", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Polls the screen until `pred` holds; panics with the last screen at the deadline.
    fn wait_screen(&self, what: &str, deadline: Duration, pred: impl Fn(&str) -> bool) {
        let end = Instant::now() + deadline;
        loop {
            let s = self.screen();
            if pred(&s) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_status(&self, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(s) = std::fs::read_to_string(&self.status)
                && !s.trim().is_empty()
            {
                return s.trim().to_owned();
            }
            assert!(
                Instant::now() < end,
                "the program did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_restored(&self) {
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.display("#{cursor_flag}"), "1", "cursor left hidden");
        let s = self.screen();
        assert!(!s.contains("sockets on port"), "UI left on screen:\n{s}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // kill-server can leave the socket file behind; remove it too.
        let socket = self.display("#{socket_path}");
        let _ = self.tmux(&["kill-server"]);
        if !socket.is_empty() {
            let _ = std::fs::remove_file(socket);
        }
        let _ = std::fs::remove_file(&self.status);
    }
}

/// A light workload so the test machine stays responsive.
const ARGS: &str = "--port 0 --workers 2 --think 5ms --server-delay 0ms --body-size 11B";

#[test]
fn keys_change_the_workload_and_q_exits_clean() {
    let Some(t) = Tmux::start("keys", ARGS) else {
        return;
    };
    let up = Duration::from_secs(60);
    t.wait_screen("the first screen", up, |s| {
        s.contains("pool 2") && s.contains("body drain") && s.contains("ESTABLISHED")
    });
    t.keys("Up");
    t.wait_screen("pool 3 after Up", up, |s| s.contains("pool 3"));
    t.keys("d");
    t.wait_screen("body drop after d", up, |s| s.contains("body drop"));
    // The change is marked on the charts.
    t.wait_screen("the marker", up, |s| s.contains("drain->drop"));
    t.keys("q");
    assert_eq!(t.wait_status(Duration::from_secs(20)), "0");
    t.assert_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some(t) = Tmux::start("term", ARGS) else {
        return;
    };
    t.wait_screen("the first screen", Duration::from_secs(60), |s| {
        s.contains("ESTABLISHED")
    });
    let shell = t.display("#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("read the shell's children");
    let pid = children.split_whitespace().next().expect("sockscope's pid");
    let killed = Command::new("kill")
        .args(["-TERM", pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(t.wait_status(Duration::from_secs(20)), "143");
    t.assert_restored();
}

#[test]
fn a_busy_port_is_one_line_on_an_untouched_terminal() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let Some(t) = Tmux::start("busy", &format!("--port {port}")) else {
        return;
    };
    assert_eq!(t.wait_status(Duration::from_secs(20)), "1");
    t.assert_restored();
    let screen = t.screen();
    let line = format!("sockscope: port {port} is already in use on 127.0.0.1");
    assert!(screen.contains(&line), "{screen}");
    // Nothing else was printed: the error line and the shell's silence.
    let printed: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(printed.len(), 1, "{screen}");
}
