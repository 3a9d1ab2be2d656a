//! `multipart/related` (RFC 2387, framing of RFC 2046 §5.1) read from a
//! spooled file, one part at a time, each part's content streamed into a
//! sink — never a whole part in memory unless the caller's sink keeps it.
//!
//! The reader works on a body whose `Content-Digest` has already been checked
//! against the verified signature: the framing is parsed only after the
//! signer is known and the bytes are the ones it signed.

use std::io::{self, Read, Write};

/// A problem with the framing of a multipart body.
#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    /// A part's content passed the caller's limit.
    #[error("a part exceeds its size limit")]
    TooLarge,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The `Content-Type` of a `multipart/related` body, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartType {
    pub boundary: String,
    /// The `type` parameter: the media type of the root (first) part.
    pub root_type: Option<String>,
}

/// `None` when the media type is not `multipart/related`; otherwise its
/// boundary and root type, or what is wrong with them.
pub fn parse_content_type(content_type: &str) -> Option<Result<MultipartType, &'static str>> {
    let (essence, params) = split_params(content_type);
    if !essence.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    let Some(params) = params else {
        return Some(Err("the multipart Content-Type parameters do not parse"));
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let Some(boundary) = get("boundary") else {
        return Some(Err("multipart/related needs a boundary parameter"));
    };
    // RFC 2046 §5.1.1: 1 to 70 characters from bchars, not ending in a space.
    let bchar = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if boundary.is_empty()
        || boundary.len() > 70
        || boundary.ends_with(' ')
        || !boundary.chars().all(bchar)
    {
        return Some(Err(
            "the multipart boundary is not a valid RFC 2046 boundary",
        ));
    }
    Some(Ok(MultipartType {
        boundary,
        root_type: get("type"),
    }))
}

/// Splits `type/subtype; a=b; c="d;e"` into the lower-cased essence and its
/// parameters (`None` if a parameter does not parse).
pub fn split_params(value: &str) -> (String, Option<Vec<(String, String)>>) {
    let (essence, rest) = value.split_once(';').unwrap_or((value, ""));
    let essence = essence.trim().to_ascii_lowercase();
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| *c == ' ' || *c == '\t' || *c == ';')
        {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || name.trim().is_empty() {
            return (essence, None);
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => return (essence, None),
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                return (essence, None);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.push((name.trim().to_ascii_lowercase(), value));
    }
    (essence, Some(params))
}

/// The headers of one part (names lower-cased, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHeaders(pub Vec<(String, String)>);

impl PartHeaders {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: a part or the close delimiter follows.
    AfterDelimiter,
    /// Headers read; the content has not been consumed.
    InContent,
    Done,
}

const CHUNK: usize = 64 * 1024;
const MAX_HEADERS: usize = 16 * 1024;

/// Reads the parts of one multipart body in order.
pub struct MultipartReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// `CRLF "--" boundary`.
    delimiter: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    state: State,
}

impl<R: Read> MultipartReader<R> {
    pub fn new(src: R, boundary: &str) -> MultipartReader<R> {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        let finder = memchr::memmem::Finder::new(&delimiter).into_owned();
        MultipartReader {
            src,
            // The first delimiter may open the body without a preceding CRLF
            // (RFC 2046 §5.1.1): a virtual CRLF makes it look like every other.
            buf: b"\r\n".to_vec(),
            pos: 0,
            eof: false,
            delimiter,
            finder,
            state: State::Preamble,
        }
    }

    /// Moves to the next part and returns its headers, or `None` after the
    /// close delimiter. Content not read with [`Self::read_content`] is skipped.
    pub fn next_part(&mut self) -> Result<Option<PartHeaders>, MultipartError> {
        match self.state {
            State::Done => return Ok(None),
            State::Preamble | State::InContent => {
                self.read_content(&mut io::sink(), u64::MAX)?;
            }
            State::AfterDelimiter => {}
        }
        // After a delimiter: "--" closes; else optional padding, then CRLF.
        self.fill_to(2)?;
        if self.available().starts_with(b"--") {
            self.state = State::Done;
            return Ok(None);
        }
        loop {
            self.fill_to(2)?;
            match self.available() {
                [b' ' | b'\t', ..] => self.pos += 1,
                [b'\r', b'\n', ..] => {
                    self.pos += 2;
                    break;
                }
                _ => {
                    return Err(MultipartError::Malformed(
                        "a boundary line is not followed by CRLF",
                    ))
                }
            }
        }
        let headers = self.read_headers()?;
        self.state = State::InContent;
        Ok(Some(headers))
    }

