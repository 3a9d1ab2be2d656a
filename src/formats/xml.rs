//! Safe XML: bytes → a small owned element tree, and element tree → text.
//!
//! Owns: charset detection (XML prolog vs. Content-Type), well-formedness,
//! and the limits that keep a hostile document cheap to reject. The tree is
//! only ever navigated by the mapping engine; nothing else reads partner XML.
//!
//! Must never: process a DOCTYPE (internal subsets are how entity bombs and
//! external-entity fetches get in, and no partner needs one), expand any
//! entity other than the five predefined ones and numeric character
//! references, fetch anything, or put document content into an error message.

use encoding_rs::{Encoding, UTF_8};
use quick_xml::encoding::Decoder;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Reader};

use super::charset;
use crate::violation::{Violation, Violations};

/// Deepest element nesting accepted; real exchange documents use about 4.
pub(crate) const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document; a notice with many attachments
/// has well under a hundred.
pub(crate) const MAX_ELEMENTS: usize = 10_000;

/// One element: enough structure for mapping, nothing more (no comments,
/// no processing instructions, no mixed-content ordering).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Namespace URI the name is bound to, if any.
    pub namespace: Option<String>,
    /// Attributes by local name, in document order; `xmlns` declarations excluded.
    pub attributes: Vec<(String, String)>,
    /// Concatenated character data directly inside this element, untrimmed.
    pub text: String,
    pub children: Vec<Element>,
    /// JSON dialects only: the value is a JSON literal (number, boolean),
    /// not a string. Always false for XML.
    pub literal: bool,
    /// JSON dialects only: the element is one item of a JSON array. Always
    /// false for XML, where repetition is just siblings with one name.
    pub list_item: bool,
}

impl Element {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn violation(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Violations {
    vec![Violation::new(code, "", zh, en)]
}

/// Parses `bytes`. `charset` is the Content-Type `charset=` parameter, if any.
pub(crate) fn parse(bytes: &[u8], charset: Option<&str>) -> Result<Element, Violations> {
    let (encoding, body) = choose_encoding(bytes, charset)?;
    let text = charset::decode(body, encoding).ok_or_else(|| {
        violation(
            "invalid_encoding",
            format!("文档含有不符合 {} 编码的字节", encoding.name()),
            format!(
                "the document contains bytes that are not valid {}",
                encoding.name()
            ),
        )
    })?;
    parse_tree(&text)
}

/// Decides the document's encoding from the prolog and the Content-Type,
/// and strips a UTF-8 byte order mark. Returns the bytes left to decode.
fn choose_encoding<'b>(
    bytes: &'b [u8],
    charset: Option<&str>,
) -> Result<(&'static Encoding, &'b [u8]), Violations> {
    let unsupported = |what: &str| {
        violation(
            "unsupported_encoding",
            format!("不支持{what}声明的字符编码（仅支持 UTF-8、GB18030、GBK）"),
            format!("the character encoding declared by the {what} is not supported (UTF-8, GB18030, GBK only)"),
        )
    };
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        return Err(unsupported("BOM"));
    }
    let (bom, body) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => (Some(UTF_8), rest),
        None => (None, bytes),
    };
    let declared = match prolog_encoding(body) {
        Some(label) => {
            Some(charset::resolve(&label).ok_or_else(|| unsupported("XML 声明 / XML prolog"))?)
        }
        None => None,
    };
    let header = match charset {
        Some(label) => Some(charset::resolve(label).ok_or_else(|| unsupported("Content-Type"))?),
        None => None,
    };
    // Any two sources that both speak must agree: a disagreement means one
    // of them is wrong, and guessing which would silently corrupt names.
    let sources = [bom, declared, header];
    let mut chosen: Option<&'static Encoding> = None;
    for enc in sources.into_iter().flatten() {
        match chosen {
            Some(c) if c != enc => {
                return Err(violation(
                    "encoding_mismatch",
                    "XML 声明、字节序标记与 Content-Type 的字符编码不一致",
                    "the XML prolog, byte order mark and Content-Type declare different encodings",
                ))
            }
            _ => chosen = Some(enc),
        }
    }
    Ok((chosen.unwrap_or(UTF_8), body))
}

