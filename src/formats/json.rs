//! Safe JSON: bytes → `serde_json::Value` with the same limits as XML, and
//! the JSON ⇄ element-tree bridge that lets JSON dialects use the same
//! mapping engine as XML ones.
//!
//! Owns: charset checking (JSON is UTF-8 only, RFC 8259 §8.1), syntax errors
//! with a position, the nesting cap, and the tree form of a JSON object (a
//! key is an element, an array is repeated elements marked `list_item`, a
//! number or boolean is text marked `literal`, `null` is absent). Must never
//! echo document content in an error message.

use serde_json::{Map, Value};

use super::charset;
use super::xml::Element;
use crate::violation::{Violation, Violations};

/// Deepest nesting of arrays/objects accepted (serde_json itself stops at
/// 128, which bounds the parser's recursion; this bounds everything after).
pub(crate) const MAX_DEPTH: usize = 32;

fn violation(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Violations {
    vec![Violation::new(code, "", zh, en)]
}

/// Parses `bytes`; `charset` is the Content-Type `charset=` parameter, if any.
pub(crate) fn parse(bytes: &[u8], charset: Option<&str>) -> Result<Value, Violations> {
    if let Some(label) = charset {
        if charset::resolve(label) != Some(encoding_rs::UTF_8) {
            return Err(violation(
                "unsupported_encoding",
                "JSON 文档只接受 UTF-8 编码",
                "JSON documents are accepted in UTF-8 only",
            ));
        }
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_err() {
        return Err(violation(
            "invalid_encoding",
            "文档含有无效的 UTF-8 字节",
            "the document contains invalid UTF-8",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        violation(
            "malformed_json",
            format!("JSON 格式错误（第 {line} 行第 {column} 列）"),
            format!("malformed JSON at line {line}, column {column}"),
        )
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(violation(
            "document_too_large",
            format!("文档嵌套超过 {MAX_DEPTH} 层"),
            format!("the document nests deeper than {MAX_DEPTH}"),
        ));
    }
    Ok(value)
}

/// A parsed JSON document as an element tree (root named ""), or
/// `wrong_type` when the top level is not an object.
pub(crate) fn to_tree(value: &Value) -> Result<Element, Violations> {
    if !value.is_object() {
        return Err(violation(
            "wrong_type",
            "文档应为 JSON 对象",
            "the document must be a JSON object",
        ));
    }
    let mut root = Element::default();
    add_children(&mut root, "", value, false);
    Ok(root)
}

/// Adds `value` under `parent` as element(s) named `name` (the root's own
/// content when `name` is empty). Depth is already capped by [`parse`].
fn add_children(parent: &mut Element, name: &str, value: &Value, list_item: bool) {
    let mut el = Element {
        name: name.to_owned(),
        list_item,
        ..Element::default()
    };
    match value {
        Value::Null => return,
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(items) => {
                        for item in items {
                            add_children(&mut el, k, item, true);
                        }
                    }
                    v => add_children(&mut el, k, v, false),
                }
            }
        }
        // An array directly inside an array has no key of its own: its items
        // become children with the same name, which no rule reads as a value.
        Value::Array(items) => {
            for item in items {
                add_children(&mut el, name, item, true);
            }
        }
        Value::String(s) => el.text.clone_from(s),
        Value::Number(n) => {
            el.text = n.to_string();
            el.literal = true;
        }
        Value::Bool(b) => {
            el.text = b.to_string();
            el.literal = true;
        }
    }
    if name.is_empty() {
        *parent = el;
    } else {
        parent.children.push(el);
    }
}

/// The JSON object an element tree (built by the engine) stands for.
pub(crate) fn from_tree(root: &Element) -> Value {
    let mut map = Map::new();
    for child in &root.children {
        let value = if !child.children.is_empty() {
            from_tree(child)
        } else if child.literal {
            serde_json::from_str(&child.text).unwrap_or_else(|_| Value::String(child.text.clone()))
        } else {
            Value::String(child.text.clone())
        };
        if child.list_item {
            let slot = map
                .entry(child.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = slot {
                items.push(value);
            }
        } else {
            map.insert(child.name.clone(), value);
        }
    }
    Value::Object(map)
}

/// Nesting depth, iteratively (no recursion on partner-controlled shape).
fn depth(value: &Value) -> usize {
    let mut max = 0;
    let mut todo = vec![(value, 0usize)];
    while let Some((v, d)) = todo.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        max = max.max(d + 1);
        todo.extend(children.map(|c| (c, d + 1)));
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Value, Violations>) -> &'static str {
        r.err()
            .and_then(|v| v.first().map(|v| v.code))
            .unwrap_or("ok")
    }

    #[test]
    fn rejects_bad_json_with_position_only() {
        let err = parse("{\"xm\": \"张三\",\n \"a\": }".as_bytes(), None)
            .err()
            .unwrap_or_default();
        assert_eq!(err[0].code, "malformed_json");
        assert!(err[0].message.en.contains("line 2"));
        assert!(!err[0].message.zh.contains("张三"));
    }

    #[test]
    fn tree_round_trips_objects_arrays_and_literals() {
        let doc = serde_json::json!({
            "a": "x", "n": 17, "b": true, "o": {"k": "v"},
            "l": [{"r": "TO"}, {"r": "CC"}], "s": ["p", "q"], "z": null
        });
        let tree = to_tree(&doc).unwrap_or_default();
        assert!(tree.children.iter().any(|c| c.name == "n" && c.literal));
        let mut expected = doc.clone();
        if let Some(m) = expected.as_object_mut() {
            m.remove("z");
        }
        assert_eq!(from_tree(&tree), expected);
        assert_eq!(
            code(to_tree(&serde_json::json!([1])).map(|_| Value::Null)),
            "wrong_type"
        );
    }

    #[test]
    fn enforces_charset_and_depth() {
        assert_eq!(code(parse(b"{}", Some("gbk"))), "unsupported_encoding");
        assert_eq!(code(parse(b"{\"a\":\"\xff\"}", None)), "invalid_encoding");
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(code(parse(deep.as_bytes(), None)), "document_too_large");
        let very_deep = "[".repeat(100_000);
        assert_eq!(code(parse(very_deep.as_bytes(), None)), "malformed_json");
        assert_eq!(code(parse(b"{\"a\":[1,{\"b\":2}]}", Some("UTF-8"))), "ok");
    }
}
