//! The scanner's raw text states: the text of `<style>`, `<title>` and the
//! like up to the end tag that closes them, script data through its
//! `<!--` escapes, and where a comment ends. Apart from the markup states
//! because each is a small state machine of its own.

use memchr::{memchr, memchr2, memmem};

use super::{is_space, lowered, Scanner};
use crate::parse::stream::Sink;

impl<'t, S: Sink> Scanner<'t, '_, S> {
    /// Raw text from `at` to the end tag of the element named
    /// `text[name..name_end]`.
    pub(super) fn raw_text(
        &mut self,
        mut at: usize,
        name: usize,
        name_end: usize,
    ) -> Option<usize> {
        let b = self.b;
        loop {
            let lt = at + memchr(b'<', &b[at..])?;
            if b.get(lt + 1) == Some(&b'/') {
                if let Some(delim) = self.appropriate_end(lt + 2, name, name_end) {
                    return self.close_raw(delim, name, name_end);
                }
            }
            at = lt + 1;
        }
    }

    /// After `</` at `at`: whether the letters there name the element
    /// `text[name..name_end]` (in any case) and are followed by whitespace,
    /// `/` or `>`; if so, where that follows.
    fn appropriate_end(&self, at: usize, name: usize, name_end: usize) -> Option<usize> {
        let b = self.b;
        let end = at + (name_end - name);
        if !b.get(at..end)?.eq_ignore_ascii_case(&b[name..name_end]) {
            return None;
        }
        let c = *b.get(end)?;
        (is_space(c) || c == b'/' || c == b'>').then_some(end)
    }

    /// The end tag of a raw text element, read up to `at`.
    fn close_raw(&mut self, at: usize, name: usize, name_end: usize) -> Option<usize> {
        let (end, _) = self.attributes(at, &[])?;
        let text: &'t str = self.text;
        self.sink.end_tag(&lowered(&text[name..name_end]));
        Some(end)
    }

    /// Script data from `at` to the end tag of the `<script>` named
    /// `text[name..name_end]`, through its escapes: after `<!--`, a
    /// `<script>` starts a "double escaped" part where `</script>` only
    /// ends that part, and `-->` ends the escape.
    pub(super) fn script(&mut self, mut at: usize, name: usize, name_end: usize) -> Option<usize> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            Data,
            Escaped,
            EscapedDash,
            EscapedDashDash,
            EscapedLt,
            Double,
            DoubleDash,
            DoubleDashDash,
            DoubleLt,
        }
        use State::*;
        let b = self.b;
        let mut state = Data;
        loop {
            state = match state {
                Data => {
                    at += memchr(b'<', &b[at..])? + 1;
                    match *b.get(at)? {
                        b'/' => {
                            if let Some(delim) = self.appropriate_end(at + 1, name, name_end) {
                                return self.close_raw(delim, name, name_end);
                            }
                            at += 1;
                            Data
                        }
                        b'!' if b.get(at + 1..at + 3) == Some(b"--") => {
                            at += 3;
                            EscapedDashDash
                        }
                        // Read again as script data.
                        _ => Data,
                    }
                }
                Escaped | Double => {
                    let p = at + memchr2(b'-', b'<', &b[at..])?;
                    at = p + 1;
                    match (b[p], state) {
                        (b'-', Escaped) => EscapedDash,
                        (b'-', _) => DoubleDash,
                        (_, Escaped) => EscapedLt,
                        _ => DoubleLt,
                    }
                }
                EscapedDash | EscapedDashDash | DoubleDash | DoubleDashDash => {
                    let double = matches!(state, DoubleDash | DoubleDashDash);
                    let c = *b.get(at)?;
                    at += 1;
                    match c {
                        b'-' if double => DoubleDashDash,
                        b'-' => EscapedDashDash,
                        b'<' if double => DoubleLt,
                        b'<' => EscapedLt,
                        b'>' if matches!(state, EscapedDashDash | DoubleDashDash) => Data,
                        _ if double => Double,
                        _ => Escaped,
                    }
                }
                EscapedLt => match *b.get(at)? {
                    b'/' => {
                        if let Some(delim) = self.appropriate_end(at + 1, name, name_end) {
                            return self.close_raw(delim, name, name_end);
                        }
                        at += 1;
                        Escaped
                    }
                    c if c.is_ascii_alphabetic() => {
                        // `<script` starts the double escaped part.
                        let (script, next) = script_word(b, at)?;
                        at = next;
                        if script {
                            Double
                        } else {
                            Escaped
                        }
                    }
                    _ => Escaped,
                },
                DoubleLt => match *b.get(at)? {
                    b'/' => {
                        // `</script` ends it.
                        let (script, next) = script_word(b, at + 1)?;
                        at = next;
                        if script {
                            Escaped
                        } else {
                            Double
                        }
                    }
                    _ => Double,
                },
            };
        }
    }
}

/// The letters from `at` in escaped script data, where `script` followed
/// by whitespace, `/` or `>` moves between its escaped parts: whether they
/// are that (the delimiter is taken with any word), and where the text
/// goes on; `None` if the text ends first.
fn script_word(b: &[u8], at: usize) -> Option<(bool, usize)> {
    let mut end = at;
    while b.get(end)?.is_ascii_alphabetic() {
        end += 1;
    }
    let c = b[end];
    if is_space(c) || c == b'/' || c == b'>' {
        Some((b[at..end].eq_ignore_ascii_case(b"script"), end + 1))
    } else {
        Some((false, end))
    }
}

/// Just past the comment whose text starts at `at` (after `<!--`).
pub(super) fn comment_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at..) {
        Some([b'>', ..]) => return Some(at + 1),
        Some([b'-', b'>', ..]) => return Some(at + 2),
        _ => {}
    }
    let mut from = at;
    loop {
        let dashes = from + memmem::find(&b[from..], b"--")?;
        let mut end = dashes + 2;
        while b.get(end) == Some(&b'-') {
            end += 1;
        }
        match b.get(end..) {
            Some([b'>', ..]) => return Some(end + 1),
            Some([b'!', b'>', ..]) => return Some(end + 2),
            _ => from = end,
        }
    }
}
