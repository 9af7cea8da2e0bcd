//! The example configurations in fixtures/crm/config (quoted in the
//! documentation) parse, and build into a bridge with their secrets set.

use std::path::PathBuf;

use voxbridge_crm::{CrmConfig, Operation};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/crm/config")
}

#[test]
fn every_example_parses_and_builds() {
    for var in [
        "CRM_CLIENT_SECRET",
        "TRYTON_PASSWORD",
        "SF_CLIENT_ID",
        "SF_CLIENT_SECRET",
        "HUBSPOT_TOKEN",
        "ZENDESK_API_TOKEN",
        "ODOO_API_KEY",
        "RT_TOKEN",
    ] {
        std::env::set_var(var, "example-secret");
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).expect("examples dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let mut cfg = CrmConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        // rt.yaml reads its token from a secret file; point it at one.
        if name == "rt.yaml" {
            let file = std::env::temp_dir().join(format!("vb-rt-token-{}", std::process::id()));
            std::fs::write(&file, "1-2-example\n").expect("token file");
            let text = std::fs::read_to_string(&path)
                .expect("read")
                .replace("/run/secrets/rt-token", &file.display().to_string());
            cfg = CrmConfig::from_yaml(&text, &name).expect("rt.yaml with a local token file");
        }
        // The embedded example writes under var/ and reads fixtures/ from
        // the repository root; build it in a temporary copy instead.
        if name == "embedded.yaml" {
            let dir = tempfile::tempdir().expect("temp dir");
            let text = std::fs::read_to_string(&path)
                .expect("read")
                .replace("var/", &format!("{}/", dir.path().display()))
                .replace(
                    "seed: fixtures/crm",
                    &format!("seed: {}", examples().join("..").display()),
                );
            let cfg = CrmConfig::from_yaml(&text, &name).expect("embedded");
            let bridge = cfg.build_bridge().expect("embedded builds");
            assert!(bridge
                .system_for(&voxbridge_crm::model::Write::Task(Default::default()))
                .is_some());
            continue;
        }
        cfg.build_bridge().unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "mixed.yaml" {
            assert_eq!(
                cfg.routes.get(&Operation::Stock).map(String::as_str),
                Some("erp")
            );
            assert_eq!(cfg.routes.len(), 8);
        }
    }
    assert!(seen >= 9, "only {seen} examples found");
}
