//! Schemathesis (property-based testing from the OpenAPI document) against a
//! real gateway, for a bounded time: thousands of generated requests to every
//! route of `/api/v1/openapi.json`, each signed as the court would sign it
//! (`tests/schemathesis/hooks.py`), so the generated parameters and bodies
//! get past signature verification into the handlers. Checked: no 5xx, every
//! status code, content type, header and body is one the document declares,
//! undeclared methods get 405, and resources stay available.
//!
//! Not checked here: whether schema-valid data is accepted and invalid data
//! refused (`positive_data_acceptance`, `negative_data_rejection`): the
//! document cannot express the cross-field rules (a range's ends, a tree size
//! that exists, a body that must be a signed dialect document), so those
//! checks mostly report the rules; the gateway's own tests cover them.
//!
//! `scripts/test.sh` installs schemathesis (PyPI); `SCHEMATHESIS_SECONDS`
//! bounds the run (default 45).

mod common;

use std::path::Path;

use common::{court_notice, TestGateway};
use corrections_gateway::security::alg::Algorithm;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_headers_conformance,response_schema_conformance,unsupported_method,\
    use_after_free,ensure_resource_availability";

#[actix_web::test]
async fn generated_requests_to_every_route_get_documented_answers_and_no_server_error() {
    let gw = TestGateway::start().await;
    // Some documents, so that not every generated id is unknown.
    let court = gw.partner("court.620102", Algorithm::Ed25519);
    for n in 0..3 {
        common::accepted(&court, &court_notice(n), "application/xml").await;
    }
    let seconds = std::env::var("SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "45".into());
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let work = tempfile::tempdir().unwrap();
    // `python3 -m schemathesis.cli`: no console-script shim needed (pyenv).
    let output = tokio::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "--no-color", "run"])
        .arg(format!("{}/api/v1/openapi.json", gw.base_url))
        .args(["--checks", CHECKS, "--max-time", &seconds, "--workers", "2"])
        .args(["--request-timeout", "30", "--warnings", "off"])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .env("GATEWAY_SIGNER_DIR", gw.pki().join("court.620102"))
        .current_dir(work.path())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("schemathesis does not run ({e}): scripts/test.sh installs it (pip install schemathesis)")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Seed:"))
        .collect();
    eprintln!("schemathesis: {}", summary.join(" | "));
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    // Every operation of the document (all routes but the document itself).
    let tested = format!("Tested: {}", corrections_gateway::api::ROUTES.len() - 1);
    assert!(
        report.contains(&tested),
        "schemathesis did not test every operation ({tested}):\n{report}"
    );
    gw.running.handle.stop(true).await;
}
