//! The web interface in a real headless Chromium, driven over WebDriver
//! (chromedriver), one role after the other: a clerk logs in by typing and
//! clicking, sees the overdue case on top of the dashboard, opens its
//! timeline, sends the receipt from the case page (the timeline shows it),
//! searches the person (ID numbers masked) and logs out; another agency's
//! clerk typing the case's URL gets "not found"; an auditor verifies an
//! exchange-log entry's inclusion in the browser (pass) and downloads the
//! case's evidence bundle, which `corrections-gateway log verify` accepts.
//! Screenshots of the screens are written to `target/screenshots/` (the
//! ones in `docs/screenshots/` come from here).
//!
//! `scripts/test.sh` installs Chromium and ChromeDriver (Debian's
//! `chromium`, `chromium-driver`); without them this test fails and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{add_user, court_notice, TestGateway, PASSWORD};
use corrections_gateway::security::alg::Algorithm;
use fantoccini::{Client, ClientBuilder, Locator};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A headless Chromium that saves downloads in `downloads`.
async fn chromium(downloads: &Path) -> (Driver, Client) {
    let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chromedriver is not installed: run `bash scripts/test.sh`, which installs Debian's chromium and chromium-driver");
    let port = free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver"),
    );
    let profile = tempfile::tempdir().unwrap().keep();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1366,768",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            }
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    for _ in 0..100 {
        match ClientBuilder::native()
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not answer on port {port}");
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn log_in(browser: &Client, base: &str, username: &str) {
    browser.goto(&format!("{base}/ui/login")).await.unwrap();
    browser
        .wait()
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Logged in: the header has the logout form.
    browser
        .wait()
        .for_element(Locator::Css("header form"))
        .await
        .unwrap();
}

#[actix_web::test]
async fn a_clerk_clicks_from_the_overdue_case_to_its_timeline_in_chromium() {
    let gw = TestGateway::start().await;
    add_user(
        &gw,
        "clerk.corrections",
        "clerk",
        Some("corrections.620102"),
    )
    .await;
    add_user(&gw, "clerk.prison", "clerk", Some("prison.620000.3")).await;
    add_user(&gw, "auditor", "auditor", None).await;
    let court = gw.partner("court.620102", Algorithm::EcdsaP256Sha256);
    // The judgment took effect on 2026-10-09 and the person had to report by
    // 10-19: the case is overdue when the notice finally arrives.
    let late = common::edit(
        &common::edit(
            &court_notice(7),
            "<SXRQ>2026-11-18</SXRQ>",
            "<SXRQ>2026-10-09</SXRQ>",
        ),
        "<BDQX>2026-11-28</BDQX>",
        "<BDQX>2026-10-19</BDQX>",
    );
    let notice = court.submit(&late, "application/xml").await.unwrap();
    assert_eq!(
        notice.status,
        201,
        "{}",
        String::from_utf8_lossy(&notice.body)
    );
    let on_time = court
        .submit(&court_notice(8), "application/xml")
        .await
        .unwrap();
    assert_eq!(on_time.status, 201);
    let case_id = notice.json().unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    let downloads = tempfile::tempdir().unwrap();
    let (_driver, browser) = chromium(downloads.path()).await;
    let base = gw.base_url.clone();
    log_in(&browser, &base, "clerk.corrections").await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/ui/");
    // The notice arrived after its 10-day documents period: the case is overdue, on top.
    let first_row = browser
        .find(Locator::Css("tbody tr:first-child"))
        .await
        .unwrap();
    let first_row = first_row.html(false).await.unwrap();
    assert!(
        first_row.contains("overdue") && first_row.contains(&case_id),
        "{first_row}"
    );
    std::fs::write(
        screenshots().join("dashboard.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    browser
        .find(Locator::Css(&format!("a[href='/ui/cases/{case_id}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("main p a[href='/ui/']"))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        format!("/ui/cases/{case_id}")
    );
    let page = browser.source().await.unwrap();
    assert!(page.contains("handover.receipt") && page.contains("handover.notice"));
    std::fs::write(
        screenshots().join("case.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // The receipt, from the form of the case page: accepted, in the timeline.
    let receipt_form = "form[action$='/send/handover.receipt']";
    browser
        .find(Locator::Css(&format!(
            "{receipt_form} input[name=document_no]"
        )))
        .await
        .unwrap()
        .send_keys("城矫接〔2026〕7号")
        .await
        .unwrap();
    browser
        .find(Locator::Css(&format!("{receipt_form} button[type=submit]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("p.sent"))
        .await
        .unwrap();
    let timeline = browser
        .find(Locator::Id("timeline"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(timeline.contains("handover.receipt"), "{timeline}");
    std::fs::write(
        screenshots().join("case-receipt.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // English, by the switch in the header.
    browser
        .find(Locator::LinkText("English"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("html[lang=en]"))
        .await
        .unwrap();
    assert!(browser.source().await.unwrap().contains("Deadlines"));

    // Search by name: the ID number is masked until asked for.
    browser
        .find(Locator::LinkText("Search"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("阿依古丽")
        .await
        .unwrap();
    browser
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let results = browser
        .wait()
        .for_element(Locator::Id("results"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        results.contains("6201**********0026") && !results.contains("620102199003070026"),
        "{results}"
    );
    std::fs::write(
        screenshots().join("search.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    log_out(&browser).await;

    // Another agency's clerk cannot open the case by typing its URL.
    log_in(&browser, &base, "clerk.prison").await;
    browser
        .goto(&format!("{base}/ui/cases/{case_id}"))
        .await
        .unwrap();
    let page = browser.source().await.unwrap();
    assert!(
        page.contains("no such case") || page.contains("未找到该案件"),
        "{page}"
    );
    log_out_by_url(&browser, &base).await;

    // The auditor checks an entry's inclusion in the browser: the page's
    // script recomputes the leaf hash and folds the proof to the signed root.
    log_in(&browser, &base, "auditor").await;
    browser
        .goto(&format!("{base}/ui/log?lang=zh"))
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("button.verify"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verdict = browser
        .wait()
        .for_element(Locator::Css(".result.pass, .result.fail"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(verdict.starts_with("通过"), "{verdict}");
    assert!(verdict.contains("检查点签名有效"), "{verdict}");
    std::fs::write(
        screenshots().join("log.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // … and downloads the case's evidence bundle, which verifies offline.
    browser
        .goto(&format!("{base}/ui/cases/{case_id}"))
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("evidence"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let bundle = downloads.path().join(format!("evidence-{case_id}.json"));
    for _ in 0..100 {
        if bundle.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_corrections-gateway"))
        .args(["log", "verify"])
        .arg(&bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok: case"),
        "{}: {stdout}",
        bundle.display()
    );
    browser.close().await.unwrap();
}

async fn log_out(browser: &Client) {
    browser
        .find(Locator::Css("header button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/ui/login");
}

/// From a page without the header (an error page): back to the start, then out.
async fn log_out_by_url(browser: &Client, base: &str) {
    browser.goto(&format!("{base}/ui/")).await.unwrap();
    log_out(browser).await;
}
