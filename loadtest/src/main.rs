//! `jiebanke-loadtest`: see the library's documentation and `--help`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = jiebanke_loadtest::run(jiebanke_loadtest::Cli::parse()).await?;
    if !report.failures.is_empty() {
        eprintln!("FAILED checks:");
        for f in &report.failures {
            eprintln!("  - {f}");
        }
        std::process::exit(1);
    }
    Ok(())
}
