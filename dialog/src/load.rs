//! Reading a script from disk: YAML → [`Script`], with its imports merged
//! in and every file kept as a [`Source`] so later problems can be located.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diag::{Problem, Severity};
use crate::format::{Library, Script};
use crate::source::{Pos, Source, YamlPath};

/// A script with its imports merged, and where each part came from.
#[derive(Debug)]
pub struct Loaded {
    pub script: Script,
    /// `sources[0]` is the script, then one per import.
    pub sources: Vec<Source>,
    /// For each flow, the source it is written in.
    pub flow_source: IndexMap<String, usize>,
    /// The script's folder: WAV paths and imports are relative to it.
    pub base_dir: Option<PathBuf>,
}

impl Loaded {
    /// A problem at `path` in source `source`, pointing at the value.
    pub fn problem(&self, source: usize, path: &YamlPath, message: impl Into<String>) -> Problem {
        self.problem_at(source, path, false, Severity::Error, message)
    }

    /// A problem pointing at the key that ends `path` (e.g. a state's name).
    pub fn key_problem(
        &self,
        source: usize,
        path: &YamlPath,
        message: impl Into<String>,
    ) -> Problem {
        self.problem_at(source, path, true, Severity::Error, message)
    }

    pub fn problem_at(
        &self,
        source: usize,
        path: &YamlPath,
        key: bool,
        severity: Severity,
        message: impl Into<String>,
    ) -> Problem {
        let (name, pos) = match self.sources.get(source) {
            Some(s) if key => (s.name.clone(), s.key_pos(path)),
            Some(s) => (s.name.clone(), s.value_pos(path)),
            None => (String::from("<script>"), Pos::default()),
        };
        Problem {
            file: name,
            line: pos.line,
            column: pos.column,
            severity,
            message: message.into(),
        }
    }
}

/// Read and parse a script file and its imports.
pub fn load_file(path: &Path) -> Result<Loaded, Vec<Problem>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            file: name.clone(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            message: format!("cannot read: {e}"),
        }]
    })?;
    let base = path.parent().map(Path::to_path_buf);
    load_str(&name, Some(path.to_path_buf()), &text, base)
}

/// Parse script text; `name` labels problems, `base_dir` resolves imports
/// (without it, imports are an error).
pub fn load_str(
    name: &str,
    path: Option<PathBuf>,
    text: &str,
    base_dir: Option<PathBuf>,
) -> Result<Loaded, Vec<Problem>> {
    let script: Script = parse_yaml(name, text).map_err(|p| vec![p])?;
    let mut loaded = Loaded {
        flow_source: script.flows.keys().map(|k| (k.clone(), 0)).collect(),
        script,
        sources: vec![Source::new(name, path, text)],
        base_dir,
    };
    let mut problems = Vec::new();
    let imports = loaded.script.imports.clone();
    for (i, import) in imports.iter().enumerate() {
        let at = YamlPath::root().at("imports").at(i);
        let Some(dir) = loaded.base_dir.clone() else {
            problems.push(loaded.problem(
                0,
                &at,
                "imports need the script to be loaded from a file",
            ));
            continue;
        };
        let file = dir.join(import);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                // The path as written: it is what the author can fix.
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file".to_string(),
                    _ => e.to_string(),
                };
                problems.push(loaded.problem(
                    0,
                    &at,
                    format!("cannot read import `{import}`: {why}"),
                ));
                continue;
            }
        };
        let lib_name = file.display().to_string();
        let lib: Library = match parse_yaml(&lib_name, &text) {
            Ok(l) => l,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let idx = loaded.sources.len();
        loaded
            .sources
            .push(Source::new(lib_name, Some(file.clone()), &text));
        for (flow_name, flow) in lib.flows {
            if loaded.script.flows.contains_key(&flow_name) {
                let p = YamlPath::root().at("flows").at(&flow_name);
                problems.push(loaded.key_problem(
                    idx,
                    &p,
                    format!("flow `{flow_name}` is already defined (in the script or an earlier import)"),
                ));
                continue;
            }
            loaded.flow_source.insert(flow_name.clone(), idx);
            loaded.script.flows.insert(flow_name, flow);
        }
        for (intent, phrases) in lib.intents {
            loaded.script.intents.entry(intent).or_insert(phrases);
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// Deserialize YAML, turning a parse error into a located problem.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, Problem> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Problem {
            file: name.to_string(),
            line: 1,
            column: 1,
            severity: Severity::Error,
            message: "the file is empty".into(),
        });
    }
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        Problem {
            file: name.to_string(),
            line,
            column,
            severity: Severity::Error,
            message: parser_message(&e.without_snippet().to_string()),
        }
    })
}

/// The parser's message without its own "line L column C:" prefix, which
/// our `file:line:column:` already says.
fn parser_message(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    let rest = line.strip_prefix("error: ").unwrap_or(line);
    let msg = match rest.strip_prefix("line ") {
        Some(after) => after.split_once(": ").map(|(_, m)| m).unwrap_or(rest),
        None => rest,
    };
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_located() {
        let text = "name: t\nstart: a\nstates:\n  a:\n    say: hi\n    hangpu: done\n";
        let e = load_str("t.yaml", None, text, None).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].column), (6, 5), "{}", e[0]);
        assert!(e[0].message.contains("hangpu"), "{}", e[0]);
        assert!(!e[0].message.contains("line 6"), "{}", e[0]);
    }

    #[test]
    fn empty_file_is_an_error() {
        let e = load_str("t.yaml", None, "# nothing\n", None).unwrap_err();
        assert_eq!(e[0].message, "the file is empty");
    }

    #[test]
    fn imports_need_a_folder() {
        let text = "name: t\nimports: [lib.yaml]\nstart: a\nstates:\n  a:\n    hangup: done\n";
        let e = load_str("t.yaml", None, text, None).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (2, 11));
    }
}
