//! The character sets a dialect may use, and the only conversions between
//! them and Rust strings.
//!
//! Owns: resolving a charset label (from a Content-Type or an XML prolog) to
//! one of the encodings the gateway accepts, strict decoding, and strict
//! encoding. Must never substitute: an invalid byte sequence is an error, not
//! U+FFFD, and a character the target charset cannot carry is an error, not
//! `?` or a numeric character reference (a changed name is a wrong person).

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};

/// The encodings partners actually use. Everything else encoding_rs knows
/// (Big5, Shift_JIS, UTF-16 …) is refused: accepting it would only widen
/// what an attacker can feed the parser.
const ACCEPTED: [&Encoding; 3] = [UTF_8, GB18030, GBK];

/// Resolves a label per the WHATWG Encoding Standard (so `gb2312` is GBK and
/// `utf8` is UTF-8) and keeps it only if the gateway accepts it.
pub(crate) fn resolve(label: &str) -> Option<&'static Encoding> {
    let enc = Encoding::for_label_no_replacement(label.trim().as_bytes())?;
    ACCEPTED.contains(&enc).then_some(enc)
}

/// The lower-case name used in a Content-Type `charset=` parameter.
pub(crate) fn mime_name(enc: &'static Encoding) -> String {
    enc.name().to_ascii_lowercase()
}

/// Strict decode: `None` when any byte sequence is invalid in `enc`.
pub(crate) fn decode<'b>(bytes: &'b [u8], enc: &'static Encoding) -> Option<Cow<'b, str>> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
}

/// Whether every character of `text` exists in `enc` (always true for UTF-8
/// and GB18030, which cover all of Unicode; false for 𠮷 in GBK).
pub(crate) fn can_encode(text: &str, enc: &'static Encoding) -> bool {
    if enc == UTF_8 || enc == GB18030 {
        return true;
    }
    let (_, _, unmappable) = enc.encode(text);
    !unmappable
}

/// Strict encode: `None` when a character cannot be represented. Callers
/// check each field with [`can_encode`] first so they can name the field;
/// this is the backstop for text the mapping does not own (markup).
pub(crate) fn encode(text: String, enc: &'static Encoding) -> Option<Vec<u8>> {
    if enc == UTF_8 {
        return Some(text.into_bytes());
    }
    let (bytes, _, unmappable) = enc.encode(&text);
    (!unmappable).then(|| bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_to_accepted_encodings_only() {
        assert_eq!(resolve("UTF-8"), Some(UTF_8));
        assert_eq!(resolve("utf8"), Some(UTF_8));
        assert_eq!(resolve("GB18030"), Some(GB18030));
        assert_eq!(resolve("gb2312"), Some(GBK));
        assert_eq!(resolve("Shift_JIS"), None);
        assert_eq!(resolve("utf-16"), None);
        assert_eq!(resolve("no-such"), None);
    }

    #[test]
    fn character_outside_gbk_is_refused_not_replaced() {
        assert!(!can_encode("王𠮷祥", GBK));
        assert!(encode("王𠮷祥".to_owned(), GBK).is_none());
        let bytes = encode("王𠮷祥".to_owned(), GB18030).unwrap_or_default();
        assert_eq!(decode(&bytes, GB18030).as_deref(), Some("王𠮷祥"));
    }
}
