//! Validity test matching Python's `json.loads` (for
//! `detectable_format:json_format`).
//!
//! `serde_json` is stricter than Python in ways that change the verdict:
//! Python accepts `NaN`, `Infinity`, `-Infinity`, numbers of any magnitude
//! (`1e400` becomes `inf`) and lone surrogate escapes (`"\ud800"`). This is a
//! small recursive-descent recogniser of Python's grammar instead; it only
//! answers "would `json.loads` succeed".

/// Python recurses once per nesting level and would raise `RecursionError`
/// (not a verdict) near its default limit of 1000; refusing deeper input
/// keeps this recogniser from overflowing the stack instead.
const MAX_DEPTH: usize = 1000;

/// Whether `json.loads(s)` succeeds.
pub(crate) fn is_valid(s: &str) -> bool {
    let mut p = Parser { s: s.as_bytes(), i: 0 };
    p.skip_ws();
    p.value(0) && {
        p.skip_ws();
        p.i == p.s.len()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// JSON whitespace is only these four, not Python's `str.isspace()`.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'n') => self.eat(b"null"),
            Some(b't') => self.eat(b"true"),
            Some(b'f') => self.eat(b"false"),
            Some(b'N') => self.eat(b"NaN"),
            Some(b'I') => self.eat(b"Infinity"),
            Some(b'-') if self.s[self.i..].starts_with(b"-Infinity") => self.eat(b"-Infinity"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`; an incomplete fraction or
    /// exponent is simply not consumed (the caller then fails on it, as
    /// Python does with "Extra data" or a missing delimiter).
    fn number(&mut self) -> bool {
        self.eat(b"-");
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        let save = self.i;
        if self.eat(b".") && self.digits() == 0 {
            self.i = save;
            return true;
        }
        let save = self.i;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                self.i = save;
            }
        }
        true
    }

    /// Strict-mode string: no raw control characters, valid escapes only.
    fn string(&mut self) -> bool {
        self.i += 1; // opening quote
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(c) if c < 0x20 => return false,
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.i += 5;
                        }
                        _ => return false,
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.skip_ws();
        if self.eat(b"}") {
            return true;
        }
        loop {
            if self.peek() != Some(b'"') || !self.string() {
                return false;
            }
            self.skip_ws();
            if !self.eat(b":") {
                return false;
            }
            self.skip_ws();
            if !self.value(depth + 1) {
                return false;
            }
            self.skip_ws();
            if self.eat(b"}") {
                return true;
            }
            if !self.eat(b",") {
                return false;
            }
            self.skip_ws();
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.skip_ws();
        if self.eat(b"]") {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            self.skip_ws();
            if self.eat(b"]") {
                return true;
            }
            if !self.eat(b",") {
                return false;
            }
            self.skip_ws();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_what_python_accepts() {
        for ok in [
            "{}",
            "[]",
            " {\"a\": [1, 2.5, -3e10, true, false, null]} ",
            "\"text\"",
            "42",
            "NaN",
            "[Infinity, -Infinity]",
            "1e400",
            "\"\\ud800\"",
            "{\"a\": {\"b\": \"\\n\\u00e9\"}}",
            "{\"a\": 1, \"a\": 2}",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            "{",
            "{'a': 1}",
            "[1,]",
            "{\"a\": 1,}",
            "01",
            "1.",
            "1e",
            "-",
            "[1 2]",
            "\"a\nb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "{\"a\" 1}",
            "nul",
            "{} {}",
            "\u{feff}{}",
            "\u{a0}{}",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        assert!(!is_valid(&deep));
        let ok = "[".repeat(500) + &"]".repeat(500);
        assert!(is_valid(&ok));
    }
}
