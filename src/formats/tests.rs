//! End-to-end tests of the dialects as configured in `mappings/`: what a
//! partner's document becomes, what it comes back as, and what a bad one gets.

use super::*;
use serde_json::json;
use std::path::PathBuf;

fn formats() -> Formats {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    match Formats::load(&dir) {
        Ok(f) => f,
        Err(e) => panic!("mappings/ must load: {e}"),
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/native")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn court_sample() -> String {
    String::from_utf8(fixture("court/handover.notice.xml")).unwrap_or_default()
}

/// What the court sample means, written by hand from the sample.
fn court_expected() -> Value {
    json!({
        "message_type": "handover.notice",
        "document_no": "甘0102刑执通〔2024〕88号",
        "case_no": "(2024)甘0102刑初123号",
        "sender": "court.620102",
        "recipients": ["corrections.620102"],
        "copies": [],
        "issued_at": "2024-06-03T10:15:00+08:00",
        "subject": {
            "name": "阿依古丽·买买提",
            "gender": "2",
            "ethnicity": "05",
            "birth_date": "1990-03-07",
            "id_number": "620102199003070026",
            "residence": {"division": "620102", "address": "甘肃省兰州市城关区东岗西路100号"}
        },
        "body": {
            "decision_organ": "court.620102",
            "effective_date": "2024-06-01",
            "correction_type": "probation",
            "offence": "危险驾驶罪",
            "sentence_text": "拘役三个月，缓刑六个月，并处罚金人民币五千元",
            "term": {"start": "2024-06-01", "end": "2024-11-30"},
            "report_by": "2024-06-11"
        },
        "attachments": [
            {"kind": "judgment", "file_name": "刑事判决书.pdf", "media_type": "application/pdf",
             "sha256": "9f2c5d0f6a3b8e1c4d7a2b5e8f1c3d6a9b2e5f8c1d4a7b0e3f6c9d2a5b8e1f40"},
            {"kind": "execution_notice", "file_name": "执行通知书.pdf", "media_type": "application/pdf",
             "sha256": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"},
            {"kind": "closing_form", "file_name": "结案登记表.pdf", "media_type": "application/pdf",
             "sha256": "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d"}
        ]
    })
}

fn decode_court(text: &str) -> Result<Value, Violations> {
    formats().decode(Dialect::Court, text.as_bytes(), Some("utf-8"))
}

fn codes_and_paths(r: Result<Value, Violations>) -> Vec<(&'static str, String)> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.code, v.path))
        .collect()
}

#[test]
fn dialect_names_round_trip() {
    for d in Dialect::ALL {
        assert_eq!(Dialect::parse(d.as_str()), Some(d));
    }
    assert_eq!(Dialect::parse("fax"), None);
}

#[test]
fn formats_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Formats>();
}

#[test]
fn court_sample_decodes_to_the_expected_canonical_document() {
    assert_eq!(decode_court(&court_sample()), Ok(court_expected()));
}

#[test]
fn court_round_trip_native_canonical_native_canonical() {
    let f = formats();
    let canonical = f
        .decode(Dialect::Court, &fixture("court/handover.notice.xml"), None)
        .unwrap_or_default();
    let native = f.encode(Dialect::Court, &canonical).unwrap_or_default();
    let text = String::from_utf8(native.clone()).unwrap_or_default();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FYJHWS BBH=\"1.0\">"),
        "{text}"
    );
    // Element order is the mapping's, which follows the court's own layout.
    let order: Vec<usize> = [
        "<WSLX>", "<WSBH>", "<AH>", "<FSDW", "<JSDW", "<QFSJ>", "<SXRQ>", "<ZF>", "<XF>", "<BDQX>",
        "<FJ>",
    ]
    .iter()
    .map(|tag| text.find(tag).unwrap_or(usize::MAX))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(
        f.decode(Dialect::Court, &native, Some("utf-8")),
        Ok(canonical)
    );
}

