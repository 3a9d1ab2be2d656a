//! The admin's pages over real HTTP with sessions: an admin creates a clerk
//! who then logs in, resets the password, unlocks and disables accounts —
//! each change in the exchange log without the user name, e-mail or
//! password, each form CSRF-checked, bad input refused in both languages —
//! and sees the registry with the trust store's certificates, a revoked one
//! marked; every other role gets 403 on every admin route.

mod common;

use common::forms::{browser, fetch, login, post_form};
use common::{add_user, add_web_users, TestGateway, PASSWORD};

/// The password the page shows once.
fn shown_password(page: &str) -> String {
    let at = page
        .find("<code class=\"password\">")
        .unwrap_or_else(|| panic!("no password shown: {page}"))
        + "<code class=\"password\">".len();
    page[at..at + 20].to_string()
}

/// The form action of `action` in the row of `username`.
fn action_of(page: &str, username: &str, action: &str) -> String {
    let row = &page[page
        .find(&format!("data-user=\"{username}\""))
        .unwrap_or_else(|| panic!("no row of {username}"))..];
    let row = &row[..row.find("</tr>").unwrap()];
    let end = row
        .find(&format!("/{action}\""))
        .unwrap_or_else(|| panic!("no {action} form for {username}: {row}"));
    let start = row[..end].rfind("action=\"").unwrap() + 8;
    format!("{}/{action}", &row[start..end])
}

async fn user_changes(gw: &TestGateway) -> Vec<serde_json::Value> {
    gw.unforked_log()
        .await
        .into_iter()
        .filter(|l| l["event"] == "user.changed")
        .collect()
}

