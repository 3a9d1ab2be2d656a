//! The real binary as an operator runs it: JSON logs that follow each request
//! by its id and never show a person's data, and a graceful stop on SIGTERM
//! that lets a slow submission finish with its receipt before the process
//! exits 0.

mod common;

use std::path::Path;
use std::time::Duration;

use common::served::Served;
use corrections_gateway::partner::Partner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// What the court fixture says about the person: none of it may reach a log.
const PERSONAL: [&str; 8] = [
    "阿依古丽",
    "买买提",
    "620102199003070026",
    "620102199003070027",
    "1990-03-07",
    "东岗西路",
    "危险驾驶",
    "拘役",
];

#[actix_web::test]
async fn json_logs_follow_each_request_by_its_id_and_hold_no_personal_data() {
    let mut gw = Served::start(
        &[],
        &[
            ("GATEWAY_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            // The shared fixture references scans nobody uploads.
            ("GATEWAY_REQUIRE_ATTACHMENTS", "false"),
        ],
    );
    let court = gw.partner("court.620102");
    let document = fixture("tests/fixtures/native/court/handover.notice.xml");
    for text in PERSONAL.iter().take(3) {
        assert!(
            String::from_utf8_lossy(&document).contains(text) || text.ends_with("27"),
            "the fixture carries {text}"
        );
    }

    // A full submission with the caller's request id, answered with it.
    let path = "/api/v1/documents";
    let mut headers = court
        .sign("POST", path, Some("application/xml"), Some(&document))
        .unwrap();
    headers.push(("x-request-id", "partner-42.submit".into()));
    let accepted = court
        .send(
            reqwest::Method::POST,
            path,
            Some(("application/xml", document.clone())),
            headers,
        )
        .await
        .unwrap();
    assert_eq!(
        accepted.status,
        201,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    assert_eq!(accepted.headers["x-request-id"], "partner-42.submit");
    let document_id = accepted.json().unwrap()["document_id"]
        .as_str()
        .unwrap()
        .to_string();

    // A refusal naming the wrong ID number: the problem carries the request id, not the number.
    let bad = String::from_utf8(document.clone())
        .unwrap()
        .replace("620102199003070026", "620102199003070027")
        .replace("88号", "89号")
        .into_bytes();
    let mut headers = court
        .sign("POST", path, Some("application/xml"), Some(&bad))
        .unwrap();
    headers.push((
        "x-request-id",
        "not a sane id: spaces and \"quotes\"".into(),
    ));
    let refused = court
        .send(
            reqwest::Method::POST,
            path,
            Some(("application/xml", bad)),
            headers,
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 422);
    let generated = refused.headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        uuid::Uuid::parse_str(&generated).is_ok(),
        "an insane id is replaced: {generated}"
    );
    assert_eq!(refused.json().unwrap()["request_id"], generated.as_str());

    // Reads of the document and its case.
    let read = court
        .get(&format!("/api/v1/documents/{document_id}"))
        .await
        .unwrap();
    assert_eq!(read.status, 200);
    let canonical = court
        .get(&format!("/api/v1/documents/{document_id}/canonical"))
        .await
        .unwrap();
    assert_eq!(canonical.status, 200);

    gw.signal("TERM");
    assert!(gw.wait(Duration::from_secs(60)).success());

    let log = gw.log_text();
    let mut lines = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        // Parsed, so escaped (\uXXXX) text is scanned as the text it is.
        let text = value.to_string();
        for secret in PERSONAL {
            assert!(
                !text.contains(secret),
                "{secret} leaked into the log: {line}"
            );
        }
        lines.push(value);
    }
    let of = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let submitted = of("partner-42.submit");
    assert!(
        submitted
            .iter()
            .any(|l| l["fields"]["message"] == "request finished" && l["fields"]["status"] == 201),
        "the submission's closing line carries its id"
    );
    let rejected = of(&generated);
    for message in ["submission rejected", "request finished"] {
        assert!(
            rejected.iter().any(|l| l["fields"]["message"] == message),
            "{message} carries the generated id"
        );
    }
    // Every line the gateway's request handling writes is inside a request span.
    for line in &lines {
        let target = line["target"].as_str().unwrap_or("");
        if target.starts_with("corrections_gateway::api")
            || target.starts_with("corrections_gateway::intake")
            || target.starts_with("corrections_gateway::telemetry")
        {
            assert!(
                line["span"]["request_id"].is_string(),
                "request log line without its request id: {line}"
            );
        }
    }
}

/// Sends a signed submission over a raw connection, the body in `pieces`
/// with `pause` between them (a slow client), and returns the status code.
async fn slow_submission(
    addr: &str,
    partner: &Partner,
    body: &[u8],
    pieces: usize,
    pause: Duration,
) -> u16 {
    let path = "/api/v1/documents";
    let headers = partner
        .sign("POST", path, Some("application/xml"), Some(body))
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(body.len().div_ceil(pieces)) {
        tokio::time::sleep(pause).await;
        stream.write_all(chunk).await.unwrap();
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer}"))
}

#[actix_web::test]
async fn sigterm_lets_a_slow_submission_finish_and_exits_zero() {
    let mut gw = Served::start(&[], &[("GATEWAY_SHUTDOWN_TIMEOUT_SECS", "20")]);
    let court = gw.partner("court.620102");
    let body = common::court_notice(7);
    let addr = gw.addr.clone();
    let in_flight = tokio::spawn(async move {
        slow_submission(&addr, &court, &body, 5, Duration::from_millis(400)).await
    });
    // The request is under way (headers sent, body trickling) when the signal comes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connection is accepted while the slow one finishes.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", gw.base_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a new request was served after SIGTERM");
    assert_eq!(
        in_flight.await.unwrap(),
        201,
        "the request in flight finished"
    );
    let status = gw.wait(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    let log = gw.log_text();
    assert!(log.contains("SIGTERM: stopping gracefully"), "{log}");
    assert!(log.contains("background jobs ended"), "{log}");
}