#[test]
fn canonical_court_canonical_is_identity_for_what_court_carries() {
    let f = formats();
    let mut doc = court_expected();
    doc["copies"] = json!(["procuratorate.620102", "police.620102"]);
    doc["body"]["correction_type"] = json!("medical_parole");
    doc["body"]["reason"] = json!("严重疾病 <需> 保外就医 & \"复查\"");
    doc["body"]["transfer_date"] = json!("2024-06-05");
    doc["subject"]["name"] = json!("王𠮷祥");
    doc["attachments"][0]["size"] = json!(123456);
    let native = f.encode(Dialect::Court, &doc).unwrap_or_default();
    assert_eq!(f.decode(Dialect::Court, &native, None), Ok(doc));
}

#[test]
fn corrections_dialect_is_the_canonical_document() {
    let f = formats();
    let doc = court_expected();
    let bytes = f.encode(Dialect::Corrections, &doc).unwrap_or_default();
    assert_eq!(
        f.decode(Dialect::Corrections, &bytes, Some("UTF-8")),
        Ok(doc)
    );
    assert_eq!(f.content_type(Dialect::Corrections), "application/json");
    assert_eq!(
        f.content_type(Dialect::Court),
        "application/xml; charset=utf-8"
    );
    let unknown = f.decode(
        Dialect::Corrections,
        br#"{"message_type":"fax.cover"}"#,
        None,
    );
    assert_eq!(
        codes_and_paths(unknown),
        [("unknown_message_type", "/message_type".to_owned())]
    );
    assert_eq!(
        codes_and_paths(f.decode(Dialect::Corrections, b"[1]", None)),
        [("wrong_type", String::new())]
    );
}

#[test]
fn supports_reflects_the_mapping_files() {
    let f = formats();
    assert!(f.supports(Dialect::Court, "handover.notice"));
    assert!(f.supports(Dialect::Court, "assessment.opinion"));
    assert!(!f.supports(Dialect::Court, "handover.sealed"));
    assert!(f.supports(Dialect::Prison, "handover.notice"));
    assert!(!f.supports(Dialect::Prison, "revocation.arrest_request"));
    assert!(f.supports(Dialect::Corrections, "revocation.committal"));
}

#[test]
fn unknown_wslx_is_unknown_message_type() {
    let doc = court_sample().replace("<WSLX>ZXTZ</WSLX>", "<WSLX>QTWS</WSLX>");
    assert_eq!(
        codes_and_paths(decode_court(&doc)),
        [("unknown_message_type", "/FYJHWS/WSLX".to_owned())]
    );
}

#[test]
fn bad_jzlb_is_bad_code_value() {
    let doc = court_sample().replace("<JZLB>HX</JZLB>", "<JZLB>XX</JZLB>");
    assert_eq!(
        codes_and_paths(decode_court(&doc)),
        [("bad_code_value", "/FYJHWS/XF/JZLB".to_owned())]
    );
}

