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
    /// Validate dialog scripts; prints every problem with file:line:column.
    Check {
        /// Script files (YAML).
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
        /// Intent label list (one per line) the scripts' intents must come from.
        #[arg(long)]
        intents: Option<PathBuf>,
    },
    /// Draw a dialog script as Graphviz DOT, Mermaid or SVG (needs `dot`).
    Graph {
        script: PathBuf,
        /// dot, mermaid or svg.
        #[arg(long, default_value = "dot")]
        format: String,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Talk to a dialog script in text: lines are caller speech, `#123` keys, `/silence` no input.
    Chat {
        script: PathBuf,
        /// Customer id or phone number from the demo data.
        #[arg(long)]
        customer: Option<String>,
        /// Demo CRM data (default fixtures/dialog/demo-crm.yaml).
        #[arg(long)]
        data: Option<PathBuf>,
        /// en or zh.
        #[arg(long)]
        language: Option<String>,
        /// The date "today" means, YYYY-MM-DD.
        #[arg(long)]
        today: Option<String>,
    },
    /// Run conversation tests (files or folders of YAML test files).
    TestDialog {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The model files voxbridge loads, and fetching whisper models.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Inspect and repair the durable CRM outbox.
    Outbox {
        /// The outbox database (the `outbox.path` of the CRM configuration).
        #[arg(long, global = true, default_value = "var/outbox.sqlite")]
        db: PathBuf,
        /// The CRM configuration instead: its `storage.url` (the shared
        /// PostgreSQL, every node's records) or else its `outbox.path`.
        #[arg(long, global = true, value_name = "FILE")]
        crm_config: Option<PathBuf>,
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Place a scripted test call to a bot and print the transcript live.
    ///
    /// Steps run in order once the call is answered: wait:1.5s, quiet (the
    /// bot finished its turn), wav:FILE, keys:1001#, say:TEXT, hangup.
    /// Without hangup, the call runs until the bot hangs up or the timeout.
    Call {
        /// The bot's SIP URI, e.g. sip:bot@127.0.0.1:5060.
        #[arg(value_parser = voxbridge_engine::test_call::parse_target)]
        target: String,
        /// Steps of the caller's script.
        #[arg(value_name = "STEP", value_parser = voxbridge_engine::test_call::parse_step)]
        steps: Vec<voxbridge_engine::test_call::Step>,
        /// Caller number (From user part), for the bot's CRM lookup.
        #[arg(long, value_name = "NUMBER", value_parser = voxbridge_engine::test_call::parse_caller)]
        from: Option<String>,
        /// Local SIP address (port 0: any free port).
        #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
        /// RTP port range, MIN-MAX.
        #[arg(long, value_name = "MIN-MAX", default_value = "40000-40999", value_parser = voxbridge_engine::test_call::parse_port_range)]
        rtp_ports: (u16, u16),
        /// Write the bot's audio to this WAV file (8 kHz mono 16-bit).
        #[arg(long, value_name = "FILE.wav")]
        record: Option<PathBuf>,
        /// The bot's admin HTTP address (HOST:PORT), for its side of the transcript.
        #[arg(long, value_name = "HOST:PORT", value_parser = voxbridge_engine::test_call::parse_admin)]
        admin: Option<String>,
        /// Whole-call limit in seconds (or 90s, 2m); then BYE and exit non-zero.
        #[arg(long, value_name = "SECS", default_value = "120", value_parser = voxbridge_engine::test_call::parse_timeout)]
        timeout: std::time::Duration,
        /// Offer only this codec: pcmu or pcma (default: both).
        #[arg(long, value_name = "pcmu|pcma", value_parser = voxbridge_engine::test_call::parse_codec)]
        codec: Option<voxbridge_media::Codec>,
        /// How keys are sent: rfc4733 or info.
        #[arg(long, value_name = "rfc4733|info", default_value = "rfc4733", value_parser = voxbridge_engine::test_call::parse_dtmf_mode)]
        dtmf: voxbridge_engine::test_call::DtmfMode,
    },
    /// Place one call through a running engine (its admin `POST /calls`) and print how it ended.
    Dial {
        /// E.164 number (with --via) or a SIP URI (dialled directly).
        number: String,
        /// The script the answered call runs (a path the engine can read).
        #[arg(long)]
        script: PathBuf,
        /// A registration account's name to call through.
        #[arg(long)]
        via: Option<String>,
        /// From / P-Asserted-Identity number.
        #[arg(long)]
        caller_id: Option<String>,
        /// The contact's CRM customer id.
        #[arg(long)]
        customer: Option<String>,
        /// An extra field for the script, NAME=VALUE (repeatable).
        #[arg(long = "field", value_name = "NAME=VALUE")]
        fields: Vec<String>,
        /// CANCEL after this many seconds without an answer.
        #[arg(long, default_value_t = 25)]
        ring_timeout: u64,
        /// The engine's admin HTTP address.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9060")]
        admin: String,
    },
    /// Transcribe WAV recordings with the on-box recognisers, optionally through a phone line first.
    Transcribe {
        #[arg(required = true, value_name = "FILE.wav")]
        files: Vec<PathBuf>,
        /// whisper (free speech) or grammar (PocketSphinx with --phrase/--yes-no/--digits).
        #[arg(long, default_value = "whisper", value_parser = |s: &str| s.parse::<voxbridge_engine::transcribe::EngineKind>())]
        engine: voxbridge_engine::transcribe::EngineKind,
        /// Pass the audio through 8 kHz G.711 first (pcmu, pcma), or none.
        #[arg(long, default_value = "none", value_parser = |s: &str| s.parse::<voxbridge_engine::transcribe::Phone>())]
        phone: voxbridge_engine::transcribe::Phone,
        /// en, or zh (multilingual whisper models only).
        #[arg(long, default_value = "en")]
        language: String,
        /// The ggml whisper model (default: the one the install step converts).
        #[arg(long, value_name = "FILE.bin")]
        model: Option<PathBuf>,
        /// whisper.cpp threads.
        #[arg(long, default_value = "1")]
        threads: usize,
        /// A fixed whisper encoder window (50 per second of audio, 64–1500); default: 512, more for files longer than 10 s (as in calls).
        #[arg(long)]
        audio_ctx: Option<i32>,
        /// A phrase the grammar accepts (repeat the option for more).
        #[arg(long = "phrase", value_name = "TEXT")]
        phrases: Vec<String>,
        /// The grammar also accepts yes and no.
        #[arg(long)]
        yes_no: bool,
        /// The grammar also accepts 1–12 spoken digits.
        #[arg(long)]
        digits: bool,
    },
    /// Outbound campaigns on the running engine (docs/campaigns.md).
    Campaign {
        /// The engine's admin HTTP address (HOST:PORT).
        #[arg(
            long,
            global = true,
            value_name = "HOST:PORT",
            default_value = "127.0.0.1:9060"
        )]
        admin: String,
        #[command(subcommand)]
        action: CampaignAction,
    },
    /// Read the call records (CDR) the engine wrote.
    Calls {
        /// Configuration file naming the database (`cdr.path`, or
        /// `storage.url` in the CRM configuration it names).
        #[arg(
            short,
            long,
            global = true,
            default_value = "fixtures/config/voxbridge.yaml"
        )]
        config: PathBuf,
        #[command(subcommand)]
        action: CallsAction,
    },
    /// The operator console's helpers (docs/console.md).
    Console {
        #[command(subcommand)]
        action: ConsoleAction,
    },
}

