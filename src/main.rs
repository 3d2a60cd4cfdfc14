//! The `sockscope` binary: parse flags, pick a mode, run, and turn any failure into one
//! clear line and an exit code.

use std::process::ExitCode;

use sockscope::{Error, cli, engine::Engine, headless, tui};

fn main() -> ExitCode {
    let (cli, config) = match cli::parse(std::env::args_os()) {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(help)) => {
            print!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    sockscope::os::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&Error::Runtime(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    let result = runtime.block_on(async {
        if !cli.headless {
            tui::check_terminal()?;
            let engine = Engine::start(&config).await?;
            return tui::run(engine, &config).await;
        }
        let engine = Engine::start(&config).await?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let stop = async {
            // Without a signal handler Ctrl-C would kill the process before the summary.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        headless::run(engine, &config, &mut out, stop)
            .await
            .map(|_| tui::Exit::Quit)
    });
    // Held responses and idle connections may still have tasks; do not wait for them.
    runtime.shutdown_background();
    // The terminal is already restored here (the UI's guard), so this line is readable.
    match result {
        Ok(tui::Exit::Quit) => ExitCode::SUCCESS,
        Ok(tui::Exit::Signal(n)) => ExitCode::from((128 + n) as u8),
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("sockscope: {e}");
    ExitCode::from(e.exit_code() as u8)
}