#[test]
fn missing_sfzh_is_missing_field_with_native_path() {
    let doc = court_sample().replace("<SFZH>620102199003070026</SFZH>", "");
    assert_eq!(
        codes_and_paths(decode_court(&doc)),
        [("missing_field", "/FYJHWS/ZF/SFZH".to_owned())]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = court_sample()
        .replace("<SFZH>620102199003070026</SFZH>", "<SFZH>  </SFZH>")
        .replace("<JZLB>HX</JZLB>", "<JZLB>XX</JZLB>")
        .replace("<CSRQ>1990-03-07</CSRQ>", "<CSRQ>1990-02-30</CSRQ>")
        .replace(
            "<QFSJ>2024-06-03T10:15:00+08:00</QFSJ>",
            "<QFSJ>2024-06-03 10:15</QFSJ>",
        )
        .replace("LX=\"JADJB\"", "LX=\"ZZZ\"")
        .replace("<XM>阿依古丽·买买提</XM>", "<XM>a</XM><XM>b</XM>");
    let got = codes_and_paths(decode_court(&doc));
    let want = [
        ("invalid_datetime", "/FYJHWS/QFSJ"),
        ("duplicate_field", "/FYJHWS/ZF/XM"),
        ("invalid_date", "/FYJHWS/ZF/CSRQ"),
        ("missing_field", "/FYJHWS/ZF/SFZH"),
        ("bad_code_value", "/FYJHWS/XF/JZLB"),
        ("bad_code_value", "/FYJHWS/FJ/WJ[3]/@LX"),
    ];
    assert_eq!(got, want.map(|(c, p)| (c, p.to_owned())));
    // No violation carries the offending value.
    let all = decode_court(&doc).err().unwrap_or_default();
    assert!(all
        .iter()
        .all(|v| !v.message.zh.contains("1990-02-30") && !v.message.en.contains("ZZZ")));
}

#[test]
fn wrong_root_is_rejected() {
    let doc = court_sample().replace("FYJHWS", "FYWS");
    assert_eq!(
        codes_and_paths(decode_court(&doc)),
        [("unexpected_root_element", "/FYWS".to_owned())]
    );
}

#[test]
fn doctype_in_a_court_document_is_forbidden() {
    let doc = court_sample().replace(
        "<FYJHWS BBH",
        "<!DOCTYPE FYJHWS [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><FYJHWS BBH",
    );
    assert_eq!(
        codes_and_paths(decode_court(&doc)),
        [("doctype_forbidden", String::new())]
    );
}

#[test]
fn content_type_charset_must_agree_with_prolog() {
    let f = formats();
    let r = f.decode(
        Dialect::Court,
        &fixture("court/handover.notice.xml"),
        Some("gb18030"),
    );
    assert_eq!(codes_and_paths(r), [("encoding_mismatch", String::new())]);
}

#[test]
fn gb18030_declared_court_document_decodes() {
    let text = court_sample()
        .replace("encoding=\"UTF-8\"", "encoding=\"GB18030\"")
        .replace("阿依古丽·买买提", "王𠮷祥");
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable);
    let doc = formats()
        .decode(Dialect::Court, &bytes, None)
        .unwrap_or_default();
    assert_eq!(doc["subject"]["name"], "王𠮷祥");
}

#[test]
fn encode_reports_every_problem_with_canonical_paths() {
    let mut doc = court_expected();
    doc["body"]["correction_type"] = json!("house_arrest");
    doc["body"]["decision_organ"] = json!("prison_admin.620000");
    doc["subject"]
        .as_object_mut()
        .map(|s| s.remove("id_number"));
    doc["subject"]["birth_date"] = json!("07/03/1990");
    doc["attachments"][1]["kind"] = json!(7);
    doc["recipients"] = json!([]);
    let got: Vec<_> = formats()
        .encode(Dialect::Court, &doc)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.code, v.path))
        .collect();
    let want = [
        ("missing_field", "/recipients"),
        ("conflicting_fields", "/body/decision_organ"),
        ("invalid_date", "/subject/birth_date"),
        ("missing_field", "/subject/id_number"),
        ("bad_code_value", "/body/correction_type"),
        ("wrong_type", "/attachments/1/kind"),
    ];
    assert_eq!(got, want.map(|(c, p)| (c, p.to_owned())));
}

#[test]
fn encode_refuses_unknown_message_type() {
    let mut doc = court_expected();
    doc["message_type"] = json!("handover.sealed");
    let got: Vec<_> = formats()
        .encode(Dialect::Court, &doc)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.code)
        .collect();
    assert_eq!(got, ["unknown_message_type"]);
}

#[test]
fn unconfigured_dialect_is_a_violation_not_a_panic() {
    let f = Formats {
        dialects: HashMap::new(),
        agency_names: HashMap::new(),
    };
    let got = codes_and_paths(f.decode(Dialect::Police, b"{}", None));
    assert_eq!(got, [("dialect_not_configured", String::new())]);
}

