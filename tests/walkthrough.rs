//! The README's by-hand walk-through (`docs/partner-walkthrough.sh`: openssl
//! and curl only) works against a real gateway, and the receipt it gets
//! verifies with stock openssl.

mod common;

use common::TestGateway;

#[actix_web::test]
async fn the_partner_walkthrough_with_openssl_and_curl_works() {
    // The walkthrough sends the shared court sample, whose PDFs nobody has.
    let gw = TestGateway::start_with(common::lenient_attachments).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/partner-walkthrough.sh");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/native/court/handover.notice.xml"
    );
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&gw.base_url)
        .arg(gw.pki())
        .arg(fixture)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walk-through failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("HTTP 201"), "{stdout}");
    assert!(
        stdout.contains("Verified OK"),
        "openssl verified the receipt: {stdout}"
    );
    assert_eq!(gw.count("documents").await, 1);
}
