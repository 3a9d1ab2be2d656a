//! The web interface as a browser without JavaScript sees it: a client that
//! keeps cookies, pages fetched, forms posted with the page's CSRF token,
//! logging in. Shared by the web, admin and mail tests.

use super::TestGateway;

/// A browser-like client: keeps cookies, follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The CSRF token of the first form of a page.
pub fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_string()
}

/// GETs a page; its status and text.
pub async fn fetch(
    gw: &TestGateway,
    client: &reqwest::Client,
    path: impl AsRef<str>,
) -> (u16, String) {
    let answer = client
        .get(format!("{}{}", gw.base_url, path.as_ref()))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Opens the page `form_page` for its CSRF token, then posts `fields` with
/// it to `action`; returns the status and page of the answer (after redirects).
pub async fn post_form(
    gw: &TestGateway,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let (_, page) = fetch(gw, client, form_page).await;
    let mut form = vec![("csrf", hidden_csrf(&page))];
    form.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    let answer = client
        .post(format!("{}{action}", gw.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Logs in; returns the status and page of the answer (after redirects).
pub async fn login(
    gw: &TestGateway,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> (u16, String) {
    let fields = [("username", username), ("password", password)];
    post_form(gw, client, "/ui/login", "/ui/login", &fields).await
}
