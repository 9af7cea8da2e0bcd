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

use voxbridge_crm::outbox::DeliveryTarget;
use voxbridge_crm::CrmConfig;

const USAGE: &str = "usage: voxbridge-crm-outbox deliver --config FILE [--until-empty]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("deliver") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut config: Option<PathBuf> = None;
    let mut until_empty = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--until-empty" => until_empty = true,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(config) = config else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
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
