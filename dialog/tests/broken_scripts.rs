//! The broken-script corpus: every `tests/broken/NAME.yaml` must produce
//! exactly the problems listed in `NAME.expect` (`line:column: severity:
//! message`, one per line, in order). `NAME.labels`, when present, is the
//! intent model's label list to check against.
//!
//! To see what a new file produces, run
//! `cargo test -p voxbridge-dialog --test broken_scripts` and read the diff.

use std::path::{Path, PathBuf};

use voxbridge_dialog::{load, validate};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

fn problems(path: &Path) -> Vec<String> {
    let labels_path = path.with_extension("labels");
    // Named by file name only, so messages do not depend on the checkout.
    let labels = labels_path.exists().then(|| {
        let name = labels_path.file_name().unwrap().to_string_lossy();
        validate::Labels::parse(&name, &std::fs::read_to_string(&labels_path).unwrap())
    });
    let found = match load::load_file(path) {
        Err(p) => p,
        Ok(loaded) => validate::validate(&loaded, labels.as_ref()),
    };
    // Problems in the script itself without its name; in imports with the
    // path below the corpus folder.
    let prefix = format!("{}:", path.display());
    let dir = format!("{}/", corpus().display());
    found
        .iter()
        .map(|p| {
            let s = p.to_string();
            match s.strip_prefix(&prefix) {
                Some(rest) => rest.to_string(),
                None => s.replace(&dir, ""),
            }
        })
        .collect()
}

#[test]
fn every_broken_script_fails_exactly_as_expected() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "corpus is too small: {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let expect_path = file.with_extension("expect");
        let expected: Vec<String> = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|_| panic!("{} has no .expect file", file.display()))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        assert!(
            !expected.is_empty(),
            "{} expects nothing",
            expect_path.display()
        );
        let got = problems(file);
        if got != expected {
            failures.push(format!(
                "{}\n  expected:\n    {}\n  got:\n    {}",
                file.display(),
                expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
