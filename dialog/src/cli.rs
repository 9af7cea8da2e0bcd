//! The `voxbridge check`, `graph`, `chat` and `test-dialog` commands as
//! plain functions; the engine's binary parses the arguments and calls
//! these. They print to `out` and return what the exit code depends on.
//!
//! ```text
//! pub fn check(paths: &[PathBuf], intents: Option<&Path>, out: &mut dyn Write) -> Result<bool, CliError>
//! pub fn graph(script: &Path, format: GraphFormat, out: &mut dyn Write) -> Result<(), CliError>
//! pub fn chat(script: &Path, options: &ChatOptions, classifier: Option<Box<dyn Classifier>>,
//!             input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), CliError>
//! pub fn chat_with(script: &Path, options: &ChatOptions, classifier: Option<Box<dyn Classifier>>,
//!                  backend: Option<Box<dyn Backend>>, input: &mut dyn BufRead,
//!                  out: &mut dyn Write) -> Result<(), CliError>
//! pub fn test_dialog(paths: &[PathBuf], out: &mut dyn Write) -> Result<TestSummary, CliError>
//! ```
//!
//! Exit codes the binary should use: `check` → 0 when it returns `Ok(true)`,
//! 1 for `Ok(false)` (problems found); `test_dialog` → 0 when
//! `failed == 0`, else 1; any `Err` → 2 after printing it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;

use crate::convtest;
use crate::date::Date;
use crate::demo::DemoCrm;
use crate::diag::{Problem, Problems};
use crate::format::Lang;
use crate::graph::{self, GraphFormat};
use crate::interp::Program;
use crate::load;
use crate::nlu::Classifier;
use crate::sim::{Backend, Failures, Simulator};
use crate::validate::{self, Labels};

/// What stopped a command (as opposed to problems it found and printed).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// The script (or test/demo file) does not load.
    #[error("{0}")]
    Problems(Problems),
    #[error("`dot` (Graphviz) is not installed: use `--format dot` or `--format mermaid`, or install graphviz")]
    DotMissing,
    #[error("dot failed: {0}")]
    Dot(String),
    #[error("no customer `{0}` in the demo data")]
    UnknownCustomer(String),
    #[error(
        "`--customer` needs customer data (`--data`, fixtures/dialog/demo-crm.yaml, or a CRM)"
    )]
    NoDemoData,
    #[error("no test files in {0}")]
    NoTests(String),
}

impl From<Vec<Problem>> for CliError {
    fn from(p: Vec<Problem>) -> CliError {
        CliError::Problems(Problems(p))
    }
}

