//! Just enough JSON for DevTools messages, since this crate links nothing
//! but std: a value parser, string quoting, and base64 for screenshots.

/// A parsed JSON value. Objects keep their keys in order; a message has a
/// handful, so a list is as quick as a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// Deepest nesting parsed; DevTools messages are a few levels deep.
const MAX_DEPTH: usize = 64;

impl Json {
    /// `text` as one JSON value, or `None` if it is not one.
    pub fn parse(text: &str) -> Option<Json> {
        let mut parser = Parser {
            text,
            at: 0,
            depth: 0,
        };
        let value = parser.value()?;
        parser.space();
        (parser.at == text.len()).then_some(value)
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is one.
    pub fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string at `key`, or "" (DevTools ids are never empty).
    pub fn str_at(&self, key: &str) -> &str {
        self.get(key).and_then(Json::str).unwrap_or("")
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> Option<()> {
        self.text[self.at..].starts_with(literal).then(|| {
            self.at += literal.len();
        })
    }

    fn value(&mut self) -> Option<Json> {
        self.space();
        match self.peek()? {
            b'{' | b'[' if self.depth == MAX_DEPTH => None,
            b'{' => {
                self.depth += 1;
                self.at += 1;
                let mut members = Vec::new();
                self.space();
                if self.eat("}").is_none() {
                    loop {
                        self.space();
                        let key = self.string()?;
                        self.space();
                        self.eat(":")?;
                        members.push((key, self.value()?));
                        self.space();
                        if self.eat(",").is_none() {
                            self.eat("}")?;
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(Json::Obj(members))
            }
            b'[' => {
                self.depth += 1;
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.eat("]").is_none() {
                    loop {
                        items.push(self.value()?);
                        self.space();
                        if self.eat(",").is_none() {
                            self.eat("]")?;
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(Json::Arr(items))
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.eat("true").map(|_| Json::Bool(true)),
            b'f' => self.eat("false").map(|_| Json::Bool(false)),
            b'n' => self.eat("null").map(|_| Json::Null),
            _ => {
                let start = self.at;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                self.text[start..self.at].parse().ok().map(Json::Num)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            // Up to the next quote or backslash, both ASCII: a char
            // boundary, so the run is copied as it is.
            let rest = &self.text[self.at..];
            let run = rest.find(['"', '\\'])?;
            out.push_str(&rest[..run]);
            self.at += run + 1;
            if rest.as_bytes()[run] == b'"' {
                return Some(out);
            }
            let escape = self.peek()?;
            self.at += 1;
            out.push(match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let high = self.hex4()?;
                    let code = if (0xd800..0xdc00).contains(&high) {
                        self.eat("\\u")?;
                        let low = self.hex4()?;
                        0x10000 + ((high - 0xd800) << 10) + low.checked_sub(0xdc00)?
                    } else {
                        high
                    };
                    char::from_u32(code)?
                }
                _ => return None,
            });
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}

/// `s` as a JSON string literal, quotes included.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Standard base64 (with or without padding) decoded; `None` on any other
/// byte.
pub fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0u32);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let six = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(six);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DevTools answer is read with nesting, escapes and a surrogate pair.
    #[test]
    fn parses_a_message() {
        let text = r#"{"id":7,"result":{"result":{"type":"string","value":"<p a=\"1\">\u00e9\ud83d\ude00\n</p>"}},"ok":[true,false,null,-1.5e2]}"#;
        let v = Json::parse(text).unwrap();
        let value = v
            .get("result")
            .unwrap()
            .get("result")
            .unwrap()
            .str_at("value");
        assert_eq!(value, "<p a=\"1\">é😀\n</p>");
        assert_eq!(v.get("id"), Some(&Json::Num(7.0)));
        assert_eq!(
            v.get("ok"),
            Some(&Json::Arr(vec![
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::Num(-150.0)
            ]))
        );
        assert_eq!(Json::parse("{\"a\":1"), None);
        assert_eq!(Json::parse(&"[".repeat(100)), None);
    }

    /// What `quote` writes reads back as the same string.
    #[test]
    fn quote_round_trips() {
        let s = "a\"b\\c\nd\u{1}é/";
        assert_eq!(Json::parse(&quote(s)), Some(Json::Str(s.into())));
    }

    /// Base64 with and without padding.
    #[test]
    fn decodes_base64() {
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64("iVBORw==").unwrap(), b"\x89PNG");
        assert_eq!(base64("a*"), None);
    }
}
