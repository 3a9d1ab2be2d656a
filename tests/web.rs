//! The web interface over real HTTP: logging in (and failing, and being
//! locked out), the dashboard and a case page scoped to the clerk's agency,
//! CSRF on every form, the language switch and the security headers.
//! (The headless-browser walk-through builds on these in a later test.)

mod common;

use common::{add_user, court_notice, TestGateway, PASSWORD};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::web::users::{add, NewUser};

/// A browser-like client: keeps cookies, follows redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_string()
}

/// Logs in; returns the status and page of the answer (after redirects).
async fn login(
    gw: &TestGateway,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> (u16, String) {
    let form = client
        .get(format!("{}/ui/login", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer = client
        .post(format!("{}/ui/login", gw.base_url))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &hidden_csrf(&form)),
        ])
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[actix_web::test]
async fn a_clerk_logs_in_sees_the_agencys_cases_and_nothing_else() {
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
    let notice = court
        .submit(&court_notice(1), "application/xml")
        .await
        .unwrap();
    assert_eq!(notice.status, 201);
    let case_id = notice.json().unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Not logged in: every page leads to the login form.
    let anonymous = browser();
    let page = anonymous
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.url().path(), "/ui/login");
    let headers = page.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");

    let clerk = browser();
    let (status, page) = login(&gw, &clerk, "clerk.corrections", "wrong password!!").await;
    assert_eq!(status, 401);
    assert!(page.contains("用户名或密码错误"), "{page}");
    let (status, page) = login(&gw, &clerk, "clerk.corrections", PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("/ui/cases/{case_id}")),
        "the dashboard lists the case: {page}"
    );
    assert!(page.contains("交付接收"));

    let case_page = clerk
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(case_page.status(), 200);
    let case_page = case_page.text().await.unwrap();
    assert!(
        case_page.contains("handover.receipt") && case_page.contains("期限"),
        "{case_page}"
    );

    // English on request, kept for the next page.
    let english = clerk
        .get(format!("{}/ui/?lang=en", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("Cases") && english.contains("Handover"),
        "{english}"
    );
    let still = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(still.contains("Next deadline"));

    // Another agency's clerk cannot open the case by URL, nor see it listed.
    let other = browser();
    assert_eq!(login(&gw, &other, "clerk.prison", PASSWORD).await.0, 200);
    let refused = other
        .get(format!("{}/ui/cases/{case_id}", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let dashboard = other
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dashboard.contains(&case_id));

    // The auditor sees every case.
    let auditor = browser();
    let (_, page) = login(&gw, &auditor, "auditor", PASSWORD).await;
    assert!(page.contains(&format!("/ui/cases/{case_id}")));

    // Logging out needs the session's CSRF token; afterwards the session is gone.
    let page = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_csrf(&page);
    let forged = clerk
        .post(format!("{}/ui/logout", gw.base_url))
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let out = clerk
        .post(format!("{}/ui/logout", gw.base_url))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.url().path(), "/ui/login");
    let after = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(after.url().path(), "/ui/login");
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_and_forms_need_their_token() {
    let gw = TestGateway::start().await;
    add_user(&gw, "clerk.court", "clerk", Some("court.620102")).await;
    let client = browser();
    for _ in 0..5 {
        assert_eq!(
            login(&gw, &client, "clerk.court", "not the password")
                .await
                .0,
            401
        );
    }
    let (status, page) = login(&gw, &client, "clerk.court", PASSWORD).await;
    assert_eq!(status, 429, "locked even with the right password");
    assert!(page.contains("锁定"), "{page}");

    // An unknown user name gets the same answer as a wrong password.
    let (status, page) = login(&gw, &client, "nobody", PASSWORD).await;
    assert_eq!(status, 401);
    assert!(page.contains("用户名或密码错误"));

    // A login post without the form's cookie (another site's form) is refused.
    let bare = reqwest::Client::new()
        .post(format!("{}/ui/login", gw.base_url))
        .form(&[
            ("username", "clerk.court"),
            ("password", PASSWORD),
            ("csrf", &"a".repeat(64)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);

    // Weak passwords and unknown agencies are refused when users are created.
    let weak = add(
        &gw.running.gateway,
        NewUser {
            username: "clerk.two".into(),
            password: "short".into(),
            role: "clerk".into(),
            agency: Some("court.620102".into()),
            region: None,
            email: None,
        },
    )
    .await;
    assert!(weak.unwrap_err().to_string().contains("at least 12"));
    let unknown = add(
        &gw.running.gateway,
        NewUser {
            username: "clerk.three".into(),
            password: PASSWORD.into(),
            role: "clerk".into(),
            agency: Some("court.999999".into()),
            region: None,
            email: None,
        },
    )
    .await;
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("not in the registry"));
}
