//! A court sends a handover notice with its scanned judgments: uploaded on
//! their own first, or in one multipart/related body with the notice. The
//! gateway checks every digest the notice lists, stores each scan once, lets
//! the notice's parties (and only them) read it, logs every read without the
//! file name — and refuses anything incomplete without leaving a trace but
//! the digest-only log entry.

mod common;

use std::time::{Duration, Instant};

use common::scans::{multipart, notice_with, scan};
use common::TestGateway;
use corrections_gateway::partner::{Answer, Partner};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const COURT: &str = "court.620102";
const CORRECTIONS: &str = "corrections.620102";
const PRISON: &str = "prison.620000.3";
const PDF: &str = "application/pdf";

async fn upload(partner: &Partner, bytes: &[u8], sha256: &str) -> Answer {
    let path = format!("/api/v1/attachments/{sha256}");
    let headers = partner.sign("PUT", &path, Some(PDF), Some(bytes)).unwrap();
    partner
        .send(
            reqwest::Method::PUT,
            &path,
            Some((PDF, bytes.to_vec())),
            headers,
        )
        .await
        .unwrap()
}

async fn submit_multipart(partner: &Partner, content_type: &str, body: &[u8]) -> Answer {
    partner.submit(body, content_type).await.unwrap()
}

fn problem_paths(answer: &Answer) -> Vec<(String, String)> {
    let problem = answer.json().unwrap();
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or_default().to_string(),
                        e["path"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every file under DIR/blobs except the temporary directory.
fn blob_files(gw: &TestGateway) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&gw.dir.path().join("blobs"), &mut out);
    out.sort();
    out
}

const TABLES: [&str; 6] = [
    "documents",
    "document_attachments",
    "document_envelopes",
    "attachment_uploads",
    "receipts",
    "seen_signatures",
];

async fn counts(gw: &TestGateway) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(gw.count(t).await);
    }
    out
}

#[actix_web::test]
async fn an_uploaded_judgment_travels_with_the_notice_to_its_parties_only() {
    let gw = TestGateway::start().await;
    let gateway_cert = gw.gateway_cert();
    let court = gw.partner(COURT, Algorithm::Sm2Sm3);
    let judgment = scan(1, 5000);
    let sha = sha256_hex(&judgment);

    let first = upload(&court, &judgment, &sha).await;
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    first.verify(&gateway_cert).expect("signed by the gateway");
    let answer = first.json().unwrap();
    assert_eq!(answer["sha256"], sha.as_str());
    assert_eq!(answer["size"], judgment.len());
    assert_eq!(answer["media_type"], PDF);
    // Same bytes again, freshly signed: idempotent.
    let again = upload(&court, &judgment, &sha).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json().unwrap(), answer);

    let notice = notice_with(0, &[("PJS", &judgment, true)]);
    let receipt = court.submit(&notice, "application/xml").await.unwrap();
    assert_eq!(
        receipt.status,
        201,
        "{}",
        String::from_utf8_lossy(&receipt.body)
    );
    let receipt = receipt.json().unwrap();
    assert_eq!(receipt["attachments"][0]["sha256"], sha.as_str());
    assert_eq!(receipt["attachments"][0]["size"], judgment.len());
    let id = receipt["document_id"].as_str().unwrap();
    assert_eq!(gw.count("document_attachments").await, 1);

    let path = format!("/api/v1/documents/{id}/attachments/{sha}");
    let corrections = gw.partner(CORRECTIONS, Algorithm::EcdsaP256Sha256);
    let read = corrections.get(&path).await.unwrap();
    assert_eq!(read.status, 200);
    assert_eq!(read.body.as_ref(), judgment.as_slice());
    assert_eq!(
        read.headers.get("content-type").unwrap().to_str().unwrap(),
        PDF
    );
    read.verify(&gateway_cert)
        .expect("the attachment is signed by the gateway");

    // Not a party: the same 404 as an unknown document.
    let prison = gw.partner(PRISON, Algorithm::EcdsaP256Sha256);
    let refused = prison.get(&path).await.unwrap();
    assert_eq!(refused.status, 404);
    let unknown = prison
        .get(&format!(
            "/api/v1/documents/00000000-0000-0000-0000-000000000000/attachments/{sha}"
        ))
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(
        refused.json().unwrap()["code"],
        unknown.json().unwrap()["code"]
    );
    // A party asking for a digest the document does not list.
    let other = sha256_hex(b"other");
    let not_listed = corrections
        .get(&format!("/api/v1/documents/{id}/attachments/{other}"))
        .await
        .unwrap();
    assert_eq!(not_listed.status, 404);

    let leaves = gw.leaves().await;
    let reads: Vec<&String> = leaves
        .iter()
        .filter(|l| l.contains("\"attachment.read\""))
        .collect();
    assert_eq!(reads.len(), 1, "one successful read, logged once");
    assert!(reads[0].contains(&sha) && reads[0].contains(CORRECTIONS) && reads[0].contains(id));
    assert!(leaves.iter().any(|l| l.contains("\"attachment.uploaded\"")));
    for leaf in &leaves {
        assert!(
            !leaf.contains("阿依古丽") && !leaf.contains(".pdf"),
            "file names never reach the log: {leaf}"
        );
    }
}

