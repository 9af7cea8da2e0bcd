//! Delivers a voxbridge outbox without the engine: reads a `crm:`
//! configuration file, builds its connectors and runs the outbox worker.
//!
//! Useful to drain an outbox after the engine was retired, and what the
//! crash tests kill with `kill -9` in the middle of deliveries.
//!
//! ```text
//! voxbridge-crm-outbox deliver --config crm.yaml [--until-empty]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use voxbridge_crm::outbox::DeliveryTarget;
use voxbridge_crm::CrmConfig;

/// Delivers a voxbridge CRM outbox without the engine.
#[derive(Debug, Parser)]
#[command(name = "voxbridge-crm-outbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deliver the outbox named by a CRM configuration.
    Deliver {
        /// The CRM configuration file (its `outbox.path` is the outbox).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Stop once nothing is pending, instead of at Ctrl-C.
        #[arg(long)]
        until_empty: bool,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with 2, `--help` and `--version` with 0 (clap's
    // conventions).
    let Command::Deliver {
        config,
        until_empty,
    } = Cli::parse().command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voxbridge-crm-outbox: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, until_empty)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxbridge-crm-outbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf, until_empty: bool) -> Result<(), String> {
    let config = CrmConfig::load(&path).map_err(|e| e.to_string())?;
    let bridge = config.build_bridge().map_err(|e| e.to_string())?;
    let outbox = config.open_outbox().map_err(|e| e.to_string())?;
    let target: Arc<dyn DeliveryTarget> = Arc::new(bridge);
    let watcher = outbox.clone();
    let stop = async move {
        if until_empty {
            loop {
                match watcher.counts().await {
                    Ok(c) if c.pending == 0 => return,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    outbox
        .run(target, stop, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let counts = outbox.counts().await.map_err(|e| e.to_string())?;
    println!(
        "outbox: {} delivered, {} pending, {} dead",
        counts.delivered, counts.pending, counts.dead
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("voxbridge-crm-outbox").chain(args.iter().copied()))
    }

    #[test]
    fn deliver_with_a_config() {
        let Command::Deliver {
            config,
            until_empty,
        } = parse(&["deliver", "--config", "crm.yaml", "--until-empty"])
            .expect("parses")
            .command;
        assert_eq!((config, until_empty), (PathBuf::from("crm.yaml"), true));
    }

    // The hand-written parser refused `--config=FILE`, answered `--help`
    // with the usage as an error (exit 2), and had no `--version`.
    #[test]
    fn forms_the_old_parser_got_wrong() {
        let Command::Deliver { config, .. } = parse(&["deliver", "--config=crm.yaml"])
            .expect("--config=FILE")
            .command;
        assert_eq!(config, PathBuf::from("crm.yaml"));
        for (args, kind) in [
            (&["--help"][..], ErrorKind::DisplayHelp),
            (&["deliver", "--help"][..], ErrorKind::DisplayHelp),
            (&["--version"][..], ErrorKind::DisplayVersion),
        ] {
            let err = parse(args).expect_err("not a run");
            assert_eq!(err.kind(), kind, "{args:?}");
            assert_eq!(err.exit_code(), 0, "{args:?}");
        }
    }

    #[test]
    fn usage_errors() {
        for (args, kind) in [
            (&[][..], ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand),
            (&["deliver"][..], ErrorKind::MissingRequiredArgument),
            (&["deliver", "--config"][..], ErrorKind::InvalidValue),
            (
                &["deliver", "--config", "a", "--bogus"][..],
                ErrorKind::UnknownArgument,
            ),
            (&["drain"][..], ErrorKind::InvalidSubcommand),
        ] {
            let err = parse(args).expect_err("usage error");
            assert_eq!(err.kind(), kind, "{args:?}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
