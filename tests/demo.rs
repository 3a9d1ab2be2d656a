//! `corrections-gateway demo` fills a fresh data directory with simulated
//! traffic that went through the real intake path: all three flows, a
//! missed deadline, refused submissions and a dead-lettered push in the
//! exchange log, which an exported bundle verifies offline, with none of the
//! fictional people's names or ID numbers in any leaf; demo web users with
//! their logins shown once; and a second run refuses to add to the data.
//! The mixed load benchmark (`bench --mix`), built from the demo's flows,
//! runs here in small.

mod common;

use common::{cli_on, TestDatabase};
use corrections_gateway::config::Settings;
use corrections_gateway::store::Store;

#[actix_web::test]
async fn two_weeks_of_demo_traffic_show_every_flow_a_miss_a_refusal_and_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create();
    let mut settings = Settings::for_dir(dir.path());
    if let Some(url) = database.url() {
        settings.database_url = url.to_string();
    }
    common::seed_dev_pki(&settings.pki_dir());
    let summary = corrections_gateway::demo::run(settings.clone(), 14)
        .await
        .expect("the demo runs");

    for flow in ["handover", "assessment", "revocation"] {
        assert!(
            summary.cases.get(flow).is_some_and(|n| *n > 0),
            "{flow}: {summary:?}"
        );
    }
    let roles: Vec<&str> = summary.logins.iter().map(|(_, r, _)| r.as_str()).collect();
    for role in ["clerk", "supervisor", "auditor", "admin"] {
        assert!(roles.contains(&role), "{roles:?}");
    }
    assert!(summary.report().contains("DEV ONLY"));

    let store = Store::open(&settings.database_url, 2, &settings.resources)
        .await
        .unwrap();
    let leaves: Vec<serde_json::Value> = store
        .log_entries(0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.leaf).unwrap())
        .collect();
    let of = |event: &'static str| leaves.iter().filter(move |l| l["event"] == event);
    for flow in ["handover.", "assessment.", "revocation."] {
        assert!(
            of("document.accepted").any(|l| l["message_type"].as_str().unwrap().starts_with(flow)),
            "no accepted {flow} document"
        );
    }
    assert!(of("deadline.missed").count() >= 1, "a deadline was missed");
    let refusal_codes: Vec<String> = of("submission.rejected")
        .flat_map(|l| l["codes"].as_array().unwrap().clone())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert!(refusal_codes.len() >= 4, "{refusal_codes:?}");
    assert!(
        refusal_codes.iter().any(|c| c == "invalid_id_check_digit"),
        "{refusal_codes:?}"
    );
    for code in [
        "replayed_signature",
        "content_digest_mismatch",
        "sender_not_signer",
    ] {
        assert!(
            refusal_codes.iter().any(|c| c == code),
            "{code}: {refusal_codes:?}"
        );
    }
    assert!(
        of("delivery.dead_lettered").any(|l| l["recipient"] == "police.620102.2"),
        "the rulings pushed to the detention centre, whose endpoint is down, dead-lettered"
    );
    assert!(
        of("mailbox.acked").count() > 0,
        "pull agencies acknowledged"
    );

    // No personal data in any leaf.
    assert!(!summary.people.is_empty());
    let all_leaves: String = leaves.iter().map(|l| l.to_string()).collect();
    for (name, id_number) in &summary.people {
        assert!(!all_leaves.contains(name.as_str()), "a name is in the log");
        assert!(
            !all_leaves.contains(id_number.as_str()),
            "an ID number is in the log"
        );
    }
    // The month ends before now: nothing was logged in the future.
    let now = time::OffsetDateTime::now_utc();
    assert!(leaves.iter().all(|l| time::OffsetDateTime::parse(
        l["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .unwrap()
        <= now));
    store.close().await;

    let dir_arg = dir.path().to_str().unwrap();
    let (ok, out) = cli_on(database.url(), &["deliveries", "list", "--dir", dir_arg]);
    assert!(
        ok && out.contains("police.620102.2") && out.contains("endpoint_unreachable"),
        "{out}"
    );
    let bundle = dir.path().join("bundle");
    let (ok, out) = common::export_and_verify_log(database.url(), dir.path(), &bundle);
    assert!(ok && out.contains("ok:"), "{out}");

    // A second run adds nothing and says why.
    let (ok, out) = cli_on(database.url(), &["demo", "--dir", dir_arg, "--days", "2"]);
    assert!(!ok, "{out}");
    assert!(out.contains("already holds"), "{out}");
    assert!(out.contains("演示只写入空库"), "{out}");
}

#[actix_web::test]
async fn the_demo_refuses_a_data_directory_without_the_dev_pki_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::for_dir(dir.path());
    common::seed_dev_pki(&settings.pki_dir());
    // As if an operator had put the gateway's production key there.
    let key = settings.pki_dir().join("gateway.key.pem");
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, pem.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let refused = corrections_gateway::demo::run(settings.clone(), 3)
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("DEV-ONLY"), "{refused}");
    assert!(
        refused.to_string().contains("演示数据不会写入"),
        "{refused}"
    );
    assert!(!settings.registry.exists(), "nothing written");
    assert!(!dir.path().join("gateway.db").exists(), "no database made");
}

