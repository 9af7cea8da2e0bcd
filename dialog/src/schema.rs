//! The JSON Schema of the script format, generated from the Rust types so it
//! cannot drift from what the parser accepts. The generated file is
//! committed under `dialog/schema/` for editors (VS Code's YAML extension
//! reads a `# yaml-language-server: $schema=…` comment at the top of a file).

use crate::format::Script;

/// Path of the committed script schema, relative to the `dialog` crate.
pub const SCRIPT_SCHEMA_FILE: &str = "schema/dialog-script.schema.json";
/// Path of the committed conversation-test schema.
pub const TEST_SCHEMA_FILE: &str = "schema/dialog-test.schema.json";

/// The script schema as pretty-printed JSON (with a trailing newline).
pub fn script_schema() -> String {
    pretty(&schemars::schema_for!(Script))
}

/// The conversation-test schema as pretty-printed JSON.
pub fn test_schema() -> String {
    pretty(&schemars::schema_for!(crate::convtest::TestFile))
}

fn pretty(schema: &schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The committed schema must equal the generated one. Run with
    /// `VOXBRIDGE_UPDATE_SCHEMA=1` to rewrite it after changing the format.
    #[test]
    fn committed_schemas_are_current() {
        check(SCRIPT_SCHEMA_FILE, script_schema());
        check(TEST_SCHEMA_FILE, test_schema());
    }

    fn check(path: &str, generated: String) {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        if std::env::var_os("VOXBRIDGE_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: run `VOXBRIDGE_UPDATE_SCHEMA=1 cargo test -p voxbridge-dialog schema`",
            file.display()
        );
    }

    #[test]
    fn schema_describes_states() {
        let s = script_schema();
        assert!(s.contains("\"State\""));
        assert!(s.contains("no_input"));
    }
}