#[actix_web::test]
async fn an_admin_creates_a_clerk_who_logs_in_and_every_change_is_logged_without_personal_data() {
    let gw = TestGateway::start().await;
    add_user(&gw, "admin", "admin", None).await;
    let admin_id = gw.store().user_by_name("admin").await.unwrap().unwrap().id;
    let admin = browser();
    assert_eq!(login(&gw, &admin, "admin", PASSWORD).await.0, 200);
    let (status, page) = fetch(&gw, &admin, "/ui/admin/users").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("用户管理") && page.contains("新建用户"),
        "{page}"
    );

    // Bad input: refused in both languages, nothing stored or logged.
    let (status, page) = post_form(
        &gw,
        &admin,
        "/ui/admin/users",
        "/ui/admin/users",
        &[
            ("username", "x"),
            ("role", "clerk"),
            ("agency", "corrections.620102"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("用户名须为"), "{page}");
    let (status, page) = post_form(
        &gw,
        &admin,
        "/ui/admin/users?lang=en",
        "/ui/admin/users",
        &[
            ("username", "clerk.nobody"),
            ("role", "clerk"),
            ("agency", ""),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("a clerk needs an agency"), "{page}");
    // Without the session's CSRF token: refused.
    let forged = admin
        .post(format!("{}/ui/admin/users", gw.base_url))
        .form(&[
            ("username", "clerk.forged"),
            ("role", "admin"),
            ("csrf", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(user_changes(&gw).await.is_empty());

    // Create a clerk: the password is shown once, the clerk logs in with it.
    let (status, page) = post_form(
        &gw,
        &admin,
        "/ui/admin/users?lang=zh",
        "/ui/admin/users",
        &[
            ("username", "clerk.new"),
            ("role", "clerk"),
            ("agency", "corrections.620102"),
            ("region", "62"),
            ("email", "neiqin.new@corrections-620102.example"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let password = shown_password(&page);
    let created = gw.store().user_by_name("clerk.new").await.unwrap().unwrap();
    assert_eq!(created.agency_id.as_deref(), Some("corrections.620102"));
    assert_eq!(created.region, None, "a clerk gets no region");
    let (status, _) = post_form(
        &gw,
        &admin,
        "/ui/admin/users",
        "/ui/admin/users",
        &[("username", "clerk.new"), ("role", "auditor")],
    )
    .await;
    assert_eq!(status, 409, "the name is taken");

    let clerk = browser();
    let (status, page) = login(&gw, &clerk, "clerk.new", &password).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("clerk.new"));

    // A reset password ends the clerk's session; only the new one works.
    let (_, list) = fetch(&gw, &admin, "/ui/admin/users").await;
    let reset = action_of(&list, "clerk.new", "password");
    let (status, page) = post_form(&gw, &admin, "/ui/admin/users", &reset, &[]).await;
    assert_eq!(status, 200, "{page}");
    let new_password = shown_password(&page);
    assert_ne!(new_password, password);
    let after = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(after.url().path(), "/ui/login", "the session ended");
    assert_eq!(login(&gw, &clerk, "clerk.new", &password).await.0, 401);

    // Locked after failed logins; the admin unlocks.
    for _ in 0..5 {
        login(&gw, &clerk, "clerk.new", "wrong password!!").await;
    }
    assert_eq!(login(&gw, &clerk, "clerk.new", &new_password).await.0, 429);
    let (_, list) = fetch(&gw, &admin, "/ui/admin/users").await;
    assert!(list.contains("已锁定"), "{list}");
    let unlock = action_of(&list, "clerk.new", "unlock");
    assert_eq!(
        post_form(&gw, &admin, "/ui/admin/users", &unlock, &[])
            .await
            .0,
        200
    );
    assert_eq!(login(&gw, &clerk, "clerk.new", &new_password).await.0, 200);

    // Disabled: the session ends and no login; enabled again: back in.
    let (_, list) = fetch(&gw, &admin, "/ui/admin/users").await;
    let disable = action_of(&list, "clerk.new", "disable");
    let (status, page) = post_form(&gw, &admin, "/ui/admin/users", &disable, &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("已停用"), "{page}");
    let after = clerk
        .get(format!("{}/ui/", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(after.url().path(), "/ui/login");
    assert_eq!(login(&gw, &clerk, "clerk.new", &new_password).await.0, 401);
    let (_, list) = fetch(&gw, &admin, "/ui/admin/users").await;
    let enable = action_of(&list, "clerk.new", "enable");
    assert_eq!(
        post_form(&gw, &admin, "/ui/admin/users", &enable, &[])
            .await
            .0,
        200
    );
    assert_eq!(login(&gw, &clerk, "clerk.new", &new_password).await.0, 200);

    // An admin cannot lock themselves out: no disable button, and the route refuses.
    let (_, list) = fetch(&gw, &admin, "/ui/admin/users").await;
    let own = format!("/ui/admin/users/{admin_id}/disable");
    assert!(!list.contains(&format!("action=\"{own}\"")));
    assert_eq!(
        post_form(&gw, &admin, "/ui/admin/users", &own, &[]).await.0,
        409
    );

    // Every change is logged by ids, role and scope only.
    let changes = user_changes(&gw).await;
    let kinds: Vec<&str> = changes
        .iter()
        .map(|l| l["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "password_reset",
            "unlocked",
            "disabled",
            "enabled"
        ]
    );
    for leaf in &changes {
        assert_eq!(leaf["user_id"], created.id.as_str());
        assert_eq!(leaf["by_user"], admin_id.as_str());
        assert_eq!(leaf["role"], "clerk");
        assert_eq!(leaf["agency"], "corrections.620102");
    }
    let text: String = gw.leaves().await.concat();
    for secret in [
        "clerk.new",
        "neiqin.new@corrections-620102.example",
        password.as_str(),
        new_password.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} is in the log");
    }

    // In English too.
    let (_, page) = fetch(&gw, &admin, "/ui/admin/users?lang=en").await;
    assert!(
        page.contains("New user") && page.contains("Reset password"),
        "{page}"
    );
}

#[actix_web::test]
async fn the_registry_view_shows_each_agencys_certificates_and_a_revoked_one() {
    let gw = TestGateway::start().await;
    add_user(&gw, "admin", "admin", None).await;
    let admin = browser();
    assert_eq!(login(&gw, &admin, "admin", PASSWORD).await.0, 200);
    let court_cert = gw.pki().join("court.620102").join("ed25519.crt.pem");
    let fingerprint = {
        let pem = std::fs::read(&court_cert).unwrap();
        corrections_gateway::security::trust::fingerprint(
            &openssl::x509::X509::from_pem(&pem).unwrap(),
        )
    };
    let (status, page) = fetch(&gw, &admin, "/ui/admin/agencies").await;
    assert_eq!(status, 200);
    for agency in ["court.620102", "corrections.620102", "prison.620000.3"] {
        assert!(page.contains(agency), "{agency}");
    }
    assert!(page.contains("兰州市城关区人民法院") && page.contains(&fingerprint));
    assert!(
        page.contains("http://127.0.0.1:9/api/inbox"),
        "the push endpoint"
    );
    assert!(!page.contains("已吊销"));

    corrections_gateway::security::devpki::revoke(&gw.pki(), "court.620102", &court_cert).unwrap();
    gw.running.gateway.trust.reload().unwrap();
    let (_, page) = fetch(&gw, &admin, "/ui/admin/agencies?lang=en").await;
    let row = &page[page.find(&fingerprint).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("revoked"), "{row}");
    assert!(page.contains("Agency registry and certificates"));
}

#[actix_web::test]
async fn every_other_role_gets_403_on_every_admin_route() {
    let gw = TestGateway::start().await;
    add_web_users(&gw).await;
    let target = gw
        .store()
        .user_by_name("clerk.court")
        .await
        .unwrap()
        .unwrap()
        .id;
    let routes_get = ["/ui/admin/users", "/ui/admin/agencies"];
    let routes_post = [
        "/ui/admin/users".to_string(),
        format!("/ui/admin/users/{target}/password"),
        format!("/ui/admin/users/{target}/unlock"),
        format!("/ui/admin/users/{target}/disable"),
        format!("/ui/admin/users/{target}/enable"),
    ];
    for username in ["clerk.corrections", "supervisor.62", "auditor"] {
        let client = browser();
        assert_eq!(login(&gw, &client, username, PASSWORD).await.0, 200);
        let (_, home) = fetch(&gw, &client, "/ui/").await;
        assert!(
            !home.contains("/ui/admin/"),
            "{username} sees no admin link"
        );
        for path in routes_get {
            let (status, page) = fetch(&gw, &client, path).await;
            assert_eq!(status, 403, "{username} GET {path}");
            assert!(page.contains("仅管理员"), "{page}");
        }
        for path in &routes_post {
            let (status, _) = post_form(
                &gw,
                &client,
                "/ui/",
                path,
                &[("username", "clerk.sneaky"), ("role", "admin")],
            )
            .await;
            assert_eq!(status, 403, "{username} POST {path}");
        }
    }
    // Not logged in: the login form.
    let anonymous = browser();
    let answer = anonymous
        .get(format!("{}/ui/admin/users", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.url().path(), "/ui/login");
    assert!(gw
        .store()
        .user_by_name("clerk.sneaky")
        .await
        .unwrap()
        .is_none());
    assert!(user_changes(&gw).await.is_empty());
}