#[actix_web::test]
async fn a_notice_and_two_scans_in_one_multipart_body_are_stored_once_each() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let judgment = scan(2, 3000);
    let notice_pdf = scan(3, 4000);
    let doc = notice_with(
        1,
        &[("PJS", &judgment, true), ("ZXTZS", &notice_pdf, false)],
    );
    let (content_type, body) = multipart(&doc, &[&judgment, &notice_pdf]);
    let answer = submit_multipart(&court, &content_type, &body).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let receipt = answer.json().unwrap();
    assert_eq!(receipt["body_sha256"], sha256_hex(&body));
    let id = receipt["document_id"].as_str().unwrap().to_string();
    assert_eq!(gw.count("document_attachments").await, 2);
    assert_eq!(gw.count("document_envelopes").await, 1);
    // The scans and the signed body (the evidence) are blobs; nothing else.
    let mut expected = vec![
        sha256_hex(&judgment),
        sha256_hex(&notice_pdf),
        sha256_hex(&body),
    ];
    expected.sort();
    assert_eq!(blob_files(&gw), expected);

    let corrections = gw.partner(CORRECTIONS, Algorithm::Ed25519);
    for scan in [&judgment, &notice_pdf] {
        let read = corrections
            .get(&format!(
                "/api/v1/documents/{id}/attachments/{}",
                sha256_hex(scan)
            ))
            .await
            .unwrap();
        assert_eq!(read.status, 200);
        assert_eq!(read.body.as_ref(), scan.as_slice());
    }
    // The document itself reads back as the native part, not the multipart body.
    let original = corrections
        .get(&format!("/api/v1/documents/{id}"))
        .await
        .unwrap();
    assert_eq!(original.body.as_ref(), doc.as_slice());

    // Resubmitting the same body, freshly signed: the original receipt.
    let again = submit_multipart(&court, &content_type, &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json().unwrap(), receipt);
    assert_eq!(gw.count("documents").await, 1);

    // A second notice sharing the judgment (uploaded by the same court as a
    // part before) stores no second copy.
    let doc2 = notice_with(2, &[("PJS", &judgment, true)]);
    let (ct2, body2) = multipart(&doc2, &[&judgment]);
    assert_eq!(submit_multipart(&court, &ct2, &body2).await.status, 201);
    assert_eq!(
        blob_files(&gw).len(),
        4,
        "one more envelope, no second scan"
    );
    // Attachments and envelopes were written with their group, table by
    // table, not by the one-at-a-time fallback (store/rows.rs).
    assert_eq!(gw.store().commit_fallbacks(), 0);
}

