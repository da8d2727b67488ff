use clap::Parser;
use jiebanke::config::{Cli, Config, Environment, Management, Role, ServeArgs, StaffCommand};
use jiebanke::{telemetry, Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Whatever the process makes (the database and its journal, keys, photos, their folders)
    // is its own alone: files 0600, folders 0700.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let (role, args) = match cli.command.into_parts() {
        Ok(parts) => parts,
        Err(Management::Demo(args)) => return demo(args).await,
        Err(Management::Staff(StaffCommand::Create { username, role: staff_role, args })) => {
            let config = Config::from_args(jiebanke::config::Role::Full, args)?;
            telemetry::init(config.log_format);
            let password = match std::env::var("JBK_STAFF_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password (12-128 characters), then Enter:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let e = jiebanke::app::create_staff(config, &username, &staff_role, &password).await?;
            println!("staff account {} ({}) made, user id {}", e.username, e.role.as_str(), e.user);
            println!("TOTP secret (shown once; add it to an authenticator app): {}", e.totp_secret);
            println!("{}", e.totp_uri);
            return Ok(());
        }
    };
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

/// `jiebanke demo`: refused in production; otherwise fills the store and says what to open.
async fn demo(args: ServeArgs) -> anyhow::Result<()> {
    if args.env == Environment::Production {
        anyhow::bail!("`jiebanke demo` is refused when JBK_ENV=production: it makes accounts anyone may log into with a dev login code (演示数据只用于开发环境)");
    }
    let config = Config::from_args(Role::Full, args)?;
    // The server's own info lines would bury the summary; RUST_LOG still wins.
    telemetry::init_with_default(config.log_format, "warn");
    let outcome = jiebanke::demo::run(config.clone()).await?;
    print!("{}", jiebanke::demo::summary(&config, outcome));
    Ok(())
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
