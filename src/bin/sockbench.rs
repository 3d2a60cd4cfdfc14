//! sockbench: what one poll of the socket table costs with each backend, beside an `ss`
//! process given the same kernel filter, at 1k, 10k and 25k TIME_WAIT sockets on the
//! watched port, and with 25k TIME_WAIT on another port and a few on the watched one.
//! Also the whole sampler (read + counters + sample assembly) at about 1k sockets.
//!
//! `cargo run --release --bin sockbench` (Linux). Loopback only; it builds its sockets
//! in a few seconds and stops by itself well inside the 60 s a TIME_WAIT lives.

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("sockbench: Linux only (it compares netlink, procfs and ss)");
}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    match bench::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockbench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
mod bench {
    use std::io::{self, Read};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use socket2::{Domain, Socket, Type};
    use sockscope::config::Settings;
    use sockscope::sampler::Sampler;
    use sockscope::sockets::netlink::NetlinkSource;
    use sockscope::sockets::netstat2::Netstat2Source;
    use sockscope::sockets::procfs::ProcfsSource;
    use sockscope::sockets::{SocketSource, classify};
    use sockscope::workload::stats::Stats;

    /// Client sockets per source address: far below the ~14k TIME_WAITs one
    /// source/destination pair can hold before the kernel recycles them.
    const BATCH: usize = 500;
    /// Polls per backend and step, unless `STEP_BUDGET` runs out first (slow backends).
    const POLLS: usize = 100;
    const MIN_POLLS: usize = 10;
    const STEP_BUDGET: Duration = Duration::from_millis(1500);
    /// The first TIME_WAITs expire 60 s after they were made; a step that would start
    /// later than this is skipped rather than measured on a shrinking population.
    const LAST_STEP_START: Duration = Duration::from_secs(40);

    fn io_err(what: &str, e: io::Error) -> String {
        format!("{what}: {e}")
    }