#[actix_web::test]
async fn a_notice_whose_scan_never_arrived_is_refused_naming_the_attachment() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let judgment = scan(4, 1000);
    let before = counts(&gw).await;
    let notice = notice_with(3, &[("PJS", &judgment, false)]);
    let answer = court.submit(&notice, "application/xml").await.unwrap();
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json().unwrap()["code"], "invalid_document");
    assert_eq!(
        problem_paths(&answer),
        [(
            "attachment_missing".to_string(),
            "/attachments/0/sha256".to_string()
        )]
    );
    // Another agency's upload does not count: bytes must come from the sender.
    let prison = gw.partner(PRISON, Algorithm::EcdsaP256Sha256);
    assert_eq!(
        upload(&prison, &judgment, &sha256_hex(&judgment))
            .await
            .status,
        201
    );
    let answer = court.submit(&notice, "application/xml").await.unwrap();
    assert_eq!(answer.status, 422);
    // A declared size that differs from the upload.
    assert_eq!(
        upload(&court, &judgment, &sha256_hex(&judgment))
            .await
            .status,
        201
    );
    let wrong_size = common::edit(
        &notice_with(4, &[("PJS", &judgment, true)]),
        &format!("DX=\"{}\"", judgment.len()),
        "DX=\"7\"",
    );
    let answer = court.submit(&wrong_size, "application/xml").await.unwrap();
    assert_eq!(answer.status, 422);
    assert_eq!(
        problem_paths(&answer),
        [(
            "attachment_size_mismatch".to_string(),
            "/attachments/0/size".to_string()
        )]
    );
    let after = counts(&gw).await;
    assert_eq!(before[0], after[0], "no document stored");
    assert_eq!(after[1], 0, "no attachment rows");
    let rejected = gw
        .leaves()
        .await
        .into_iter()
        .filter(|l| l.contains("submission.rejected") && l.contains("attachment_"))
        .count();
    assert_eq!(rejected, 3);
}

#[actix_web::test]
async fn an_upload_whose_bytes_do_not_match_its_digest_is_refused_and_not_kept() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::RsaPssSha512);
    let judgment = scan(5, 2000);
    let claimed = sha256_hex(b"something else");
    let answer = upload(&court, &judgment, &claimed).await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json().unwrap()["code"], "attachment_digest_mismatch");
    assert_eq!(gw.count("attachment_uploads").await, 0);
    assert!(blob_files(&gw).is_empty(), "{:?}", blob_files(&gw));
    let leaves = gw.leaves().await;
    assert!(leaves
        .iter()
        .any(|l| l.contains("attachment.rejected") && l.contains(&claimed)));
    // Not a digest at all.
    let path = "/api/v1/attachments/not-a-digest";
    let headers = court.sign("PUT", path, Some(PDF), Some(&judgment)).unwrap();
    let answer = court
        .send(
            reqwest::Method::PUT,
            path,
            Some((PDF, judgment.clone())),
            headers,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json().unwrap()["code"], "attachment_digest_invalid");
    // Unsigned: refused before the body is stored.
    let answer = court
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/attachments/{}", sha256_hex(&judgment)),
            Some((PDF, judgment.clone())),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json().unwrap()["code"], "missing_content_digest");
    assert!(blob_files(&gw).is_empty());
}

