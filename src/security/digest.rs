//! Content digests (RFC 9530 `Content-Digest`) and the SHA-256 helpers the
//! rest of the gateway uses for body digests.

use base64::Engine;
use sfv::{BareItem, ListEntry, Parser};

use super::SecurityError;

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(bytes)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// `sha-256=:<base64>:` over `body`.
pub fn content_digest(body: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha256(body))
    )
}

/// Checks a `Content-Digest` header (an RFC 8941 dictionary) against the
/// body. Unknown algorithms are ignored (RFC 9530 §2), but at least one of
/// `sha-256` / `sha-512` must be present, and every one present must match.
pub fn verify_content_digest(header: &str, body: &[u8]) -> Result<(), SecurityError> {
    let dict = Parser::parse_dictionary(header.as_bytes())
        .map_err(|_| SecurityError::MalformedContentDigest)?;
    let mut checked = 0;
    for (alg, entry) in &dict {
        let expected: Vec<u8> = match alg.as_str() {
            "sha-256" => sha256(body).to_vec(),
            "sha-512" => openssl::sha::sha512(body).to_vec(),
            _ => continue,
        };
        let ListEntry::Item(item) = entry else {
            return Err(SecurityError::MalformedContentDigest);
        };
        let BareItem::ByteSeq(got) = &item.bare_item else {
            return Err(SecurityError::MalformedContentDigest);
        };
        if got.len() != expected.len() || !openssl::memcmp::eq(got, &expected) {
            return Err(SecurityError::ContentDigestMismatch);
        }
        checked += 1;
    }
    if checked == 0 {
        return Err(SecurityError::UnsupportedDigestAlgorithm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trip_and_rfc9530_example() {
        // RFC 9530 §2 example: {"hello": "world"} with a trailing newline.
        let body = b"{\"hello\": \"world\"}\n";
        assert_eq!(
            content_digest(body),
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
        assert_eq!(verify_content_digest(&content_digest(body), body), Ok(()));
        assert_eq!(
            verify_content_digest(&content_digest(body), b"other"),
            Err(SecurityError::ContentDigestMismatch)
        );
    }

    #[test]
    fn unknown_algorithms_are_skipped_but_one_known_is_required() {
        let body = b"x";
        let both = format!("md5=:AAAA:, {}", content_digest(body));
        assert_eq!(verify_content_digest(&both, body), Ok(()));
        assert_eq!(
            verify_content_digest("md5=:AAAA:", body),
            Err(SecurityError::UnsupportedDigestAlgorithm)
        );
        assert_eq!(
            verify_content_digest("sha-256=\"text\"", body),
            Err(SecurityError::MalformedContentDigest)
        );
        assert_eq!(
            verify_content_digest("((", body),
            Err(SecurityError::MalformedContentDigest)
        );
    }
}
