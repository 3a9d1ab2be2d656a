//! The OpenAPI document a partner downloads matches the routes the gateway
//! serves: every route of the one route table (which builds the App) is in
//! the served document with the same method, and the document has no
//! operation the table lacks. It also shows the problem+json shape and the
//! signature headers a partner must send.

mod common;

use std::collections::BTreeSet;

use common::TestGateway;
use corrections_gateway::api::ROUTES;

#[actix_web::test]
async fn the_served_openapi_document_matches_the_route_table_both_ways() {
    let gw = TestGateway::start().await;
    let answer = reqwest::get(format!("{}/api/v1/openapi.json", gw.base_url))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers().contains_key("signature"),
        "signed like every partner answer"
    );
    let doc: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let registered: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(registered.len(), ROUTES.len(), "no route registered twice");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert!(registered.contains(&("get".into(), "/api/v1/openapi.json".into())));

    // Path parameters are declared for every `{name}` of a path.
    for (method, path) in &registered {
        let op = &doc["paths"][path][method];
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                params.contains(&name),
                "{method} {path} does not declare {name}"
            );
        }
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has responses"
        );
    }
}

#[actix_web::test]
async fn the_document_shows_problems_signatures_and_the_receipt() {
    let doc: serde_json::Value =
        serde_json::from_slice(corrections_gateway::api::openapi::json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    // RFC 9457 problem with the gateway's extensions.
    let problem = &schemas["Problem"]["properties"];
    for field in [
        "type",
        "title",
        "status",
        "code",
        "message",
        "errors",
        "request_id",
    ] {
        assert!(problem.get(field).is_some(), "Problem has no {field}");
    }
    assert!(schemas["Bilingual"]["properties"]["zh"].is_object());
    assert!(schemas["Violation"]["properties"]["path"].is_object());
    // The receipt of a submission.
    let receipt = &schemas["Receipt"]["properties"];
    for field in [
        "receipt_id",
        "document_id",
        "body_sha256",
        "log_index",
        "leaf_hash",
    ] {
        assert!(receipt.get(field).is_some(), "Receipt has no {field}");
    }

    let submit = &doc["paths"]["/api/v1/documents"]["post"];
    let headers: Vec<&str> = submit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(headers, ["Content-Digest", "Signature-Input", "Signature"]);
    let content = submit["requestBody"]["content"].as_object().unwrap();
    for media in ["application/xml", "application/json", "multipart/related"] {
        assert!(content.contains_key(media), "submission accepts {media}");
    }
    let created = &submit["responses"]["201"];
    assert_eq!(
        created["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Receipt"
    );
    for header in [
        "Signature",
        "Signature-Input",
        "Content-Digest",
        "X-Request-Id",
    ] {
        assert!(
            created["headers"].get(header).is_some(),
            "201 documents {header}"
        );
    }
    for status in ["422", "4XX", "503"] {
        let refused = &submit["responses"][status]["content"]["application/problem+json"];
        assert_eq!(
            refused["schema"]["$ref"], "#/components/schemas/Problem",
            "{status}"
        );
    }
    // Signed everywhere (with mutual TLS in production) except the public routes.
    assert_eq!(doc["security"].as_array().unwrap().len(), 2);
    assert!(
        submit.get("security").is_none(),
        "submissions use the global requirement"
    );
    for public in ["/healthz", "/api/v1/schemas", "/api/v1/log/checkpoint"] {
        assert_eq!(
            doc["paths"][public]["get"]["security"],
            serde_json::json!([{}]),
            "{public} is public"
        );
    }

    let reads = &doc["paths"]["/api/v1/cases"]["get"]["parameters"];
    let names: Vec<&str> = reads
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"Signature-Input") && names.contains(&"cursor"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("http_message_signature") && schemes.contains_key("mutual_tls"));
}
