//! The `sockscope` binary: parse flags, pick a mode, run, and turn any failure into one
//! clear line and an exit code.

use std::process::ExitCode;

use sockscope::{Error, cli, engine::Engine, headless};

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
            return Err(Error::usage(
                "the terminal UI is not built yet; run headless instead, e.g. `sockscope --headless --duration 10s`",
            ));
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
        headless::run(engine, &config, &mut out, stop).await
    });
    // Held responses and idle connections may still have tasks; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("sockscope: {e}");
    ExitCode::from(e.exit_code() as u8)
}
