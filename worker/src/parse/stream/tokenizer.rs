//! The [`Model`] fed by html5ever's tokenizer: the reference reader (see
//! the module above). Also reads doctypes for the scanner, whose states
//! it has no reason to copy for one token a page.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Doctype, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::{is_html_space, Attr, Model, Scan, StartTag, Switch, ATTRS};

/// How much text the tokenizer is given at once: it copies each slice, so
/// this bounds that copy whatever the page's size.
const CHUNK_BYTES: usize = 64 * 1024;

/// Reads `text` once with html5ever's tokenizer into `model`.
pub(super) fn scan(text: &str, model: Model<'_>) -> Scan {
    let tokenizer = Tokenizer::new(
        Sink {
            model: RefCell::new(model),
        },
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        input.push_back(StrTendril::from_slice(&rest[..end]));
        // The sink never asks to stop for a script, so this runs to the
        // end of what it was given.
        let _ = tokenizer.feed(&input);
        rest = &rest[end..];
    }
    tokenizer.end();
    tokenizer.sink.model.into_inner().scan
}

impl StartTag for Tag {
    fn name(&self) -> &str {
        &self.name
    }

    fn self_closing(&self) -> bool {
        self.self_closing
    }

    fn attr(&self, attr: Attr) -> Option<&str> {
        let name = ATTRS[attr as usize];
        self.attrs
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| &*a.value)
    }
}

/// The model behind the shared reference the tokenizer hands its sink.
struct Sink<'a> {
    model: RefCell<Model<'a>>,
}

impl TokenSink for Sink<'_> {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut model = self.model.borrow_mut();
        match token {
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => {
                    return match model.start_tag(&tag) {
                        Switch::Markup => TokenSinkResult::Continue,
                        Switch::Rcdata => TokenSinkResult::RawData(RawKind::Rcdata),
                        Switch::Rawtext => TokenSinkResult::RawData(RawKind::Rawtext),
                        Switch::Script => TokenSinkResult::RawData(RawKind::ScriptData),
                        Switch::Plaintext => TokenSinkResult::Plaintext,
                    }
                }
                TagKind::EndTag => model.end_tag(&tag.name),
            },
            Token::CharacterTokens(text) => model.text(!text.chars().all(is_html_space)),
            Token::NullCharacterToken => model.null(),
            Token::DoctypeToken(doctype) => {
                let (html, quirks, public) = doctype_flags(&doctype);
                model.doctype(html, quirks, public);
            }
            Token::CommentToken(_) | Token::EOFToken | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        !self.model.borrow().html_content()
    }
}

/// What the model reads of a doctype: whether its name is `html`, whether
/// it forces quirks, whether it has a public identifier.
fn doctype_flags(doctype: &Doctype) -> (bool, bool, bool) {
    let html = doctype
        .name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("html"));
    (html, doctype.force_quirks, doctype.public_id.is_some())
}

/// The flags of [`doctype_flags`] for `markup`, one doctype token from its
/// `<!` to its `>` (or to the end of the page): the scanner's doctypes.
pub(super) fn doctype(markup: &str) -> Option<(bool, bool, bool)> {
    struct Doctypes(RefCell<Option<(bool, bool, bool)>>);
    impl TokenSink for Doctypes {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::DoctypeToken(d) = token {
                *self.0.borrow_mut() = Some(doctype_flags(&d));
            }
            TokenSinkResult::Continue
        }
    }
    let tokenizer = Tokenizer::new(Doctypes(RefCell::new(None)), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(markup));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.into_inner()
}
