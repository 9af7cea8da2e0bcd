//! A script ready to run: loaded, validated, its settings resolved. One
//! `Program` is shared (in an `Arc`) by every call that runs the script.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::{Problem, Problems};
use crate::format::{BargeIn, Lang, Script, State};
use crate::load::{self, Loaded};
use crate::validate::{self, Labels};

/// A validated script.
#[derive(Debug)]
pub struct Program {
    script: Script,
    base_dir: Option<PathBuf>,
    /// The files it was read from: the script, then each import.
    sources: Vec<PathBuf>,
    warnings: Vec<Problem>,
}

impl Program {
    /// Load, validate and prepare a script file. Errors (not warnings) stop it.
    pub fn load(path: &Path, labels: Option<&Labels>) -> Result<Program, Problems> {
        let loaded = load::load_file(path).map_err(Problems)?;
        Program::from_loaded(loaded, labels)
    }

    /// A script from text (no imports, no WAV checks); `name` labels problems.
    pub fn parse(name: &str, text: &str) -> Result<Program, Problems> {
        let loaded = load::load_str(name, None, text, None).map_err(Problems)?;
        Program::from_loaded(loaded, None)
    }

    pub fn from_loaded(loaded: Loaded, labels: Option<&Labels>) -> Result<Program, Problems> {
        let problems = validate::validate(&loaded, labels);
        let (errors, warnings): (Vec<Problem>, Vec<Problem>) =
            problems.into_iter().partition(Problem::is_error);
        if !errors.is_empty() {
            return Err(Problems(errors));
        }
        Ok(Program {
            sources: loaded
                .sources
                .iter()
                .filter_map(|s| s.path.clone())
                .collect(),
            script: loaded.script,
            base_dir: loaded.base_dir,
            warnings,
        })
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Every file the script was read from, the script first, then its
    /// imports; empty for a script parsed from text. A change to any of
    /// them is a change to the program.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Where WAV paths are relative to.
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    pub fn state(&self, flow: Option<&str>, name: &str) -> Option<&State> {
        match flow {
            None => self.script.states.get(name),
            Some(f) => self.script.flows.get(f)?.states.get(name),
        }
    }

    pub fn flow_start(&self, flow: &str) -> Option<&str> {
        self.script.flows.get(flow).map(|f| f.start.as_str())
    }

    pub fn languages(&self) -> Vec<Lang> {
        validate::languages(&self.script)
    }

    pub fn default_language(&self) -> Lang {
        self.script
            .defaults
            .language
            .or_else(|| self.script.languages.first().copied())
            .unwrap_or(Lang::En)
    }

    pub fn voice(&self, lang: Lang) -> Option<String> {
        self.script.defaults.voice.as_ref()?.get(lang).cloned()
    }

    pub fn barge_in(&self) -> BargeIn {
        self.script.defaults.barge_in.unwrap_or(BargeIn::ON)
    }

    pub fn no_input_timeout(&self) -> Duration {
        self.script
            .defaults
            .no_input_timeout
            .map(|s| s.0)
            .unwrap_or(Duration::from_secs(5))
    }

    pub fn max_retries(&self) -> u32 {
        self.script.defaults.max_retries.unwrap_or(3)
    }

    pub fn confidence(&self) -> f64 {
        self.script.defaults.confidence.unwrap_or(0.5)
    }

    pub fn lookup_timeout(&self) -> Duration {
        self.script
            .defaults
            .lookup_timeout
            .map(|s| s.0)
            .unwrap_or(Duration::from_secs(3))
    }

    pub fn finish_key(&self) -> char {
        self.script
            .defaults
            .dtmf
            .as_ref()
            .and_then(|d| d.finish_key)
            .unwrap_or('#')
    }

    pub fn max_digits(&self) -> u32 {
        self.script
            .defaults
            .dtmf
            .as_ref()
            .and_then(|d| d.max_digits)
            .unwrap_or(20)
    }

    pub fn inter_digit_timeout(&self) -> Duration {
        self.script
            .defaults
            .dtmf
            .as_ref()
            .and_then(|d| d.inter_digit_timeout)
            .map(|s| s.0)
            .unwrap_or(Duration::from_secs(3))
    }
}
