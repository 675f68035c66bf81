//! [`Sink`]: what a reader ([`super::scanner`]) tells of a page and asks
//! back, token by token; the [`Model`] is one, and the strict tree over
//! it ([`super::strict::Strict`]) another.

use super::model::{attrs_read, Attr, Model, StartTag, Switch};

/// What a reader tells of a page, token by token, and what it asks back.
pub(super) trait Sink {
    /// The attributes whose values the reader must decode for a start tag
    /// `name`; it steps over the others.
    fn attrs_read(&self, name: &str) -> &'static [Attr];
    /// A start tag, and the state the tokenizer goes on in.
    fn start_tag(&mut self, tag: &impl StartTag) -> Switch;
    /// An end tag, its name in lower case.
    fn end_tag(&mut self, name: &str);
    /// Character tokens (`non_space`: not all of them HTML whitespace).
    fn text(&mut self, non_space: bool);
    /// A U+0000 character token.
    fn null(&mut self);
    /// A doctype token's flags (see [`Model::doctype`]).
    fn doctype(&mut self, html: bool, force_quirks: bool, public_id: bool);
    /// See [`Model::html_content`].
    fn html_content(&self) -> bool;
    /// Whether nothing the page still holds can change what is read.
    fn done(&self) -> bool;
    /// See [`Model::text_matters`].
    fn text_matters(&self) -> bool;
    /// Whether the text itself is wanted now ([`Sink::chars`]), not only
    /// whether it is all whitespace.
    fn wants_chars(&self) -> bool {
        false
    }
    /// Text as the tokenizer gives it (references decoded, CR and CRLF as
    /// LF, U+0000 kept), before it is told as [`Sink::text`]; only while
    /// [`Sink::wants_chars`].
    fn chars(&mut self, _text: &str) {}
}

impl Sink for Model<'_> {
    fn attrs_read(&self, name: &str) -> &'static [Attr] {
        attrs_read(name)
    }
    fn start_tag(&mut self, tag: &impl StartTag) -> Switch {
        Model::start_tag(self, tag)
    }
    fn end_tag(&mut self, name: &str) {
        Model::end_tag(self, name)
    }
    fn text(&mut self, non_space: bool) {
        Model::text(self, non_space)
    }
    fn null(&mut self) {
        Model::null(self)
    }
    fn doctype(&mut self, html: bool, force_quirks: bool, public_id: bool) {
        Model::doctype(self, html, force_quirks, public_id)
    }
    fn html_content(&self) -> bool {
        Model::html_content(self)
    }
    fn done(&self) -> bool {
        Model::done(self)
    }
    fn text_matters(&self) -> bool {
        Model::text_matters(self)
    }
}
