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

use common::{add_web_users, court_notice, post_court_notice, TestGateway, PASSWORD};
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

/// Waits for the element `css` and types `text` into it.
async fn type_into(browser: &Client, css: &str, text: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks the element `click` and waits for `then` to appear; returns its text.
async fn click_then(browser: &Client, click: Locator<'_>, then: &str) -> String {
    browser.find(click).await.unwrap().click().await.unwrap();
    let found = browser.wait().for_element(Locator::Css(then)).await;
    if let Err(e) = found {
        let page = browser.source().await.unwrap_or_default();
        panic!("waiting for {then}: {e}; the page:\n{page}");
    }
    browser
        .find(Locator::Css(then))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn screenshot(browser: &Client, name: &str) {
    std::fs::write(
        screenshots().join(name),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
}

async fn log_in(browser: &Client, base: &str, username: &str) {
    browser.goto(&format!("{base}/ui/login")).await.unwrap();
    type_into(browser, "#username", username).await;
    type_into(browser, "#password", PASSWORD).await;
    // Logged in: the header has the logout form.
    click_then(browser, Locator::Css("button[type=submit]"), "header form").await;
}

async fn log_out(browser: &Client) {
    click_then(
        browser,
        Locator::Css("header button[type=submit]"),
        "#username",
    )
    .await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/ui/login");
}

#[actix_web::test]
async fn a_clerk_clicks_from_the_overdue_case_to_its_timeline_in_chromium() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
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
    let case_id = post_court_notice(&gw, &late).await["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    post_court_notice(&gw, &court_notice(8)).await;

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
    screenshot(&browser, "dashboard.png").await;

    let case_link = format!("a[href='/ui/cases/{case_id}']");
    click_then(&browser, Locator::Css(&case_link), "main p a[href='/ui/']").await;
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        format!("/ui/cases/{case_id}")
    );
    let page = browser.source().await.unwrap();
    assert!(page.contains("handover.receipt") && page.contains("handover.notice"));
    screenshot(&browser, "case.png").await;

    // The receipt, from the form of the case page: accepted, in the timeline.
    let receipt_form = "form[action$='/send/handover.receipt']";
    type_into(
        &browser,
        &format!("{receipt_form} input[name=document_no]"),
        "城矫接〔2026〕7号",
    )
    .await;
    let submit = format!("{receipt_form} button[type=submit]");
    click_then(&browser, Locator::Css(&submit), "p.sent").await;
    let timeline = browser
        .find(Locator::Id("timeline"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(timeline.contains("handover.receipt"), "{timeline}");
    screenshot(&browser, "case-receipt.png").await;

    // English, by the switch in the header.
    click_then(&browser, Locator::LinkText("English"), "html[lang=en]").await;
    assert!(browser.source().await.unwrap().contains("Deadlines"));

    // Search by name: the ID number is masked until asked for.
    click_then(&browser, Locator::LinkText("Search"), "#q").await;
    type_into(&browser, "#q", "阿依古丽").await;
    let results = click_then(
        &browser,
        Locator::Css("main form button[type=submit]"),
        "#results",
    )
    .await;
    assert!(
        results.contains("6201**********0026") && !results.contains("620102199003070026"),
        "{results}"
    );
    screenshot(&browser, "search.png").await;
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
    browser.goto(&format!("{base}/ui/")).await.unwrap();
    log_out(&browser).await;

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
        .unwrap();
    let verdict = click_then(
        &browser,
        Locator::Css("button.verify"),
        ".result.pass, .result.fail",
    )
    .await;
    assert!(verdict.starts_with("通过"), "{verdict}");
    assert!(verdict.contains("检查点签名有效"), "{verdict}");
    screenshot(&browser, "log.png").await;

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
    let (ok, out) = common::cli(&["log", "verify", bundle.to_str().unwrap()]);
    assert!(
        ok && out.contains("ok: case"),
        "{}: {out}",
        bundle.display()
    );
    browser.close().await.unwrap();
}

/// An admin, by clicking: opens the users page from the header, creates a
/// clerk of the corrections agency (the password is shown once), sees the
/// agency registry with its certificates; the new clerk logs in with the
/// shown password and has no admin link.
#[actix_web::test]
async fn an_admin_creates_a_clerk_in_chromium_who_then_logs_in() {
    let gw = TestGateway::start().await;
    common::add_user(&gw, "admin", "admin", None).await;
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, browser) = chromium(downloads.path()).await;
    let base = gw.base_url.clone();
    log_in(&browser, &base, "admin").await;
    click_then(
        &browser,
        Locator::Css("header a[href='/ui/admin/users']"),
        "form[action='/ui/admin/users']",
    )
    .await;
    type_into(&browser, "#username", "clerk.zhang").await;
    browser
        .find(Locator::Css("#role option[value=clerk]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("#agency option[value='corrections.620102']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(&browser, "#email", "zhang@corrections-620102.example").await;
    let password = click_then(
        &browser,
        Locator::Css("form[action='/ui/admin/users'] button[type=submit]"),
        "code.password",
    )
    .await;
    assert_eq!(password.len(), 20, "{password}");
    let row = browser
        .find(Locator::Css("tr[data-user='clerk.zhang']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("corrections.620102"), "{row}");
    screenshot(&browser, "admin-users.png").await;

    click_then(
        &browser,
        Locator::Css("header a[href='/ui/admin/agencies']"),
        "table.certificates",
    )
    .await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("兰州市城关区人民法院") && page.contains("有效"));
    screenshot(&browser, "admin-agencies.png").await;
    log_out(&browser).await;

    browser.goto(&format!("{base}/ui/login")).await.unwrap();
    type_into(&browser, "#username", "clerk.zhang").await;
    type_into(&browser, "#password", &password).await;
    click_then(&browser, Locator::Css("button[type=submit]"), "header form").await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/ui/");
    let header = browser
        .find(Locator::Css("header"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        header.contains("clerk.zhang") && !header.contains("用户管理"),
        "{header}"
    );
    browser.close().await.unwrap();
}