/// What the prison sample means (GB18030, words for codes, 年月日 dates).
fn prison_expected() -> Value {
    json!({
        "message_type": "handover.notice",
        "document_no": "甘狱三监外〔2024〕9号",
        "sender": "prison.620000.3",
        "recipients": ["corrections.620102"],
        "copies": [],
        "issued_at": "2024-10-08T09:30:00+08:00",
        "subject": {
            "name": "王𠮷祥",
            "gender": "1",
            "ethnicity": "01",
            "birth_date": "1978-05-14",
            "id_number": "620102197805140031",
            "residence": {"division": "620102", "address": "甘肃省兰州市城关区张掖路街道"}
        },
        "body": {
            "decision_organ": "prison_admin.620000",
            "effective_date": "2024-09-29",
            "correction_type": "medical_parole",
            "offence": "诈骗罪",
            "sentence_text": "有期徒刑五年",
            "term": {"start": "2024-10-09", "end": "2025-10-08"},
            "reason": "严重疾病需保外就医",
            "transfer_date": "2024-10-09"
        },
        "attachments": []
    })
}

/// `text` encoded in GB18030.
fn gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn prison_sample_decodes_from_gb18030() {
    let got = formats().decode(
        Dialect::Prison,
        &fixture("prison/handover.notice.medical_parole.xml"),
        Some("GB18030"),
    );
    assert_eq!(got, Ok(prison_expected()));
}

#[test]
fn prison_round_trip_keeps_characters_outside_gbk_byte_exact() {
    let f = formats();
    let sample = fixture("prison/handover.notice.medical_parole.xml");
    let name = gb18030("<姓名>王𠮷祥</姓名>");
    assert!(contains(&sample, &name));
    let canonical = f.decode(Dialect::Prison, &sample, None).unwrap_or_default();
    let native = f.encode(Dialect::Prison, &canonical).unwrap_or_default();
    assert!(native.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
    assert!(
        contains(&native, &name),
        "𠮷 must be the same four GB18030 bytes"
    );
    assert!(contains(
        &native,
        &gb18030("<发送时间>2024年10月08日 09时30分</发送时间>")
    ));
    assert_eq!(
        f.decode(Dialect::Prison, &native, Some("gb18030")),
        Ok(canonical)
    );
    assert_eq!(
        f.content_type(Dialect::Prison),
        "application/xml; charset=gb18030"
    );
}

#[test]
fn court_notice_translates_to_prison_and_back() {
    let f = formats();
    let court = court_expected();
    // The prison dialect carries only 暂予监外执行 handovers.
    let got: Vec<_> = f
        .encode(Dialect::Prison, &court)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.code, v.path))
        .collect();
    assert_eq!(
        got,
        [
            ("unsupported_value", "/body/correction_type".to_owned()),
            ("missing_field", "/body/reason".to_owned())
        ]
    );
    let mut doc = prison_expected();
    doc["issued_at"] = json!("2024-10-08T01:30:00Z");
    let native = f.encode(Dialect::Prison, &doc).unwrap_or_default();
    // Times are written in Beijing time, which the prison dialect assumes.
    assert!(contains(&native, &gb18030("2024年10月08日 09时30分")));
}

#[test]
fn prison_words_and_dates_are_checked() {
    let text = encoding_rs::GB18030
        .decode(&fixture("prison/handover.notice.medical_parole.xml"))
        .0
        .replace("<性别>男</性别>", "<性别>M</性别>")
        .replace("1978年05月14日", "1978-05-14");
    let got = codes_and_paths(formats().decode(Dialect::Prison, &gb18030(&text), None));
    assert_eq!(
        got,
        [
            ("bad_code_value", "/交换文书/罪犯/性别".to_owned()),
            ("invalid_date", "/交换文书/罪犯/出生日期".to_owned()),
        ]
    );
}

