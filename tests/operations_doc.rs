//! docs/operations.md is the configuration reference: every setting the
//! gateway reads is there with its environment variable, so a new setting
//! cannot ship undocumented.

use corrections_gateway::config::Settings;

/// Every key of the settings, tables flattened (`delivery.max_attempts`).
fn keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    for (name, value) in value.as_object().expect("settings are a table") {
        let key = format!("{prefix}{name}");
        match value {
            serde_json::Value::Object(_) => keys(value, &format!("{key}."), out),
            _ => out.push(key),
        }
    }
}

#[test]
fn every_setting_is_documented_with_its_environment_variable() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .unwrap();
    let mut all = Vec::new();
    keys(
        &serde_json::to_value(Settings::default()).unwrap(),
        "",
        &mut all,
    );
    assert!(all.len() > 30, "{all:?}");
    for key in all {
        let row = format!("| `{key}` |");
        let env = format!("`GATEWAY_{}`", key.to_uppercase().replace('.', "__"));
        assert!(
            doc.contains(&row),
            "docs/operations.md has no row for {key}"
        );
        assert!(doc.contains(&env), "docs/operations.md does not name {env}");
    }
}