    /// Streams the current part's content into `sink`; fails with
    /// [`MultipartError::TooLarge`] as soon as more than `limit` bytes came.
    pub fn read_content(
        &mut self,
        sink: &mut impl Write,
        limit: u64,
    ) -> Result<u64, MultipartError> {
        if !matches!(self.state, State::InContent | State::Preamble) {
            return Err(MultipartError::Malformed("no part is open"));
        }
        let keep = self.delimiter.len() - 1;
        let mut written: u64 = 0;
        let mut emit = |bytes: &[u8], sink: &mut dyn Write| -> Result<(), MultipartError> {
            written += bytes.len() as u64;
            if written > limit {
                return Err(MultipartError::TooLarge);
            }
            sink.write_all(bytes)?;
            Ok(())
        };
        loop {
            if let Some(at) = self.finder.find(self.available()) {
                let end = self.pos + at;
                emit(&self.buf[self.pos..end], sink)?;
                self.pos = end + self.delimiter.len();
                self.state = State::AfterDelimiter;
                return Ok(written);
            }
            if self.eof {
                return Err(MultipartError::Malformed(
                    "the body ends inside a part (no close delimiter)",
                ));
            }
            let safe = self.buf.len().saturating_sub(keep);
            if safe > self.pos {
                emit(&self.buf[self.pos..safe], sink)?;
                self.pos = safe;
            }
            self.fill()?;
        }
    }

    fn read_headers(&mut self) -> Result<PartHeaders, MultipartError> {
        // A part without headers starts with its blank line.
        self.fill_to(2)?;
        if self.available().starts_with(b"\r\n") {
            self.pos += 2;
            return Ok(PartHeaders::default());
        }
        let end = loop {
            if let Some(at) = memchr::memmem::find(self.available(), b"\r\n\r\n") {
                break at;
            }
            if self.available().len() > MAX_HEADERS {
                return Err(MultipartError::Malformed("a part's headers are too long"));
            }
            if self.eof {
                return Err(MultipartError::Malformed(
                    "the body ends inside a part's headers",
                ));
            }
            self.fill()?;
        };
        let block = &self.buf[self.pos..self.pos + end];
        let text = std::str::from_utf8(block)
            .map_err(|_| MultipartError::Malformed("a part's headers are not UTF-8"))?;
        let mut headers = Vec::new();
        for line in text.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                return Err(MultipartError::Malformed(
                    "folded part headers are not accepted",
                ));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(MultipartError::Malformed("a part header line has no colon"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(MultipartError::Malformed(
                    "a part header name is not a token",
                ));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        self.pos += end + 4;
        Ok(PartHeaders(headers))
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until at least `n` bytes are available or the source ends.
    fn fill_to(&mut self, n: usize) -> Result<(), MultipartError> {
        while self.available().len() < n && !self.eof {
            self.fill()?;
        }
        if self.available().len() < n {
            return Err(MultipartError::Malformed("the body ends too early"));
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<(), MultipartError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.src.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e.into());
                }
            }
        };
        self.buf.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `n` bytes per read, to cut delimiters in two.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn parts(body: &[u8], step: usize) -> Result<Vec<(PartHeaders, Vec<u8>)>, MultipartError> {
        let mut r = MultipartReader::new(Trickle(body, step), "b0undary");
        let mut out = Vec::new();
        while let Some(h) = r.next_part()? {
            let mut content = Vec::new();
            r.read_content(&mut content, 1 << 20)?;
            out.push((h, content));
        }
        Ok(out)
    }

    const BODY: &[u8] = b"preamble\r\n--b0undary\r\nContent-Type: application/xml\r\n\r\n<a>\r\n--b0undar</a>\r\n--b0undary  \r\n\r\n\x00\x01\r\n\r\n--b0undary--\r\nepilogue";

    #[test]
    fn parts_come_out_whole_however_the_bytes_are_cut() {
        for step in [1, 2, 3, 7, 64, 100_000] {
            let got = parts(BODY, step).unwrap();
            assert_eq!(got.len(), 2, "step {step}");
            assert_eq!(got[0].0.get("content-type"), Some("application/xml"));
            assert_eq!(got[0].1, b"<a>\r\n--b0undar</a>");
            assert_eq!(got[1].0, PartHeaders::default());
            assert_eq!(got[1].1, b"\x00\x01\r\n");
        }
    }

    #[test]
    fn a_body_may_open_with_its_first_delimiter() {
        let body = b"--b0undary\r\n\r\nx\r\n--b0undary--";
        assert_eq!(parts(body, 3).unwrap()[0].1, b"x");
    }

    #[test]
    fn bad_framing_and_big_parts_are_refused() {
        assert!(matches!(
            parts(b"--b0undary\r\n\r\nx", 4),
            Err(MultipartError::Malformed(_))
        ));
        assert!(matches!(
            parts(b"--b0undary\r\nno colon\r\n\r\nx\r\n--b0undary--", 4),
            Err(MultipartError::Malformed(_))
        ));
        assert!(matches!(
            parts(b"nothing here", 4),
            Err(MultipartError::Malformed(_))
        ));
        let mut r = MultipartReader::new(BODY, "b0undary");
        r.next_part().unwrap();
        assert!(matches!(
            r.read_content(&mut Vec::new(), 3),
            Err(MultipartError::TooLarge)
        ));
    }

    #[test]
    fn content_type_parameters() {
        let t =
            parse_content_type("Multipart/Related; boundary=\"a b:c\"; type=\"application/xml\"")
                .unwrap()
                .unwrap();
        assert_eq!(t.boundary, "a b:c");
        assert_eq!(t.root_type.as_deref(), Some("application/xml"));
        assert!(parse_content_type("application/xml").is_none());
        assert!(parse_content_type("multipart/related").unwrap().is_err());
        assert!(parse_content_type("multipart/related; boundary=\"x\n\"")
            .unwrap()
            .is_err());
    }
}
