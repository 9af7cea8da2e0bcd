//! Runs every conversation test under fixtures/scripts/tests/ (the bundled
//! scripts' tests, in English and Chinese).

use std::path::PathBuf;

use voxbridge_dialog::convtest;

#[test]
fn bundled_conversation_tests_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scripts/tests");
    let files = convtest::collect(&[dir]).unwrap();
    assert!(
        files.len() >= 4,
        "expected tests for both scripts in both languages"
    );
    let mut failures = Vec::new();
    let mut passed = 0;
    for f in &files {
        match convtest::run_file(f) {
            Err(problems) => failures.extend(problems.iter().map(|p| p.to_string())),
            Ok(results) => {
                for r in results {
                    match r.failure {
                        None => passed += 1,
                        Some(why) => failures.push(format!("{} — {}: {why}", r.file, r.name)),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed, {} failed:\n{}",
        passed,
        failures.len(),
        failures.join("\n")
    );
}
