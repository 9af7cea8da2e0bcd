//! Fuzz harness for the dialog YAML loader and validator: the bundled
//! scripts damaged by `voxbridge_mutations` (keys dropped, duplicated and
//! moved, indentation broken by changed line endings and inserted tokens,
//! anchors and aliases, huge values, bad UTF-8, truncation). Properties:
//! nothing panics, and every problem reported points at a line of the file
//! it names. `PROPTEST_CASES` sets the count (`bench/fuzz` runs it long).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use voxbridge_dialog::load::load_str;
use voxbridge_dialog::validate::validate;
use voxbridge_mutations::mutated;

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scripts")
}

const SEEDS: &[&str] = &[
    "customer-service.yaml",
    "outbound-follow-up.yaml",
    "common/callback.yaml",
];

fn seeds() -> Vec<Vec<u8>> {
    SEEDS
        .iter()
        .map(|s| std::fs::read(scripts().join(s)).expect("bundled script"))
        .collect()
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.lines().count() as u64 + 1;
    let problems = match load_str("t.yaml", None, &text, Some(scripts())) {
        Ok(loaded) => validate(&loaded, None),
        Err(problems) => problems,
    };
    for p in problems.iter().filter(|p| p.file == "t.yaml") {
        prop_assert!(p.line <= lines, "{} (the file has {} lines)", p, lines);
    }
    Ok(())
}

/// The whole scripts load and validate cleanly, so the mutations start
/// from good input (the imported fragment is not a script by itself).
#[test]
fn the_seeds_load() {
    for s in &SEEDS[..2] {
        let text = std::fs::read_to_string(scripts().join(s)).expect("UTF-8");
        let loaded = load_str("t.yaml", None, &text, Some(scripts()));
        let loaded = loaded.unwrap_or_else(|p| panic!("{s}: {p:?}"));
        let errors: Vec<_> = validate(&loaded, None)
            .into_iter()
            .filter(|p| p.is_error())
            .collect();
        assert!(errors.is_empty(), "{s}: {errors:?}");
    }
}

proptest! {
    #[test]
    fn fuzz_dialog_yaml_loader(script in mutated(seeds(), 4)) {
        check(&script)?;
    }
}
