use clap::Parser;
use jiebanke::config::{Cli, Config};
use jiebanke::{telemetry, Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (role, args) = cli.command.into_parts();
    {
        {
            let config = Config::from_args(role, args)?;
            telemetry::init(config.log_format);
            raise_open_files();
            let app = Application::build(config).await?;
            let token = app.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("signal received, draining");
                token.cancel();
            });
            app.run().await
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Every session is a socket: raise the soft open-file limit to the hard one.
fn raise_open_files() {
    #[cfg(unix)]
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        tracing::info!(open_files = lim.rlim_cur, "open-file limit");
    }
}
