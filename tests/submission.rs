//! A court's signed handover notice travels to the gateway and comes back
//! receipted — and everything that must be refused is refused, leaving only a
//! digest in the exchange log.

mod common;

use common::{court_notice, court_sample, edit, lenient_attachments, TestGateway};
use corrections_gateway::security::alg::Algorithm;
use corrections_gateway::security::digest::sha256_hex;
use serde_json::Value;

const COURT: &str = "court.620102";

#[actix_web::test]
async fn a_court_notice_signed_with_each_algorithm_is_stored_and_receipted() {
    let gw = TestGateway::start().await;
    let gateway_cert = gw.gateway_cert();
    for (n, alg) in Algorithm::ALL.into_iter().enumerate() {
        let partner = gw.partner(COURT, alg);
        let body = court_notice(n);
        let answer = partner.submit(&body, "application/xml").await.unwrap();
        assert_eq!(
            answer.status,
            201,
            "{alg:?}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let params = answer
            .verify(&gateway_cert)
            .expect("the receipt is signed by the gateway");
        assert!(params.components.iter().any(|c| c == "@status"));
        let receipt = answer.json().unwrap();
        assert_eq!(receipt["sender"], COURT);
        assert_eq!(receipt["message_type"], "handover.notice");
        assert_eq!(receipt["body_sha256"], sha256_hex(&body));
        assert_eq!(
            receipt["recipients"],
            serde_json::json!(["corrections.620102"])
        );
        let copies: Vec<&str> = receipt["copies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(
            copies.contains(&"procuratorate.620102") && copies.contains(&"police.620102"),
            "{copies:?}"
        );
        assert_eq!(receipt["signer"]["alg"], alg.as_str());
        assert_eq!(receipt["log_index"].as_i64(), Some(n as i64));
        assert_eq!(receipt["leaf_hash"].as_str().map(str::len), Some(64));
        assert!(receipt["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["step"] == "handover.receipt"));
    }
    assert_eq!(gw.count("documents").await, 4);
    assert_eq!(gw.count("signatures").await, 4);
    assert_eq!(gw.count("cases").await, 4);
    assert_eq!(gw.count("receipts").await, 4);
    assert_eq!(gw.count("exchange_log").await, 4);
}

#[actix_web::test]
async fn the_shared_court_sample_is_accepted_and_its_late_documents_show_as_overdue() {
    let gw = TestGateway::start_with(lenient_attachments).await;
    let partner = gw.partner(COURT, Algorithm::Sm2Sm3);
    let answer = partner
        .submit(&court_sample(), "application/xml; charset=utf-8")
        .await
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let receipt = answer.json().unwrap();
    let case = partner
        .get(&format!(
            "/api/v1/cases/{}",
            receipt["case_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(case.status, 200);
    case.verify(&gw.gateway_cert()).unwrap();
    let case = case.json().unwrap();
    assert_eq!(case["flow"], "handover");
    assert_eq!(case["state"], "notified");
    assert_eq!(
        case["case_no"], "（2024）甘0102刑初123号",
        "案号 normalised to full-width brackets"
    );
    let step = |name: &str| {
        case["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["step"] == name)
            .cloned()
            .unwrap()
    };
    // Judgment effective 2024-06-01: documents were due 2024-06-11; they arrive now.
    assert_eq!(step("handover.documents")["status"], "overdue");
    assert_eq!(
        step("handover.documents")["due_at"],
        "2024-06-11T23:59:59+08:00"
    );
    assert_eq!(
        step("handover.report")["due_at"],
        "2024-06-11T23:59:59+08:00"
    );
    // Counted from the corrections agency's receipt of the notice, which has not come yet.
    assert_eq!(step("handover.receipt")["status"], "awaiting_delivery");
    assert!(step("handover.receipt")["due_at"].is_null());
}

#[actix_web::test]
async fn resubmitting_the_same_bytes_returns_the_original_receipt_and_stores_nothing_new() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let body = court_notice(7);
    let first = partner.submit(&body, "application/xml").await.unwrap();
    assert_eq!(first.status, 201);
    let again = partner.submit(&body, "application/xml").await.unwrap();
    assert_eq!(again.status, 200);
    again.verify(&gw.gateway_cert()).unwrap();
    assert_eq!(first.body, again.body, "the receipt is byte-identical");
    assert_eq!(gw.count("documents").await, 1);
    assert_eq!(gw.count("exchange_log").await, 1);
}

#[actix_web::test]
async fn a_replayed_signature_is_refused() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::Ed25519);
    let body = court_notice(1);
    let headers = partner
        .sign(
            "POST",
            "/api/v1/documents",
            Some("application/xml"),
            Some(&body),
        )
        .unwrap();
    let send = || {
        partner.send(
            reqwest::Method::POST,
            "/api/v1/documents",
            Some(("application/xml", body.clone())),
            headers.clone(),
        )
    };
    assert_eq!(send().await.unwrap().status, 201);
    let replay = send().await.unwrap();
    assert_eq!(replay.json().unwrap()["code"], "replayed_signature");
    assert!(replay.status >= 400);
    assert_eq!(gw.count("documents").await, 1);
}

#[actix_web::test]
async fn tampering_is_caught_before_the_body_is_parsed() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let path = "/api/v1/documents";
    let body = court_notice(3);
    let signed = partner
        .sign("POST", path, Some("application/xml"), Some(&body))
        .unwrap();
    let post = |body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        partner.send(
            reqwest::Method::POST,
            path,
            Some(("application/xml", body)),
            headers,
        )
    };
    let code = |a: &corrections_gateway::partner::Answer| {
        a.json().unwrap()["code"].as_str().unwrap().to_string()
    };

    // The body changed after signing: the digest no longer matches.
    let answer = post(edit(&body, "危险驾驶罪", "盗窃罪"), signed.clone())
        .await
        .unwrap();
    assert_eq!(
        (answer.status, code(&answer).as_str()),
        (400, "content_digest_mismatch")
    );

    // Body and digest changed consistently, signature left alone: the signature fails.
    let tampered = edit(&body, "危险驾驶罪", "盗窃罪");
    let mut headers = signed.clone();
    headers[0].1 = corrections_gateway::security::digest::content_digest(&tampered);
    let answer = post(tampered, headers).await.unwrap();
    assert_eq!(
        (answer.status, code(&answer).as_str()),
        (401, "signature_invalid")
    );

    // No signature at all.
    let answer = post(body.clone(), vec![signed[0].clone()]).await.unwrap();
    assert_eq!(
        (answer.status, code(&answer).as_str()),
        (401, "missing_signature")
    );

    // A key the trust store does not know.
    let unknown = signed
        .iter()
        .map(|(n, v)| {
            (
                *n,
                if *n == "signature-input" {
                    v.replace(&partner.keyid, &"ab".repeat(32))
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let answer = post(body.clone(), unknown).await.unwrap();
    assert_eq!(
        (answer.status, code(&answer).as_str()),
        (401, "unknown_key_id")
    );

    for answer_leaf in gw.leaves().await {
        assert!(answer_leaf.contains("submission.rejected"), "{answer_leaf}");
    }
    assert_eq!(gw.count("exchange_log").await, 4, "each refusal is logged");
    assert_eq!(gw.count("documents").await, 0, "nothing else is stored");
    assert_eq!(gw.count("seen_signatures").await, 0);
}

#[actix_web::test]
async fn a_stale_signature_is_refused() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let body = court_notice(4);
    let mut headers = partner
        .sign(
            "POST",
            "/api/v1/documents",
            Some("application/xml"),
            Some(&body),
        )
        .unwrap();
    // Re-sign with a `created` ten minutes in the past by rewriting and re-signing the input.
    let stale = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
    let input = headers[1].1.clone();
    let created = input
        .split(";created=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    headers[1].1 = input.replace(&format!("created={created}"), &format!("created={stale}"));
    let answer = partner
        .send(
            reqwest::Method::POST,
            "/api/v1/documents",
            Some(("application/xml", body)),
            headers,
        )
        .await
        .unwrap();
    // The window is checked before the (now broken) signature: the answer names the real problem.
    assert_eq!(
        answer.json().unwrap()["code"],
        "signature_created_out_of_window"
    );
    assert_eq!(answer.status, 401);
}

#[actix_web::test]
async fn bad_documents_get_every_problem_with_its_path_in_both_languages() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    // Wrong check digit (…0026 → …0027) and an impossible term order.
    let body = edit(
        &edit(&court_notice(5), "620102199003070026", "620102199003070027"),
        "ZZRQ=\"2027-05-17\"",
        "ZZRQ=\"2025-05-17\"",
    );
    let answer = partner.submit(&body, "application/xml").await.unwrap();
    assert_eq!(
        answer.status,
        422,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    answer
        .verify(&gw.gateway_cert())
        .expect("problems are signed too");
    let problem = answer.json().unwrap();
    let errors = problem["errors"].as_array().unwrap();
    let find = |code: &str| {
        errors
            .iter()
            .find(|e| e["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {errors:?}"))
    };
    assert_eq!(find("invalid_id_check_digit")["path"], "/subject/id_number");
    assert!(find("term_out_of_order")["path"]
        .as_str()
        .unwrap()
        .starts_with("/body/term"));
    for e in errors {
        assert!(
            !e["message"]["zh"].as_str().unwrap().is_empty()
                && !e["message"]["en"].as_str().unwrap().is_empty()
        );
        assert!(
            !e.to_string().contains("620102199003070027"),
            "messages never echo personal data"
        );
    }
    assert_eq!(gw.count("documents").await, 0);
    assert_eq!(gw.count("exchange_log").await, 1);
}

#[actix_web::test]
async fn a_doctype_is_refused_outright_and_huge_bodies_get_413() {
    let gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let bomb = edit(
        &court_notice(6),
        "<FYJHWS BBH=\"1.0\">",
        "<!DOCTYPE FYJHWS [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><FYJHWS BBH=\"1.0\">",
    );
    let answer = partner.submit(&bomb, "application/xml").await.unwrap();
    assert_eq!(answer.status, 422);
    let problem = answer.json().unwrap();
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "doctype_forbidden"),
        "{problem}"
    );

    let huge = vec![b' '; 11 * 1024 * 1024];
    let answer = partner.submit(&huge, "application/xml").await.unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json().unwrap()["code"], "body_too_large");
    assert_eq!(gw.count("documents").await, 0);
}

#[actix_web::test]
async fn a_document_claiming_another_sender_is_refused() {
    let gw = TestGateway::start().await;
    // The corrections agency speaks canonical JSON; it signs a notice that claims to be the court's.
    let canonical = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/canonical/handover.notice.json"
    ))
    .unwrap();
    let partner = gw.partner("corrections.620102", Algorithm::EcdsaP256Sha256);
    let answer = partner
        .submit(&canonical, "application/json")
        .await
        .unwrap();
    let problem = answer.json().unwrap();
    assert_eq!(
        (answer.status, problem["code"].as_str().unwrap()),
        (403, "sender_not_signer"),
        "{problem}"
    );
    assert_eq!(gw.count("documents").await, 0);
}

#[actix_web::test]
async fn documents_are_read_only_by_their_parties_and_every_read_is_logged() {
    let gw = TestGateway::start().await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let body = court_notice(8);
    let receipt = court
        .submit(&body, "application/xml")
        .await
        .unwrap()
        .json()
        .unwrap();
    let id = receipt["document_id"].as_str().unwrap();

    let original = court.get(&format!("/api/v1/documents/{id}")).await.unwrap();
    assert_eq!(original.status, 200);
    assert_eq!(
        original.body.as_ref(),
        body.as_slice(),
        "the original bytes, untouched"
    );
    original.verify(&gw.gateway_cert()).unwrap();

    let corrections = gw.partner("corrections.620102", Algorithm::Sm2Sm3);
    let canonical = corrections
        .get(&format!("/api/v1/documents/{id}/canonical"))
        .await
        .unwrap();
    assert_eq!(canonical.status, 200);
    let doc: Value = canonical.json().unwrap();
    assert_eq!(doc["message_type"], "handover.notice");
    assert_eq!(doc["body"]["correction_type"], "probation");

    let police = gw.partner("police.620102", Algorithm::RsaPssSha512);
    assert_eq!(
        police
            .get(&format!("/api/v1/documents/{id}"))
            .await
            .unwrap()
            .status,
        200,
        "a copy may read"
    );

    let prison = gw.partner("prison.620000.3", Algorithm::Ed25519);
    let refused = prison
        .get(&format!("/api/v1/documents/{id}"))
        .await
        .unwrap();
    assert_eq!(
        refused.status, 404,
        "a non-party cannot even learn that the id exists"
    );

    let reads: Vec<String> = gw
        .leaves()
        .await
        .into_iter()
        .filter(|l| l.contains("document.read"))
        .collect();
    assert_eq!(reads.len(), 3);
    assert!(reads
        .iter()
        .any(|l| l.contains("\"reader\":\"police.620102\"")));
}

#[actix_web::test]
async fn a_revoked_certificate_is_refused_after_restart() {
    let mut gw = TestGateway::start().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    assert_eq!(
        partner
            .submit(&court_notice(1), "application/xml")
            .await
            .unwrap()
            .status,
        201
    );
    corrections_gateway::security::devpki::revoke(
        &gw.pki(),
        COURT,
        &gw.pki().join(COURT).join("ecdsa-p256.crt.pem"),
    )
    .unwrap();
    gw.restart().await;
    let partner = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let answer = partner
        .submit(&court_notice(2), "application/xml")
        .await
        .unwrap();
    assert_eq!(answer.json().unwrap()["code"], "certificate_revoked");
    assert_eq!(answer.status, 403);
    // The agency's other keys still work.
    let other = gw.partner(COURT, Algorithm::Ed25519);
    assert_eq!(
        other
            .submit(&court_notice(3), "application/xml")
            .await
            .unwrap()
            .status,
        201
    );
    assert_eq!(gw.count("documents").await, 2, "the restart lost nothing");
}

#[actix_web::test]
async fn no_personal_data_reaches_the_exchange_log() {
    let gw = TestGateway::start_with(lenient_attachments).await;
    let court = gw.partner(COURT, Algorithm::EcdsaP256Sha256);
    let sample = court_sample();
    let receipt = court
        .submit(&sample, "application/xml")
        .await
        .unwrap()
        .json()
        .unwrap();
    let _ = court
        .get(&format!(
            "/api/v1/documents/{}",
            receipt["document_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let bad = edit(&sample, "620102199003070026", "620102199003070027");
    let _ = court.submit(&bad, "application/xml").await.unwrap();
    let personal = [
        "阿依古丽",
        "买买提",
        "620102199003070026",
        "620102199003070027",
        "东岗西路",
        "1990-03-07",
    ];
    for leaf in gw.leaves().await {
        for p in personal {
            assert!(!leaf.contains(p), "personal data {p:?} in log leaf {leaf}");
        }
    }
    assert_eq!(gw.count("exchange_log").await, 3);
}

#[actix_web::test]
async fn the_canonical_schemas_are_served_as_the_validator_uses_them() {
    let gw = TestGateway::start().await;
    let http = reqwest::Client::new();
    let list: Value = http
        .get(format!("{}/api/v1/schemas", gw.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"envelope")
            && names.contains(&"handover.notice")
            && names.contains(&"revocation.ruling")
    );
    assert_eq!(
        names.len(),
        17,
        "the envelope and one schema per message type: {names:?}"
    );
    let answer = http
        .get(format!("{}/api/v1/schemas/handover.notice", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let schema: Value = answer.json().await.unwrap();
    let on_disk: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/handover.notice.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema, on_disk);
    let missing = http
        .get(format!("{}/api/v1/schemas/nope", gw.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