/// The `encoding` pseudo-attribute of an `<?xml …?>` prolog. Read from raw
/// bytes because the prolog decides how to decode everything else; every
/// accepted encoding is ASCII-compatible, so the prolog is plain ASCII.
fn prolog_encoding(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"<?xml")?;
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// 1-based line and column (in characters) of a byte offset in `text`:
/// tells a partner where to look without echoing what is there.
fn position(text: &str, offset: u64) -> (usize, usize) {
    let offset = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let mut cut = offset;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn malformed(text: &str, offset: u64, why_zh: &str, why_en: &str) -> Violations {
    let (line, column) = position(text, offset);
    violation(
        "malformed_xml",
        format!("XML 格式错误（第 {line} 行第 {column} 列）：{why_zh}"),
        format!("malformed XML at line {line}, column {column}: {why_en}"),
    )
}

/// The five entities XML predefines; every other name is refused.
fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// Names come from a `&str` document, so they are UTF-8 already; the lossy
/// conversion is only the fallback the type system asks for.
fn utf8(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn namespace_of(res: &ResolveResult<'_>) -> Option<String> {
    match res {
        ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        _ => None,
    }
}

/// quick-xml's reader, namespace-aware only where the document can bind a
/// namespace: with no `xmlns` declaration and no `xml:` prefix (the one
/// prefix bound without a declaration) every name is unbound, and resolving
/// each one is wasted work on the common, namespace-free dialects.
enum Events<'t> {
    Ns(NsReader<&'t [u8]>),
    Plain(Reader<&'t [u8]>),
}

impl<'t> Events<'t> {
    fn new(text: &'t str) -> Self {
        let mut events = if text.contains("xmlns") || text.contains("xml:") {
            Events::Ns(NsReader::from_str(text))
        } else {
            Events::Plain(Reader::from_str(text))
        };
        let config = match &mut events {
            Events::Ns(r) => r.config_mut(),
            Events::Plain(r) => r.config_mut(),
        };
        config.check_end_names = true;
        config.expand_empty_elements = true;
        events
    }

    /// The next event, with the namespace of a start tag's name.
    fn next(&mut self) -> Result<(Option<String>, Event<'t>), quick_xml::Error> {
        match self {
            Events::Ns(r) => r.read_resolved_event().map(|(res, event)| match event {
                Event::Start(_) => (namespace_of(&res), event),
                _ => (None, event),
            }),
            Events::Plain(r) => r.read_event().map(|event| (None, event)),
        }
    }

    fn buffer_position(&self) -> u64 {
        match self {
            Events::Ns(r) => r.buffer_position(),
            Events::Plain(r) => r.buffer_position(),
        }
    }

    fn error_position(&self) -> u64 {
        match self {
            Events::Ns(r) => r.error_position(),
            Events::Plain(r) => r.error_position(),
        }
    }

    fn decoder(&self) -> Decoder {
        match self {
            Events::Ns(r) => r.decoder(),
            Events::Plain(r) => r.decoder(),
        }
    }
}

fn parse_tree(text: &str) -> Result<Element, Violations> {
    let mut reader = Events::new(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let offset = reader.buffer_position();
        let event = match reader.next() {
            Ok(ev) => ev,
            Err(e) => {
                let why = match e {
                    quick_xml::Error::IllFormed(_) => {
                        ("标签不匹配或结构错误", "mismatched tag or bad structure")
                    }
                    quick_xml::Error::Syntax(_) => ("语法错误", "syntax error"),
                    _ => ("无法解析", "cannot be parsed"),
                };
                return Err(malformed(text, reader.error_position(), why.0, why.1));
            }
        };
        match event {
            (_, Event::DocType(_)) => {
                return Err(violation(
                    "doctype_forbidden",
                    "不接受含 DOCTYPE 或实体声明的文档",
                    "documents with a DOCTYPE or entity declarations are not accepted",
                ))
            }
            (namespace, Event::Start(start)) => {
                if root.is_some() {
                    return Err(malformed(
                        text,
                        offset,
                        "根元素之后还有元素",
                        "content after the root element",
                    ));
                }
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(violation(
                        "document_too_large",
                        format!("文档嵌套超过 {MAX_DEPTH} 层或元素超过 {MAX_ELEMENTS} 个"),
                        format!("the document nests deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements"),
                    ));
                }
                let mut element = Element {
                    name: utf8(start.local_name().as_ref()),
                    namespace,
                    ..Element::default()
                };
                for attr in start.attributes() {
                    let attr =
                        attr.map_err(|_| malformed(text, offset, "属性错误", "bad attribute"))?;
                    let key = attr.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = attr
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|_| {
                            malformed(
                                text,
                                offset,
                                "属性值含未定义的实体",
                                "undefined entity in an attribute value",
                            )
                        })?;
                    let name = utf8(key.local_name().as_ref());
                    if element.attribute(&name).is_some() {
                        return Err(malformed(text, offset, "属性重复", "duplicate attribute"));
                    }
                    element.attributes.push((name, value.into_owned()));
                }
                stack.push(element);
            }
            (_, Event::End(_)) => {
                // check_end_names guarantees the name matches the open element.
                let Some(done) = stack.pop() else {
                    return Err(malformed(
                        text,
                        offset,
                        "多余的结束标签",
                        "unexpected end tag",
                    ));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            (_, Event::Text(t)) => {
                let s = t
                    .xml10_content()
                    .map_err(|_| malformed(text, offset, "文本无法解码", "undecodable text"))?;
                push_text(text, offset, &mut stack, &s)?;
            }
            (_, Event::CData(t)) => {
                let s = t
                    .xml10_content()
                    .map_err(|_| malformed(text, offset, "CDATA 无法解码", "undecodable CDATA"))?;
                push_text(text, offset, &mut stack, &s)?;
            }
            (_, Event::GeneralRef(r)) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|_| {
                            malformed(text, offset, "实体名无法解码", "undecodable entity name")
                        })?;
                        match predefined_entity(&name) {
                            Some(s) => s.to_owned(),
                            None => {
                                return Err(malformed(
                                    text,
                                    offset,
                                    "未定义的实体引用",
                                    "undefined entity reference",
                                ))
                            }
                        }
                    }
                    Err(_) => {
                        return Err(malformed(
                            text,
                            offset,
                            "无效的字符引用",
                            "invalid character reference",
                        ))
                    }
                };
                push_text(text, offset, &mut stack, &resolved)?;
            }
            (_, Event::Eof) => break,
            // The prolog was handled before decoding; comments and processing
            // instructions carry nothing the mapping reads.
            (_, Event::Decl(_) | Event::Comment(_) | Event::PI(_)) => {}
            (_, Event::Empty(_)) => {
                // Not produced with expand_empty_elements; refuse rather than drop.
                return Err(malformed(
                    text,
                    offset,
                    "无法处理的空元素",
                    "unexpected empty element event",
                ));
            }
        }
    }
    if !stack.is_empty() {
        return Err(malformed(
            text,
            text.len() as u64,
            "文档在元素结束前终止",
            "document ends inside an element",
        ));
    }
    root.ok_or_else(|| malformed(text, text.len() as u64, "没有根元素", "no root element"))
}

