//! The `voxbridge` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use voxbridge_engine::app::{run_until_signal, Engine};
use voxbridge_engine::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "voxbridge",
    version,
    about = "A voice-bot engine that answers SIP calls"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer calls as a SIP endpoint until SIGINT/SIGTERM.
    Run {
        /// Configuration file (YAML).
        #[arg(short, long, default_value = "fixtures/config/voxbridge.yaml")]
        config: PathBuf,
    },
    /// Check a configuration file and print the first problem with its line.
    CheckConfig {
        /// Configuration file (YAML).
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { config } => {
            Config::load(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            init_logging(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let engine = Engine::start(config).await?;
                run_until_signal(engine).await;
                Ok(())
            })
        }
    }
}

fn init_logging(config: &Config) {
    // The SIP stack logs whole messages (phone numbers included) at info:
    // keep it at warn unless the operator asks for it by name.
    let directives = if config.log.level.contains("rsipstack") {
        config.log.level.clone()
    } else {
        format!("{},rsipstack=warn", config.log.level)
    };
    let filter =
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn"));
    // Colour codes only for a person at a terminal, never in files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