#[derive(Subcommand)]
enum ConsoleAction {
    /// Read a password from stdin (one line) and print its argon2 hash for
    /// `console.users[].password_hash`.
    HashPassword,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Every model file: path, size, sha256, whether it is usable.
    List {
        /// Where pulled whisper models live.
        #[arg(long, default_value = "var/models")]
        dir: PathBuf,
    },
    /// Download a ggml whisper model (e.g. tiny.en), verified by sha256, resuming a partial file.
    Pull {
        name: String,
        #[arg(long, default_value = "var/models")]
        dir: PathBuf,
        /// Download from here instead of the public whisper.cpp model host.
        #[arg(long)]
        base_url: Option<String>,
        /// Expected sha256 (required for names outside the built-in catalog).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Convert a whisper model from another format (a CTranslate2 / faster-whisper directory) to ggml.
    Import {
        /// The model directory (model.bin and vocabulary.txt|json).
        dir: PathBuf,
        /// The format of DIR: ctranslate2.
        #[arg(long, default_value = "ctranslate2", value_parser = |s: &str| s.parse::<voxbridge_models::convert::Format>())]
        format: voxbridge_models::convert::Format,
        /// The ggml file to write (e.g. ~/.cache/voxbridge/models/ggml-tiny.en.bin).
        #[arg(long, value_name = "FILE.bin")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Counts by state, then records, newest first.
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
    },
    /// Send records again now (dead letters, or pending ones waiting on backoff).
    Retry {
        /// Record ids, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long)]
        all_dead: bool,
    },
    /// Delete delivered or dead records (never pending ones).
    Purge {
        #[arg(long, value_delimiter = ',')]
        ids: Vec<i64>,
        #[arg(long)]
        all_dead: bool,
        #[arg(long)]
        all_delivered: bool,
    },
}

#[derive(Subcommand)]
enum CampaignAction {
    /// Import the campaign file's list and start calling.
    Start { file: PathBuf },
    /// Start no more attempts (calls in flight finish).
    Pause {
        /// The campaign file, or its name.
        campaign: String,
    },
    /// Start attempts again.
    Resume { campaign: String },
    /// End the campaign: no more attempts, calls in flight finish.
    Stop { campaign: String },
    /// Totals by disposition and what is due when.
    Status { campaign: String },
    /// Every campaign the engine knows.
    List,
}

#[derive(Subcommand)]
enum CallsAction {
    /// The newest calls, newest first.
    List {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// One call in full.
    Show {
        /// The SIP Call-ID.
        call_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(code) = dialog_command(&cli.command) {
        return code;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The dialog-script commands, with their own exit codes: 0 fine, 1 the
/// script or a test is wrong, 2 the command could not run.
fn dialog_command(command: &Command) -> Option<ExitCode> {
    use voxbridge_dialog::cli;
    let mut out = std::io::stdout().lock();
    let result: Result<bool, String> = match command {
        Command::Check { scripts, intents } => {
            cli::check(scripts, intents.as_deref(), &mut out).map_err(|e| e.to_string())
        }
        Command::Graph {
            script,
            format,
            output,
        } => {
            let format = match format.as_str() {
                "dot" => voxbridge_dialog::graph::GraphFormat::Dot,
                "mermaid" => voxbridge_dialog::graph::GraphFormat::Mermaid,
                "svg" => voxbridge_dialog::graph::GraphFormat::Svg,
                other => {
                    eprintln!("voxbridge: --format {other}: use dot, mermaid or svg");
                    return Some(ExitCode::from(2));
                }
            };
            let written = match output {
                Some(path) => std::fs::File::create(path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|mut f| {
                        cli::graph(script, format, &mut f).map_err(|e| e.to_string())
                    }),
                None => cli::graph(script, format, &mut out).map_err(|e| e.to_string()),
            };
            written.map(|()| true)
        }
        Command::Chat {
            script,
            customer,
            data,
            language,
            today,
        } => {
            let language = match language
                .as_deref()
                .map(voxbridge_dialog::format::Lang::parse)
            {
                Some(None) => {
                    eprintln!("voxbridge: --language: use en or zh");
                    return Some(ExitCode::from(2));
                }
                other => other.flatten(),
            };
            let today = match today.as_deref().map(voxbridge_dialog::date::Date::parse) {
                Some(None) => {
                    eprintln!("voxbridge: --today: use YYYY-MM-DD");
                    return Some(ExitCode::from(2));
                }
                other => other.flatten(),
            };
            let options = cli::ChatOptions {
                customer: customer.clone(),
                data: data.clone(),
                caller: None,
                language,
                today,
            };
            let stdin = std::io::stdin();
            cli::chat(script, &options, None, &mut stdin.lock(), &mut out)
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        Command::TestDialog { paths } => cli::test_dialog(paths, &mut out)
            .map(|summary| summary.failed == 0)
            .map_err(|e| e.to_string()),
        _ => return None,
    };
    Some(match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("voxbridge: {e}");
            ExitCode::from(2)
        }
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        // Already run by `dialog_command`, which owns their exit codes.
        Command::Check { .. }
        | Command::Graph { .. }
        | Command::Chat { .. }
        | Command::TestDialog { .. } => Ok(()),
        Command::CheckConfig { config } => {
            Config::load(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Outbox {
            db,
            crm_config,
            action,
        } => outbox(&db, crm_config.as_deref(), action),
        Command::Campaign { admin, action } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(campaign(&admin, action))
        }
        Command::Models { action } => models(action),
        Command::Console {
            action: ConsoleAction::HashPassword,
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\r', '\n']);
            println!(
                "{}",
                voxbridge_engine::console::auth::hash_password(password)?
            );
            Ok(())
        }
        Command::Transcribe {
            files,
            engine,
            phone,
            language,
            model,
            threads,
            audio_ctx,
            phrases,
            yes_no,
            digits,
        } => {
            use voxbridge_engine::transcribe::{Options, Transcriber};
            let language = match language.as_str() {
                "en" => voxbridge_models::Language::En,
                "zh" => voxbridge_models::Language::Zh,
                other => anyhow::bail!("unknown language `{other}` (en or zh)"),
            };
            let t = Transcriber::start(Options {
                engine,
                phone,
                language,
                model: model.unwrap_or_else(voxbridge_models::manifest::installed_whisper_path),
                threads,
                audio_ctx,
                phrases,
                yes_no,
                digits,
            })?;
            let mut failed = false;
            for f in &files {
                match t.file(f) {
                    Ok(line) => println!(
                        "{}  [{:.2} s audio, {:.2} s]  {}",
                        line.path.display(),
                        line.audio.as_secs_f64(),
                        line.took.as_secs_f64(),
                        line.text
                    ),
                    Err(e) => {
                        eprintln!("voxbridge: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                anyhow::bail!("some files could not be transcribed");
            }
            Ok(())
        }
        Command::Calls { config, action } => {
            let config = Config::load(&config)?;
            calls(&config, action)
        }
        Command::Call {
            target,
            steps,
            from,
            bind,
            rtp_ports,
            record,
            admin,
            timeout,
            codec,
            dtmf,
        } => {
            use voxbridge_engine::test_call;
            // Warnings only (a digit the media session could not send…);
            // the transcript is the output.
            let filter = EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,rsipstack=error"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            let options = test_call::Options {
                from: from.unwrap_or_else(|| test_call::DEFAULT_CALLER.to_string()),
                bind,
                rtp_ports,
                record,
                admin,
                timeout,
                codec,
                dtmf,
                ..test_call::Options::new(target, steps)
            };
            let printer = std::sync::Arc::new(test_call::Printer::new(Box::new(std::io::stdout())));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(test_call::run(&options, printer))?;
            Ok(())
        }
        Command::Dial {
            number,
            script,
            via,
            caller_id,
            customer,
            fields,
            ring_timeout,
            admin,
        } => {
            let mut extra = std::collections::BTreeMap::new();
            for f in fields {
                let (k, v) = f
                    .split_once('=')
                    .with_context(|| format!("--field {f}: use NAME=VALUE"))?;
                extra.insert(k.to_string(), v.to_string());
            }
            let body = serde_json::json!({
                "number": number,
                "script": script,
                "via": via,
                "caller_id": caller_id,
                "customer_id": customer,
                "fields": extra,
                "ring_timeout_secs": ring_timeout,
            });
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let (status, text) = runtime.block_on(async {
                let response = reqwest::Client::new()
                    .post(format!("http://{admin}/calls"))
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("the engine's admin endpoint {admin}"))?;
                let status = response.status();
                anyhow::Ok((status, response.text().await?))
            })?;
            if !status.is_success() {
                anyhow::bail!("POST /calls answered {status}: {}", text.trim());
            }
            println!("{}", text.trim());
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

fn models(action: ModelsAction) -> anyhow::Result<()> {
    use voxbridge_models::{manifest, pull};
    match action {
        ModelsAction::List { dir } => {
            let config = manifest::ManifestConfig {
                models_dir: Some(dir),
                ..manifest::ManifestConfig::default()
            };
            print!("{}", manifest::manifest(&config)?.render());
        }
        ModelsAction::Pull {
            name,
            dir,
            base_url,
            sha256,
        } => {
            let mut options = pull::PullOptions::new(dir);
            if let Some(url) = base_url {
                options.base_url = url;
            }
            options.sha256 = sha256;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let outcome = runtime.block_on(pull::pull(&name, &options))?;
            println!(
                "{}: {} bytes, sha256 {}{}",
                outcome.path.display(),
                outcome.bytes,
                outcome.sha256,
                if outcome.already_present {
                    " (already there)"
                } else if outcome.resumed_from > 0 {
                    " (resumed)"
                } else {
                    ""
                }
            );
        }
        ModelsAction::Import { dir, format, out } => {
            let outcome = voxbridge_models::convert::import(&dir, format, &out)?;
            println!(
                "{}: {} bytes, sha256 {}, {}",
                outcome.path.display(),
                outcome.info.bytes,
                outcome.sha256,
                outcome.info.describe()
            );
        }
    }
    Ok(())
}

async fn campaign(admin: &str, action: CampaignAction) -> anyhow::Result<()> {
    use voxbridge_engine::campaign::client::{campaign_name, json, render_status, request};
    let call = |method: &'static str, path: String, body: Option<String>| async move {
        let response = request(admin, method, &path, body.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        json(response).map_err(anyhow::Error::msg)
    };
    let name = |arg: &str| campaign_name(arg).map_err(anyhow::Error::msg);
    match action {
        CampaignAction::Start { file } => {
            // The engine reads the file (and its list) itself: send a path
            // it can open whatever its working folder.
            let file =
                std::fs::canonicalize(&file).with_context(|| format!("{}", file.display()))?;
            let body = serde_json::json!({ "file": file }).to_string();
            let v = call("POST", "/campaigns/start".into(), Some(body)).await?;
            println!(
                "{}: started; {} contacts in the list ({} new, {} duplicates), {} numbers added to do-not-call",
                v["name"].as_str().unwrap_or("?"),
                v["imported"],
                v["added"],
                v["duplicates"],
                v["dnc_added"]
            );
            if let Some(skipped) = v["skipped"].as_array() {
                for s in skipped {
                    println!("  skipped: {}", s.as_str().unwrap_or_default());
                }
            }
        }
        CampaignAction::Pause { campaign } => {
            let n = name(&campaign)?;
            call("POST", format!("/campaigns/{n}/pause"), None).await?;
            println!("{n}: paused (calls in flight finish)");
        }
        CampaignAction::Resume { campaign } => {
            let n = name(&campaign)?;
            call("POST", format!("/campaigns/{n}/resume"), None).await?;
            println!("{n}: resumed");
        }
        CampaignAction::Stop { campaign } => {
            let n = name(&campaign)?;
            call("POST", format!("/campaigns/{n}/stop"), None).await?;
            println!("{n}: stopped (calls in flight finish)");
        }
        CampaignAction::Status { campaign } => {
            let n = name(&campaign)?;
            let v = call("GET", format!("/campaigns/{n}"), None).await?;
            print!("{}", render_status(&v));
        }
        CampaignAction::List => {
            let v = call("GET", "/campaigns".into(), None).await?;
            let all = v.as_array().cloned().unwrap_or_default();
            if all.is_empty() {
                println!("no campaigns");
            }
            for c in &all {
                print!("{}", render_status(c));
            }
        }
    }
    Ok(())
}

fn outbox(
    db: &std::path::Path,
    crm_config: Option<&std::path::Path>,
    action: OutboxAction,
) -> anyhow::Result<()> {
    use voxbridge_crm::outbox::admin::{self, ListFilter, Selection};
    use voxbridge_crm::outbox::RecordState;
    use voxbridge_crm::storage::{Backend, StorageConfig};
    let (storage, path) = match crm_config {
        Some(file) => {
            let c = voxbridge_crm::CrmConfig::load(file)?;
            (c.storage, c.outbox.path)
        }
        None => (StorageConfig::default(), db.to_path_buf()),
    };
    let place = match storage.backend(path.clone())? {
        Backend::Sqlite(p) => p.display().to_string(),
        Backend::Postgres(t) => format!("PostgreSQL {}", t.shown()),
    };
    let mut store = admin::open(&storage, &path)?;
    let pick = |ids: Vec<i64>, all_dead: bool, all_delivered: bool| -> anyhow::Result<Selection> {
        match (ids.is_empty(), all_dead, all_delivered) {
            (false, false, false) => Ok(Selection::Ids(ids)),
            (true, true, false) => Ok(Selection::AllDead),
            (true, false, true) => Ok(Selection::AllDelivered),
            _ => anyhow::bail!("say which records: --ids 1,2,3 or one --all-… flag"),
        }
    };
    match action {
        OutboxAction::List { state, limit } => {
            let state = match state.as_deref() {
                None => None,
                Some(text) => match RecordState::parse(text) {
                    Some(state) => Some(state),
                    None => anyhow::bail!("--state {text}: use pending, delivered or dead"),
                },
            };
            let counts = store.counts()?;
            println!(
                "{place}: {} pending, {} delivered, {} dead",
                counts.pending, counts.delivered, counts.dead
            );
            for entry in store.list(&ListFilter { state, limit })? {
                println!("{entry}");
            }
        }
        OutboxAction::Retry { ids, all_dead } => {
            let n = store.retry(
                &pick(ids, all_dead, false)?,
                voxbridge_crm::datetime::now_ms(),
            )?;
            println!("{n} records queued for delivery now");
        }
        OutboxAction::Purge {
            ids,
            all_dead,
            all_delivered,
        } => {
            let n = store.purge(&pick(ids, all_dead, all_delivered)?)?;
            println!("{n} records deleted");
        }
    }
    Ok(())
}

fn calls(config: &Config, action: CallsAction) -> anyhow::Result<()> {
    use voxbridge_engine::cdr;
    // The shared PostgreSQL when `storage.url` names one: every node's calls.
    let backend = voxbridge_engine::storage::backend(config, &config.cdr.path)?;
    let mut store = cdr::open_store(&backend)?;
    match action {
        CallsAction::List { limit } => {
            println!(
                "{:<24} {:<36} {:>9} {:<16} {:<12} {:<16} {:<9} FROM",
                "STARTED", "CALL-ID", "SECONDS", "END", "DTMF", "NODE", "DIRECTION"
            );
            for r in store.list(limit)? {
                println!(
                    "{:<24} {:<36} {:>9.1} {:<16} {:<12} {:<16} {:<9} {}",
                    cdr::format_time(r.started),
                    r.call_id,
                    r.duration().as_secs_f64(),
                    r.end_reason,
                    r.dtmf,
                    r.node.as_deref().unwrap_or("-"),
                    r.direction.map(cdr::Direction::label).unwrap_or("-"),
                    voxbridge_engine::pii::mask_uri(&r.from)
                );
            }
        }
        CallsAction::Show { call_id } => {
            let Some(r) = store.show(&call_id)? else {
                anyhow::bail!(
                    "no call with Call-ID {call_id} in {}",
                    cdr::describe(&backend)
                );
            };
            println!("call_id:         {}", r.call_id);
            println!("node:            {}", r.node.as_deref().unwrap_or("-"));
            println!(
                "direction:       {}",
                r.direction.map(cdr::Direction::label).unwrap_or("-")
            );
            println!("from:            {}", r.from);
            println!("to:              {}", r.to);
            println!("started:         {}", cdr::format_time(r.started));
            println!(
                "answered:        {}",
                r.answered
                    .map(cdr::format_time)
                    .unwrap_or_else(|| "-".into())
            );
            println!("ended:           {}", cdr::format_time(r.ended));
            println!("duration:        {:.3} s", r.duration().as_secs_f64());
            println!("end reason:      {}", r.end_reason);
            println!("dtmf:            {}", r.dtmf);
            println!(
                "recording:       {}",
                r.recording
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".into())
            );
            println!(
                "transfer target: {}",
                r.transfer_target.unwrap_or_else(|| "-".into())
            );
            if r.turns.is_empty() {
                println!("turns:           -");
            }
            for (i, t) in r.turns.iter().enumerate() {
                println!(
                    "turn {:<2} {:<6}  {:>5.0} ms  (endpointing {:.0}, asr {:.0}, intent {:.1}, dialog {:.1}, lookup {:.0}, tts {:.0})",
                    i + 1,
                    t.kind.label(),
                    t.total_ms,
                    t.endpointing_ms,
                    t.asr_ms,
                    t.intent_ms,
                    t.dialog_ms,
                    t.lookup_ms,
                    t.tts_ms
                );
            }
        }
    }
    Ok(())
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