/// Adds character data to the open element; outside the root only
/// whitespace is allowed.
fn push_text(text: &str, offset: u64, stack: &mut [Element], s: &str) -> Result<(), Violations> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(s);
            Ok(())
        }
        None if s.chars().all(is_xml_space) => Ok(()),
        None => Err(malformed(
            text,
            offset,
            "根元素之外有文本",
            "text outside the root element",
        )),
    }
}

pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Serialises `root` with a prolog declaring `charset_label` and an
/// optional comment line. Indented by two spaces per level (partners read
/// these by eye when a case goes wrong); text-only elements stay on one line
/// so values carry no added whitespace.
pub(crate) fn write(root: &Element, charset_label: &str, comment: Option<&str>) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<?xml version=\"1.0\" encoding=\"");
    out.push_str(charset_label);
    out.push_str("\"?>\n");
    if let Some(c) = comment {
        out.push_str("<!-- ");
        out.push_str(c);
        out.push_str(" -->\n");
    }
    write_element(&mut out, root, 0);
    out
}

fn write_element(out: &mut String, el: &Element, depth: usize) {
    push_indent(out, depth);
    out.push('<');
    out.push_str(&el.name);
    if depth == 0 {
        if let Some(ns) = &el.namespace {
            out.push_str(" xmlns=\"");
            escape_into(out, ns, true);
            out.push('"');
        }
    }
    for (k, v) in &el.attributes {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v, true);
        out.push('"');
    }
    if el.children.is_empty() && el.text.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push('>');
    if el.children.is_empty() {
        escape_into(out, &el.text, false);
    } else {
        out.push('\n');
        for child in &el.children {
            write_element(out, child, depth + 1);
        }
        push_indent(out, depth);
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push_str(">\n");
}

