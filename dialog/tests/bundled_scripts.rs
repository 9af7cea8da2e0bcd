//! The scripts shipped in fixtures/scripts/ must pass the validator with no
//! problems at all (warnings included).

use std::path::PathBuf;

use voxbridge_dialog::{load, validate};

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scripts")
}

#[test]
fn bundled_scripts_are_clean() {
    let mut n = 0;
    for entry in std::fs::read_dir(scripts_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        let loaded = load::load_file(&path).unwrap_or_else(|p| {
            panic!(
                "{}",
                p.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let problems = validate::validate(&loaded, None);
        assert!(
            problems.is_empty(),
            "{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(n >= 1, "no scripts found");
}

#[test]
fn a_program_lists_every_file_it_was_read_from() {
    let script = scripts_dir().join("customer-service.yaml");
    let program = voxbridge_dialog::interp::Program::load(&script, None).unwrap();
    assert_eq!(
        program.sources(),
        &[script.clone(), scripts_dir().join("common/callback.yaml")]
    );
    let text = voxbridge_dialog::interp::Program::parse(
        "t",
        "name: t\nstart: a\nstates:\n  a:\n    hangup: done\n",
    )
    .unwrap();
    assert!(text.sources().is_empty());
}