#[test]
fn a_gbk_only_dialect_refuses_characters_outside_gbk_by_field() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let prison = std::fs::read_to_string(mappings.join("prison.toml")).unwrap_or_default();
    let copy = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
    };
    copy(
        "prison.toml",
        &prison.replace("charset = \"GB18030\"", "charset = \"GBK\""),
    );
    std::fs::create_dir(dir.path().join("codes")).unwrap_or_else(|e| panic!("{e}"));
    for table in [
        "gender_zh.toml",
        "ethnicity_zh.toml",
        "document_kind_zh.toml",
    ] {
        let text = std::fs::read_to_string(mappings.join("codes").join(table)).unwrap_or_default();
        copy(&format!("codes/{table}"), &text);
    }
    let f = Formats::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = f
        .encode(Dialect::Prison, &prison_expected())
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.code, v.path))
        .collect();
    assert_eq!(
        got,
        [("unrepresentable_character", "/subject/name".to_owned())]
    );
}

#[test]
fn procuratorate_namespaced_request_decodes_and_round_trips() {
    let f = formats();
    let sample = fixture("procuratorate/assessment.request.xml");
    let expected = json!({
        "message_type": "assessment.request",
        "document_no": "城检刑评委〔2024〕45号",
        "sender": "procuratorate.620102",
        "recipients": ["corrections.620102"],
        "copies": [],
        "issued_at": "2024-09-27T16:40:00+08:00",
        "case_no": "城检刑诉〔2024〕311号",
        "body": {"procedure": "expedited", "charge": "盗窃罪", "proposed_measure": "probation"},
        "subject": {
            "name": "张伟", "gender": "1", "ethnicity": "01", "birth_date": "1985-11-20",
            "id_number": "620102198511201518",
            "residence": {"division": "620102", "address": "甘肃省兰州市城关区雁滩路8号3单元502室"}
        },
        "attachments": [{"kind": "indictment", "file_name": "起诉意见书.pdf", "media_type": "application/pdf",
            "sha256": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"}]
    });
    assert_eq!(
        f.decode(Dialect::Procuratorate, &sample, Some("utf-8")),
        Ok(expected.clone())
    );
    let native = f
        .encode(Dialect::Procuratorate, &expected)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&native);
    assert!(
        text.contains("<exchange xmlns=\"urn:procuratorate:exchange:1\" version=\"1\">"),
        "{text}"
    );
    assert_eq!(
        f.decode(Dialect::Procuratorate, &native, None),
        Ok(expected)
    );
    // The same document outside the namespace is not a procuratorate document.
    let bare =
        String::from_utf8_lossy(&sample).replace(" xmlns=\"urn:procuratorate:exchange:1\"", "");
    let got = codes_and_paths(f.decode(Dialect::Procuratorate, bare.as_bytes(), None));
    assert_eq!(got, [("unexpected_root_element", "/exchange".to_owned())]);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn shared() -> &'static Formats {
        static F: OnceLock<Formats> = OnceLock::new();
        F.get_or_init(formats)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for d in Dialect::ALL {
                let _ = shared().decode(d, &bytes, None);
            }
        }

        #[test]
        fn mutated_court_sample(cut in 0usize..1500, insert in "[<>&;\"'/=A-Z#x0-9 ]{0,8}") {
            let mut text = court_sample();
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            text.insert_str(at, &insert);
            let _ = shared().decode(Dialect::Court, text.as_bytes(), None);
        }

        #[test]
        fn decoded_documents_round_trip(name in "[\\u{4e00}-\\u{9fa5}·𠮷]{1,8}", address in "\\PC{1,40}") {
            let text = court_sample()
                .replace("阿依古丽·买买提", &escape(&name))
                .replace("甘肃省兰州市城关区东岗西路100号", &escape(&address));
            let f = shared();
            if let Ok(doc) = f.decode(Dialect::Court, text.as_bytes(), None) {
                let native = f.encode(Dialect::Court, &doc);
                prop_assert!(native.is_ok());
                let back = f.decode(Dialect::Court, &native.unwrap_or_default(), None);
                prop_assert_eq!(back, Ok(doc));
            }
        }
    }

    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;")
    }
}