/// Escapes markup characters. In attributes, whitespace other than space is
/// written as a character reference because attribute-value normalisation
/// would otherwise turn it into a space on the way back in.
fn escape_into(out: &mut String, s: &str, attribute: bool) {
    // Every character that needs escaping is ASCII, so runs between them
    // are copied whole (a byte index found this way is a char boundary).
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'\r') || (attribute && matches!(b, b'"' | b'\t' | b'\n'))
    }) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\t' => "&#9;",
            b'\n' => "&#10;",
            _ => "&#13;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

fn push_indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn codes(r: Result<Element, Violations>) -> Vec<&'static str> {
        r.err().unwrap_or_default().iter().map(|v| v.code).collect()
    }

    #[test]
    fn parses_elements_attributes_text_and_references() {
        let doc = parse(
            br#"<?xml version="1.0"?><a x="1&amp;2"><b>&lt;&#x4E2D;&#25991;&gt;</b><c/></a>"#,
            None,
        );
        let root = doc.unwrap_or_default();
        assert_eq!(root.name, "a");
        assert_eq!(root.attribute("x"), Some("1&2"));
        assert_eq!(root.children[0].text, "<中文>");
        assert_eq!(root.children[1].name, "c");
    }

    #[test]
    fn billion_laughs_is_rejected_quickly_without_expansion() {
        let mut bomb =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_owned()
            } else {
                format!("lol{}", i - 1)
            };
            bomb.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        bomb.push_str("]>\n<lolz>&lol9;</lolz>");
        let started = Instant::now();
        assert_eq!(codes(parse(bomb.as_bytes(), None)), ["doctype_forbidden"]);
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn external_entity_doctype_is_rejected() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>"#;
        assert_eq!(codes(parse(xxe, None)), ["doctype_forbidden"]);
    }

    #[test]
    fn undefined_entity_is_malformed_not_expanded() {
        assert_eq!(codes(parse(b"<a>&nbsp;</a>", None)), ["malformed_xml"]);
    }

    #[test]
    fn malformed_xml_reports_position_not_content() {
        let err = parse("<a>\n  <b>秘密</c>\n</a>".as_bytes(), None)
            .err()
            .unwrap_or_default();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code, "malformed_xml");
        assert!(
            err[0].message.en.contains("line 2"),
            "{}",
            err[0].message.en
        );
        assert!(!err[0].message.zh.contains("秘密"));
    }

    #[test]
    fn truncated_and_multi_root_documents_are_malformed() {
        assert_eq!(codes(parse(b"<a><b></b>", None)), ["malformed_xml"]);
        assert_eq!(codes(parse(b"<a/><b/>", None)), ["malformed_xml"]);
        assert_eq!(codes(parse(b"", None)), ["malformed_xml"]);
        assert_eq!(codes(parse(b"<a>x</a>junk", None)), ["malformed_xml"]);
    }

    #[test]
    fn depth_is_capped() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(codes(parse(deep.as_bytes(), None)), ["document_too_large"]);
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes(), None).is_ok());
    }

    #[test]
    fn encoding_comes_from_prolog_and_must_agree_with_content_type() {
        let (gb, _, _) = encoding_rs::GB18030
            .encode("<?xml version=\"1.0\" encoding=\"GB18030\"?><名>王𠮷祥</名>");
        let doc = parse(&gb, None).unwrap_or_default();
        assert_eq!((doc.name.as_str(), doc.text.as_str()), ("名", "王𠮷祥"));
        assert!(parse(&gb, Some("gb18030")).is_ok());
        assert_eq!(codes(parse(&gb, Some("utf-8"))), ["encoding_mismatch"]);
        assert_eq!(
            codes(parse(
                b"<?xml version='1.0' encoding='EBCDIC-xx'?><a/>",
                None
            )),
            ["unsupported_encoding"]
        );
        assert_eq!(
            codes(parse(b"<a/>", Some("shift_jis"))),
            ["unsupported_encoding"]
        );
        // GB18030 bytes read as UTF-8 (no prolog encoding): invalid.
        let (raw, _, _) = encoding_rs::GB18030.encode("<a>王</a>");
        assert_eq!(codes(parse(&raw, None)), ["invalid_encoding"]);
    }

    #[test]
    fn writer_output_parses_back_to_the_same_tree() {
        let mut root = Element::new("R");
        let mut child = Element::new("C");
        child.text = "a<b>&\"c\" 𠮷".into();
        child.attributes.push(("K".into(), "x\"y\n&z".into()));
        root.children.push(child);
        let text = write(&root, "UTF-8", Some("a comment"));
        let back = parse(text.as_bytes(), None).unwrap_or_default();
        assert_eq!(back.children, root.children);
    }
}