#[actix_web::test]
async fn refused_multipart_submissions_leave_no_rows_and_no_blobs() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let judgment = scan(6, 3000);
    let stray = scan(7, 3000);
    let before = counts(&gw).await;
    // A part the notice does not list.
    let doc = notice_with(5, &[("PJS", &judgment, true)]);
    let (ct, body) = multipart(&doc, &[&judgment, &stray]);
    let answer = submit_multipart(&court, &ct, &body).await;
    assert_eq!(
        answer.status,
        422,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        problem_paths(&answer),
        [("attachment_unreferenced".to_string(), String::new())]
    );
    // A listed scan missing from the body.
    let doc = notice_with(6, &[("PJS", &judgment, true), ("ZXTZS", &stray, true)]);
    let (ct, body) = multipart(&doc, &[&judgment]);
    let answer = submit_multipart(&court, &ct, &body).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        problem_paths(&answer),
        [(
            "attachment_missing".to_string(),
            "/attachments/1/sha256".to_string()
        )]
    );
    // A document that does not decode, with a valid scan.
    let bad = common::edit(&doc, "620102199003070026", "620102199003070027");
    let (ct, body) = multipart(&bad, &[&judgment, &stray]);
    assert_eq!(submit_multipart(&court, &ct, &body).await.status, 422);
    // Broken framing.
    let (ct, mut body) = multipart(&doc, &[&judgment, &stray]);
    body.truncate(body.len() - 30);
    let answer = submit_multipart(&court, &ct, &body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json().unwrap()["code"], "multipart_malformed");
    // Signed over other bytes: the signature holds, the digest of the body
    // read does not, and nothing is parsed.
    let (ct, body) = multipart(&doc, &[&judgment, &stray]);
    let headers = court
        .sign("POST", "/api/v1/documents", Some(&ct), Some(b"other"))
        .unwrap();
    let answer = court
        .send(
            reqwest::Method::POST,
            "/api/v1/documents",
            Some((&ct, body.clone())),
            headers,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json().unwrap()["code"], "content_digest_mismatch");

    let after = counts(&gw).await;
    assert_eq!(before, after, "{TABLES:?}");
    assert!(blob_files(&gw).is_empty(), "{:?}", blob_files(&gw));
    let rejected: Vec<String> = gw
        .leaves()
        .await
        .into_iter()
        .filter(|l| l.contains("submission.rejected"))
        .collect();
    assert_eq!(rejected.len(), 5, "every refusal logged, digest only");
    assert!(rejected[0].contains(&sha256_hex(
        &multipart(
            &notice_with(5, &[("PJS", &judgment, true)]),
            &[&judgment, &stray]
        )
        .1
    )));
}

/// Sends only a request head that declares a huge body and times the answer.
async fn declare_huge(gw: &TestGateway, method: &str, path: &str, content_type: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(gw.running.addr)
        .await
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: {content_type}\r\nContent-Length: 107374182400\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(b"%PDF-1.7 the first few bytes")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[actix_web::test]
async fn an_oversized_attachment_gets_413_before_its_body_is_read() {
    let gw = TestGateway::start_with(|s| s.max_attachment_bytes = 64 * 1024).await;
    let sha = sha256_hex(b"x");
    let started = Instant::now();
    let answer = declare_huge(&gw, "PUT", &format!("/api/v1/attachments/{sha}"), PDF).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("attachment_too_large"), "{answer}");
    let answer = declare_huge(
        &gw,
        "POST",
        "/api/v1/documents",
        "multipart/related; boundary=x",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Within the declared length but over the limit while streaming.
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let big = scan(8, 100 * 1024);
    let answer = upload(&court, &big, &sha256_hex(&big)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json().unwrap()["code"], "attachment_too_large");
    // An attachment part over the limit inside a multipart body.
    let doc = notice_with(7, &[("PJS", &big, true)]);
    let (ct, body) = multipart(&doc, &[&big]);
    let answer = submit_multipart(&court, &ct, &body).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json().unwrap()["code"], "attachment_too_large");
    assert!(blob_files(&gw).is_empty(), "{:?}", blob_files(&gw));
    assert_eq!(gw.count("documents").await, 0);
}

#[actix_web::test]
async fn a_reference_without_bytes_passes_only_when_the_setting_allows_it() {
    let gw = TestGateway::start_with(common::lenient_attachments).await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let judgment = scan(10, 100);
    let notice = notice_with(9, &[("PJS", &judgment, false)]);
    let answer = court.submit(&notice, "application/xml").await.unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let receipt: Value = answer.json().unwrap();
    assert_eq!(receipt["attachments"][0]["size"], Value::Null);
    let id = receipt["document_id"].as_str().unwrap();
    let read = court
        .get(&format!(
            "/api/v1/documents/{id}/attachments/{}",
            sha256_hex(&judgment)
        ))
        .await
        .unwrap();
    assert_eq!(read.status, 404, "no bytes to hand out");
}