    /// Makes `n` client-side TIME_WAIT sockets towards `listener`: each batch of clients
    /// binds a fresh 127.x.y.z source with IP_BIND_ADDRESS_NO_PORT (the port is picked at
    /// connect, per destination), connects, is accepted, and closes before its server.
    fn add_time_waits(listener: &TcpListener, n: usize, next_src: &mut u32) -> Result<(), String> {
        let dst = listener.local_addr().map_err(|e| io_err("listener", e))?;
        let mut left = n;
        while left > 0 {
            let batch = left.min(BATCH);
            *next_src += 1;
            // 127.1.0.0/16 and up: loopback, never the 127.0.0.1 other programs use.
            let src = Ipv4Addr::from(0x7f01_0000 + *next_src);
            let mut clients = Vec::with_capacity(batch);
            let mut servers = Vec::with_capacity(batch);
            for _ in 0..batch {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None)
                    .map_err(|e| io_err("socket", e))?;
                sockscope::os::set_socket_option(
                    &s,
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    1 as libc::c_int,
                )
                .map_err(|e| io_err("IP_BIND_ADDRESS_NO_PORT", e))?;
                s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())
                    .map_err(|e| io_err(&format!("bind {src}"), e))?;
                s.connect(&dst.into())
                    .map_err(|e| io_err(&format!("connect {src} -> {dst}"), e))?;
                let (server, _) = listener.accept().map_err(|e| io_err("accept", e))?;
                clients.push(TcpStream::from(s));
                servers.push(server);
            }
            // Clients close first (their FIN is handled before close returns on loopback),
            // so the TIME_WAIT stays on the client side.
            drop(clients);
            drop(servers);
            left -= batch;
        }
        Ok(())
    }

    struct Stat {
        p50: f64,
        p99: f64,
        /// CPU time (user + system) of one poll: contention for the 2 cores of a busy
        /// machine inflates it far less than wall time.
        cpu_p50: f64,
        polls: usize,
        /// Client-side TIME_WAIT and all sockets on the port the last poll saw.
        seen: (u32, usize),
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn timeval_ms(t: libc::timeval) -> f64 {
        t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0
    }

    /// CPU time in ms of this thread (exact, from the thread clock; getrusage's is in
    /// scheduler ticks) plus that of its waited-for children (the ss processes).
    fn cpu_ms() -> f64 {
        let mut total = 0.0;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills in the timespec it is given.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            total += ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6;
        }
        // SAFETY: getrusage fills in the zeroed struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `ru` outlives the call.
        if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } == 0 {
            total += timeval_ms(ru.ru_utime) + timeval_ms(ru.ru_stime);
        }
        total
    }

    fn measure(mut poll: impl FnMut() -> Result<(u32, usize), String>) -> Result<Stat, String> {
        for _ in 0..3 {
            poll()?;
        }
        let start = Instant::now();
        let mut ms = Vec::with_capacity(POLLS);
        let mut cpu = Vec::with_capacity(POLLS);
        let mut seen = (0, 0);
        while ms.len() < POLLS && (ms.len() < MIN_POLLS || start.elapsed() < STEP_BUDGET) {
            let c = cpu_ms();
            let t = Instant::now();
            seen = poll()?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            cpu.push(cpu_ms() - c);
        }
        ms.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        Ok(Stat {
            p50: percentile(&ms, 0.5),
            p99: percentile(&ms, 0.99),
            cpu_p50: percentile(&cpu, 0.5),
            polls: ms.len(),
            seen,
        })
    }

    fn backend_poll<'a>(
        source: &'a mut dyn SocketSource,
        port: u16,
    ) -> impl FnMut() -> Result<(u32, usize), String> + 'a {
        let mut rows = Vec::new();
        move || {
            source
                .snapshot(port, &mut rows)
                .map_err(|e| e.to_string())?;
            Ok((classify(&rows, port).client.time_wait, rows.len()))
        }
    }

    /// One `ss` process with the kernel filter, its output read to the end as a user's
    /// script would.
    fn ss_poll(port: u16) -> impl FnMut() -> Result<(u32, usize), String> {
        let filter = format!("( sport = :{port} or dport = :{port} )");
        move || {
            let mut child = Command::new("ss")
                .args(["-tanH", &filter])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| io_err("cannot run ss", e))?;
            let mut text = String::new();
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut text)
                    .map_err(|e| io_err("ss output", e))?;
            }
            child.wait().map_err(|e| io_err("ss", e))?;
            let tw = text
                .lines()
                .filter(|l| l.starts_with("TIME-WAIT"))
                .filter(|l| {
                    l.split_whitespace()
                        .nth(4)
                        .is_some_and(|a| a.ends_with(&format!(":{port}")))
                })
                .count();
            Ok((tw as u32, text.lines().count()))
        }
    }

    fn step(name: &str, port: u16, have_ss: bool) -> Result<Vec<(&'static str, Stat)>, String> {
        let mut netlink = NetlinkSource::new().map_err(|e| e.to_string())?;
        let mut procfs = ProcfsSource::new();
        let mut netstat2 = Netstat2Source::new();
        let mut out = vec![
            ("netlink", measure(backend_poll(&mut netlink, port))?),
            ("procfs", measure(backend_poll(&mut procfs, port))?),
            ("netstat2", measure(backend_poll(&mut netstat2, port))?),
        ];
        if have_ss {
            out.push(("ss", measure(ss_poll(port))?));
        }
        let ss_p50 = out.iter().find(|(n, _)| *n == "ss").map(|(_, s)| s.p50);
        println!("\n{name}");
        let ss_cpu = out.iter().find(|(n, _)| *n == "ss").map(|(_, s)| s.cpu_p50);
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".to_string(), |b| format!("{:.3}", a / b));
        println!(
            "  {:<9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>6} {:>10} {:>8}",
            "backend",
            "p50 ms",
            "p99 ms",
            "p50/ss",
            "cpu50 ms",
            "cpu/ss",
            "polls",
            "client TW",
            "rows"
        );
        for (backend, s) in &out {
            println!(
                "  {:<9} {:>9.3} {:>9.3} {:>8} {:>9.3} {:>8} {:>6} {:>10} {:>8}",
                backend,
                s.p50,
                s.p99,
                ratio(s.p50, ss_p50),
                s.cpu_p50,
                ratio(s.cpu_p50, ss_cpu),
                s.polls,
                s.seen.0,
                s.seen.1
            );
        }
        Ok(out)
    }

    /// The whole sampler, as the engine runs it every interval.
    fn sampler_cost(port: u16) -> Result<Stat, String> {
        let source = NetlinkSource::new().map_err(|e| e.to_string())?;
        let (_tx, settings) = tokio::sync::watch::channel(Settings::default());
        let start = Instant::now();
        let mut sampler = Sampler::new(
            Box::new(source),
            port,
            Arc::new(Stats::default()),
            settings,
            start,
        );
        measure(|| {
            let s = sampler.sample(Instant::now());
            if let Some(e) = s.socket_error {
                return Err(e);
            }
            Ok((s.client.time_wait, 0))
        })
    }

    pub fn run() -> Result<(), String> {
        let began = Instant::now();
        let have_ss = Command::new("ss").arg("-V").output().is_ok();
        if !have_ss {
            println!("ss is not installed: no ss column");
        }
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| io_err("bind", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| io_err("listener", e))?
            .port();
        println!("sockbench: port {port}, loopback; p50/p99 over up to {POLLS} polls per cell");
        let mut next_src = 0;
        let mut made = 0;
        let mut results = Vec::new();
        let late = |began: Instant| {
            let late = began.elapsed() > LAST_STEP_START;
            if late {
                println!(
                    "\nstopping early: {:.0} s since the first TIME_WAIT, the machine is too busy",
                    began.elapsed().as_secs_f64()
                );
            }
            late
        };
        for target in [1_000, 10_000, 25_000] {
            if late(began) {
                return Ok(());
            }
            add_time_waits(&listener, target - made, &mut next_src)?;
            made = target;
            let name = format!(
                "{target} TIME_WAIT on the port (t = {:.1} s)",
                began.elapsed().as_secs_f64()
            );
            results.push((target, step(&name, port, have_ss)?));
            if target == 1_000 {
                let s = sampler_cost(port)?;
                println!(
                    "  whole sampler (netlink read + counters + sample): p50 {:.3} ms, p99 {:.3} ms, cpu p50 {:.3} ms over {} samples",
                    s.p50, s.p99, s.cpu_p50, s.polls
                );
            }
        }
        // The 25k above are now the unrelated sockets: watch a fresh port with a few.
        if late(began) {
            return Ok(());
        }
        let few = TcpListener::bind("127.0.0.1:0").map_err(|e| io_err("bind", e))?;
        let few_port = few.local_addr().map_err(|e| io_err("listener", e))?.port();
        add_time_waits(&few, 10, &mut next_src)?;
        let name = format!(
            "unrelated: 25000 TIME_WAIT on another port, 10 on the port (t = {:.1} s)",
            began.elapsed().as_secs_f64()
        );
        step(&name, few_port, have_ss)?;

        if let Some((_, cells)) = results.iter().find(|(t, _)| *t == 25_000) {
            let get = |n: &str| cells.iter().find(|(b, _)| *b == n).map(|(_, s)| s);
            println!();
            for other in ["procfs", "ss"] {
                if let (Some(nl), Some(o)) = (get("netlink"), get(other)) {
                    println!(
                        "at 25k: netlink is {:.1}x faster than {other} (p50 wall), {:.1}x (p50 cpu)",
                        o.p50 / nl.p50,
                        o.cpu_p50 / nl.cpu_p50
                    );
                }
            }
        }
        println!("done in {:.1} s", began.elapsed().as_secs_f64());
        Ok(())
    }
}
