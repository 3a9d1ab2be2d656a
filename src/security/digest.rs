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
    check_content_digest(header, |alg| match alg {
        "sha-256" => Some(sha256(body).to_vec()),
        "sha-512" => Some(openssl::sha::sha512(body).to_vec()),
        _ => None,
    })
}

/// The digests of a body that streamed past (to disk) instead of being held
/// in memory, computed by [`StreamDigester`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDigests {
    pub sha256: [u8; 32],
    pub sha512: [u8; 64],
    pub size: u64,
}

impl BodyDigests {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Hashes a body chunk by chunk with both algorithms `Content-Digest` may name.
#[derive(Clone)]
pub struct StreamDigester {
    sha256: openssl::sha::Sha256,
    sha512: openssl::sha::Sha512,
    size: u64,
}

impl Default for StreamDigester {
    fn default() -> Self {
        StreamDigester {
            sha256: openssl::sha::Sha256::new(),
            sha512: openssl::sha::Sha512::new(),
            size: 0,
        }
    }
}

impl std::fmt::Debug for StreamDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDigester")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl StreamDigester {
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.sha512.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> BodyDigests {
        BodyDigests {
            sha256: self.sha256.finish(),
            sha512: self.sha512.finish(),
            size: self.size,
        }
    }
}

/// [`verify_content_digest`] for a body known only by its digests.
pub fn verify_content_digest_of(header: &str, body: &BodyDigests) -> Result<(), SecurityError> {
    check_content_digest(header, |alg| match alg {
        "sha-256" => Some(body.sha256.to_vec()),
        "sha-512" => Some(body.sha512.to_vec()),
        _ => None,
    })
}

/// `sha-256=:<base64>:` for a body known by its SHA-256.
pub fn content_digest_of_sha256(sha256: &[u8; 32]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sha256)
    )
}

fn check_content_digest(
    header: &str,
    expected_for: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(), SecurityError> {
    let dict = Parser::parse_dictionary(header.as_bytes())
        .map_err(|_| SecurityError::MalformedContentDigest)?;
    let mut checked = 0;
    for (alg, entry) in &dict {
        let Some(expected) = expected_for(alg.as_str()) else {
            continue;
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

    #[test]
    fn streamed_digests_check_like_the_whole_body() {
        let body = b"{\"hello\": \"world\"}\n";
        let mut d = StreamDigester::default();
        d.update(&body[..5]);
        d.update(&body[5..]);
        let digests = d.finish();
        assert_eq!(digests.size, body.len() as u64);
        assert_eq!(
            content_digest_of_sha256(&digests.sha256),
            content_digest(body)
        );
        assert_eq!(
            verify_content_digest_of(&content_digest(body), &digests),
            Ok(())
        );
        assert_eq!(
            verify_content_digest_of(&content_digest(b"other"), &digests),
            Err(SecurityError::ContentDigestMismatch)
        );
    }
}
