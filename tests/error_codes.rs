//! Error codes are an API contract: every code the source can emit is listed
//! in docs/errors.md, so a new or renamed code cannot slip past partners
//! unannounced. (Exact JSON shapes are pinned by unit tests next to the code.)

use std::path::Path;

/// String literals that follow one of `markers` (e.g. `Violation::new(`),
/// skipping whitespace and, for `Problem::new(`, a leading status argument.
fn codes_after(source: &str, marker: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let mut s = rest.trim_start();
        // Problem::new(status, "code", …)
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            s = s
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches(',')
                .trim_start();
        }
        if let Some(lit) = s.strip_prefix('"') {
            if let Some(end) = lit.find('"') {
                let code = &lit[..end];
                if !code.is_empty()
                    && code
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    codes.push(code.to_string());
                }
            }
        }
    }
    codes
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn every_error_code_in_the_source_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).unwrap();
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for (file, text) in &files {
        // Test modules make up codes on purpose.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        // Cookie names are string constants too, but not error codes.
        let text: String = text
            .lines()
            .filter(|l| !l.contains("_COOKIE: &str"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = text.as_str();
        let mut codes = codes_after(text, "Violation::new(");
        codes.extend(codes_after(text, "violation("));
        codes.extend(codes_after(
            &text.replace(": &str = \"", "MARK(\""),
            "MARK(",
        ));
        codes.extend(codes_after(text, "Problem::new("));
        codes.extend(codes_after(&text.replace("code: \"", "MARK(\""), "MARK("));
        // The arms of every error enum's `fn code(&self)`.
        for body in text.split("fn code(&self)").skip(1) {
            let body = body.split("\n    pub fn ").next().unwrap_or("");
            codes.extend(codes_after(body, "=> "));
        }
        {
            for code in codes {
                if code.contains('_') {
                    found.push((code, file.clone()));
                }
            }
        }
    }
    for code in corrections_gateway::model::codes::ALL {
        found.push((code.to_string(), "src/model/codes.rs".into()));
    }
    assert!(
        found.len() > 20,
        "the scan finds the codes ({} found)",
        found.len()
    );
    let missing: Vec<_> = found
        .iter()
        .filter(|(code, _)| !docs.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes missing from docs/errors.md: {missing:#?}"
    );
}