/// `bench --mix` in small (docs/benchmarks.md, section 7): every dialect
/// and flow is accepted, every push and pull delivery completes and is
/// receipted or acked exactly once in the exchange log, the push receivers
/// process each document once, and the resident memory is reported.
#[actix_web::test]
async fn the_mixed_benchmark_accepts_every_document_and_receipts_each_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create();
    common::seed_dev_pki(&Settings::for_dir(dir.path()).pki_dir());
    let report = corrections_gateway::bench::load(corrections_gateway::bench::Options {
        partners: 4,
        documents: 40,
        alg: "ecdsa-p256-sha256".into(),
        dir: Some(dir.path().to_path_buf()),
        database_url: database.url().map(str::to_string),
        instances: 1,
        mix: true,
        rate: None,
        delivery_concurrency: None,
        delivery_per_recipient: None,
        formats: false,
    })
    .await
    .expect("the mixed benchmark runs");

    assert_eq!(report.documents, 40, "{report}");
    assert_eq!(report.accepted, 40, "every document accepted: {report}");
    let mix = report.mix.as_ref().expect("a mixed report");
    let senders: Vec<&str> = mix.senders.iter().map(|(a, _, _)| a.as_str()).collect();
    for agency in [
        "court.620102",
        "procuratorate.620102",
        "police.620102",
        "prison.620000.3",
        "corrections.620102",
    ] {
        assert!(senders.contains(&agency), "{agency} sent: {report}");
    }
    assert!(
        mix.senders
            .iter()
            .any(|(_, content_type, _)| content_type.ends_with("charset=gb18030")),
        "{report}"
    );
    assert!(mix.message_types.len() >= 6, "{report}");

    let d = &mix.deliveries;
    assert!(d.push > 0 && d.pull > 0, "{report}");
    assert_eq!((d.pending, d.dead), (0, 0), "{report}");
    assert_eq!(d.delivered, d.push, "every push receipted: {report}");
    assert_eq!(d.acked, d.pull, "every pulled copy acked: {report}");
    assert_eq!(d.receipted_once, d.push + d.pull, "{report}");
    assert_eq!(d.receipted_more, 0, "{report}");
    assert_eq!(d.inboxes.len(), 2, "{report}");
    for (agency, tally) in &d.inboxes {
        assert_eq!(tally.processed_twice, 0, "{agency}: {report}");
        assert_eq!(tally.refused, 0, "{agency}: {report}");
    }
    let processed: usize = d.inboxes.iter().map(|(_, t)| t.documents).sum();
    assert_eq!(processed, d.push, "each push processed once: {report}");
    assert!(
        report.memory.gateway_kib > 0 && report.memory.before_kib > 0,
        "{report}"
    );
    assert!(
        report.memory.peak_kib >= report.memory.before_kib,
        "{report}"
    );
}
