//! Scanned attachments for tests: fake scans, court notices that list them,
//! and multipart/related bodies that carry them.

use corrections_gateway::security::digest::sha256_hex;

/// A small fake scan, distinct per `seed`.
pub fn scan(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

/// A court notice (unique by `n`) listing the given scans as attachments.
pub fn notice_with(n: usize, scans: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let listed: Vec<(&str, String, Option<usize>)> = scans
        .iter()
        .map(|(kind, bytes, with_size)| {
            (*kind, sha256_hex(bytes), with_size.then_some(bytes.len()))
        })
        .collect();
    notice_listing(n, &listed)
}

/// A court notice listing attachments by (kind, sha256, size).
pub fn notice_listing(n: usize, listed: &[(&str, String, Option<usize>)]) -> Vec<u8> {
    let mut list = String::from("  <FJ>\n");
    for (kind, sha, size) in listed {
        let size = size.map(|n| format!(r#" DX="{n}""#)).unwrap_or_default();
        list.push_str(&format!(
            "    <WJ LX=\"{kind}\" MC=\"{kind}-阿依古丽.pdf\" MIME=\"application/pdf\" SHA256=\"{sha}\"{size}/>\n"
        ));
    }
    list.push_str("  </FJ>\n</FYJHWS>");
    super::edit(&super::court_notice(n), "</FYJHWS>", &list)
}

/// A multipart/related body: the document first, then each attachment.
pub fn multipart(document: &[u8], attachments: &[&[u8]]) -> (String, Vec<u8>) {
    let boundary = "gw-b0undary-7f3a";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/xml; charset=utf-8\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(document);
    for a in attachments {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(a);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!(r#"multipart/related; boundary="{boundary}"; type="application/xml""#),
        body,
    )
}