/// `voxbridge check SCRIPT… [--intents LABELS]`: print every problem with
/// its location; `Ok(true)` when no script has errors (warnings allowed).
/// A folder checks the `*.yaml` scripts directly inside it.
pub fn check(
    paths: &[PathBuf],
    intents: Option<&Path>,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let labels = match intents {
        Some(p) => Some(Labels::read(p).map_err(|source| CliError::Io {
            path: p.to_path_buf(),
            source,
        })?),
        None => None,
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|source| CliError::Io {
                    path: p.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().and_then(|x| x.to_str()) == Some("yaml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let mut all_ok = true;
    for file in &files {
        let problems = match load::load_file(file) {
            Err(p) => p,
            Ok(loaded) => {
                let p = validate::validate(&loaded, labels.as_ref());
                if p.is_empty() {
                    writeln!(
                        out,
                        "{}: ok ({} states, {} flows)",
                        file.display(),
                        loaded.script.states.len(),
                        loaded.script.flows.len()
                    )?;
                    continue;
                }
                p
            }
        };
        for p in &problems {
            writeln!(out, "{p}")?;
        }
        let errors = problems.iter().filter(|p| p.is_error()).count();
        let warnings = problems.len() - errors;
        writeln!(
            out,
            "{}: {errors} error{}, {warnings} warning{}",
            file.display(),
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        )?;
        if errors > 0 {
            all_ok = false;
        }
    }
    Ok(all_ok)
}

/// `voxbridge graph SCRIPT [--format dot|mermaid|svg]`. A script with
/// validation errors still draws (unknown targets are left out); one that
/// does not parse is an error. SVG runs Graphviz's `dot`.
pub fn graph(script: &Path, format: GraphFormat, out: &mut dyn Write) -> Result<(), CliError> {
    let loaded = load::load_file(script)?;
    match format {
        GraphFormat::Dot => out.write_all(graph::dot(&loaded).as_bytes())?,
        GraphFormat::Mermaid => out.write_all(graph::mermaid(&loaded).as_bytes())?,
        GraphFormat::Svg => out.write_all(&render_svg(&graph::dot(&loaded))?)?,
    }
    Ok(())
}

fn render_svg(dot: &str) -> Result<Vec<u8>, CliError> {
    let mut child = match Process::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CliError::DotMissing),
        Err(e) => return Err(CliError::Dot(e.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| CliError::Dot(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| CliError::Dot(e.to_string()))?;
    if !output.status.success() {
        return Err(CliError::Dot(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(output.stdout)
}

/// Is Graphviz's `dot` on the PATH?
pub fn dot_installed() -> bool {
    Process::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Options of `voxbridge chat`.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// `--customer`: a customer id or phone number from the demo data.
    pub customer: Option<String>,
    /// `--data`: demo CRM data; default `fixtures/dialog/demo-crm.yaml`
    /// when that exists (relative to the working directory).
    pub data: Option<PathBuf>,
    /// `--caller`: the caller's number (default: the customer's phone).
    pub caller: Option<String>,
    /// `--language`.
    pub language: Option<Lang>,
    /// `--today YYYY-MM-DD` for date slots (default: today, UTC).
    pub today: Option<Date>,
}

/// The demo data the chat uses when `--data` is not given.
pub const DEFAULT_DEMO_DATA: &str = "fixtures/dialog/demo-crm.yaml";

/// `voxbridge chat SCRIPT [--customer ID]`: a text conversation with the
/// script. `classifier` is the intent model when one is loaded; without
/// it, caller text is matched against the script's example phrases.
/// Customers and lookups come from the demo data (`options.data`).
pub fn chat(
    script: &Path,
    options: &ChatOptions,
    classifier: Option<Box<dyn Classifier>>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    chat_with(script, options, classifier, None, input, out)
}

/// [`chat`] with customers and lookups from `backend` (e.g. the embedded
/// CRM) instead of the demo data; `None` uses the demo data.
pub fn chat_with(
    script: &Path,
    options: &ChatOptions,
    classifier: Option<Box<dyn Classifier>>,
    backend: Option<Box<dyn Backend>>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let program = Arc::new(Program::load(script, None).map_err(CliError::Problems)?);
    for w in program.warnings() {
        writeln!(out, "{w}")?;
    }
    let (backend, source): (Option<Box<dyn Backend>>, String) = match backend {
        Some(b) => (Some(b), "the configured CRM".into()),
        None => {
            let data_path = options.data.clone().or_else(|| {
                let p = PathBuf::from(DEFAULT_DEMO_DATA);
                p.exists().then_some(p)
            });
            match data_path {
                Some(p) => {
                    let crm =
                        DemoCrm::load(&p).map_err(|e| CliError::Problems(Problems(vec![e])))?;
                    (Some(Box::new(crm)), p.display().to_string())
                }
                None => (None, "nowhere (they fail)".into()),
            }
        }
    };
    let customer = match (&options.customer, &backend) {
        (None, _) => None,
        (Some(_), None) => return Err(CliError::NoDemoData),
        (Some(id), Some(b)) => Some(
            b.customer(id)
                .ok_or_else(|| CliError::UnknownCustomer(id.clone()))?,
        ),
    };
    let caller = options
        .caller
        .clone()
        .or_else(|| {
            customer
                .as_ref()
                .map(|c| c.field("phone").to_string())
                .filter(|p| !p.is_empty())
        })
        .unwrap_or_else(|| "+15550000000".to_string());
    let today = options.today.or_else(today_utc);
    let who = match &customer {
        Some(c) => format!("customer {} ({})", c.field("id"), c.field("name")),
        None => "an unknown caller".to_string(),
    };
    writeln!(
        out,
        "chat with {} as {who} from {caller}; lookups from {source}. /help for commands.",
        program.script().name,
    )?;
    let mut sim = Simulator::new(program, backend, classifier, Failures::default());
    let opening = sim.start(&caller, customer, options.language, today);
    crate::chat::run(&mut sim, opening, input, out)?;
    Ok(())
}

/// Today's date in UTC from the system clock (the CLI's only clock).
fn today_utc() -> Option<Date> {
    Date::from_jiff(
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
    )
}

/// Counts of `test_dialog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
}

/// `voxbridge test-dialog PATH…`: run conversation test files (folders
/// are searched for `*.yaml`). A file that does not load counts as one
/// failure.
pub fn test_dialog(paths: &[PathBuf], out: &mut dyn Write) -> Result<TestSummary, CliError> {
    for p in paths {
        std::fs::metadata(p).map_err(|source| CliError::Io {
            path: p.clone(),
            source,
        })?;
    }
    let files = convtest::collect(paths).map_err(|source| CliError::Io {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::NoTests(shown.join(", ")));
    }
    let mut summary = TestSummary::default();
    for f in &files {
        match convtest::run_file(f) {
            Err(problems) => {
                summary.failed += 1;
                writeln!(out, "FAIL {}: does not load", f.display())?;
                for p in problems {
                    writeln!(out, "  {p}")?;
                }
            }
            Ok(results) => {
                for r in results {
                    match r.failure {
                        None => {
                            summary.passed += 1;
                            writeln!(out, "ok   {} — {}", r.file, r.name)?;
                        }
                        Some(why) => {
                            summary.failed += 1;
                            writeln!(out, "FAIL {} — {}\n  {why}", r.file, r.name)?;
                        }
                    }
                }
            }
        }
    }
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    Ok(summary)
}
