//! Bincode inside every frame, decoded with two bounds a hostile peer
//! cannot talk its way past: how deeply the message nests, and how much
//! memory it may decode to for its size on the wire.
//!
//! Plain bincode has neither. [`Value`](crate::Value) is recursive, so a
//! frame of a few hundred KB of nested lists overflows the stack and aborts
//! the process; and a value can be 24–32 times larger in memory than on the
//! wire (an empty `Item` is 4 bytes of frame, 96 of memory), so a 64 MiB
//! frame could decode to gigabytes before any limit of the service is
//! looked at. The [`Codec`] wraps bincode's deserializer in `Bounded`
//! (in `bounded.rs`),
//! which sees every nested level and every element before it is built:
//!
//! - nesting deeper than [`DecodeLimits::max_depth`] is an error;
//! - each sequence element, map entry and string is charged its in-memory
//!   size against a budget of [`DecodeLimits::bytes_per_frame_byte`] times
//!   the frame (plus [`DecodeLimits::slack_bytes`]), and a frame over it is
//!   an error;
//! - a sequence claiming more elements than the frame has bytes is an
//!   error, and no claim makes the decoder reserve more than
//!   [`PREALLOC_ELEMENTS`] elements ahead of what has arrived.
//!
//! A decoding error closes that one connection, as any bad frame does, and
//! is counted ([`refused_frames`]) and logged, a line a second at most.
//! Encoding is plain bincode with the same options, so the two ends of a
//! connection agree byte for byte with what tarpc's own `Bincode` format
//! writes.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use bincode::Options;
use serde::{Deserialize, Serialize};
use tarpc::tokio_serde;
use tarpc::tokio_util::bytes::{Bytes, BytesMut};

mod bounded;

use bounded::{Seed, State};

/// Deepest nesting decoded, counted in serde levels: each struct, enum,
/// sequence, map or option is one. A payload [`Value`](crate::Value) costs
/// two per level (the enum, then its list or map), and the envelope around
/// it (tarpc's message, the request, the batch, the item) about ten, so
/// 256 decodes every item up to about 120 levels deep: past
/// [`MAX_VALUE_DEPTH`](crate::types::MAX_VALUE_DEPTH), so a too-deep item
/// still arrives and is refused by name rather than dropping the whole
/// connection, and well inside a 2 MiB thread stack.
pub const DEFAULT_MAX_DECODE_DEPTH: u32 = 256;

/// In-memory bytes a frame may decode to, per byte of frame. Typical items
/// and links decode to 2–6 times their frame size; a frame made only of
/// tiny values (nulls, small integers) reaches 16–32 and is refused.
pub const DEFAULT_BYTES_PER_FRAME_BYTE: usize = 12;

/// Budget every frame has on top of its multiple, so small frames of small
/// values (a status reply, a short list of integers) always decode.
pub const DEFAULT_SLACK_BYTES: usize = 1024 * 1024;

/// Most elements reserved ahead for a sequence, whatever length its header
/// claims: memory is spent as elements arrive, not as the peer promises.
pub const PREALLOC_ELEMENTS: usize = 256;

/// The bounds of [`Codec`]'s decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting accepted; see [`DEFAULT_MAX_DECODE_DEPTH`].
    pub max_depth: u32,
    /// Decoded bytes allowed per frame byte; see
    /// [`DEFAULT_BYTES_PER_FRAME_BYTE`].
    pub bytes_per_frame_byte: usize,
    /// Decoded bytes allowed on top; see [`DEFAULT_SLACK_BYTES`].
    pub slack_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: DEFAULT_MAX_DECODE_DEPTH,
            bytes_per_frame_byte: DEFAULT_BYTES_PER_FRAME_BYTE,
            slack_bytes: DEFAULT_SLACK_BYTES,
        }
    }
}

impl DecodeLimits {
    /// The in-memory budget of a frame of `frame_len` bytes.
    pub fn budget(&self, frame_len: usize) -> usize {
        frame_len
            .saturating_mul(self.bytes_per_frame_byte)
            .saturating_add(self.slack_bytes)
    }
}

/// The bincode options of tarpc's own `Bincode` format (varint integers,
/// little endian, trailing bytes refused), so frames look the same.
fn options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
}

/// Frames this process refused to decode, since it started: the count a
/// log line reports, for tests and tools.
pub fn refused_frames() -> u64 {
    REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// When the last refusal was logged, so a stream of bad frames (each
/// closes its connection, but a peer can reconnect) writes a line a
/// second at most.
static LAST_LOGGED: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

fn note_refused(frame_len: usize, error: &bincode::Error) {
    let refused = REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    // A poisoned lock only means a panic elsewhere mid-update of an Instant.
    let mut last = LAST_LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    if last.is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1)) {
        *last = Some(now);
        // Inside the connection's span, which names the peer.
        tracing::warn!(frame_len, %error, refused, "refused an RPC frame; closing the connection");
    }
}

/// Decodes one frame into `T` within `limits`.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], limits: DecodeLimits) -> io::Result<T> {
    let state = State {
        depth: Cell::new(0),
        max_depth: limits.max_depth,
        left: Cell::new(limits.budget(bytes.len())),
        frame_len: bytes.len(),
    };
    options()
        .deserialize_seed(
            Seed::<T> {
                ghost: PhantomData,
                state: &state,
            },
            bytes,
        )
        .map_err(|e| {
            note_refused(bytes.len(), &e);
            io::Error::new(io::ErrorKind::InvalidData, e)
        })
}

/// Encodes `value` as one frame's bytes, as the other end's [`decode`] reads.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    options()
        .serialize(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The tokio-serde format of every RPC connection: bincode, decoded with
/// [`DecodeLimits`]. Reads `Item`, writes `SinkItem`.
pub struct Codec<Item, SinkItem> {
    limits: DecodeLimits,
    ghost: PhantomData<fn(SinkItem) -> Item>,
}

impl<Item, SinkItem> Codec<Item, SinkItem> {
    /// A codec decoding within `limits`.
    pub fn new(limits: DecodeLimits) -> Self {
        Codec {
            limits,
            ghost: PhantomData,
        }
    }
}

impl<Item, SinkItem> Default for Codec<Item, SinkItem> {
    fn default() -> Self {
        Codec::new(DecodeLimits::default())
    }
}

impl<Item, SinkItem> fmt::Debug for Codec<Item, SinkItem> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("limits", &self.limits)
            .finish()
    }
}

impl<Item, SinkItem> tokio_serde::Deserializer<Item> for Codec<Item, SinkItem>
where
    Item: for<'de> Deserialize<'de>,
{
    type Error = io::Error;

    fn deserialize(self: Pin<&mut Self>, src: &BytesMut) -> io::Result<Item> {
        decode(src, self.limits)
    }
}

impl<Item, SinkItem: Serialize> tokio_serde::Serializer<SinkItem> for Codec<Item, SinkItem> {
    type Error = io::Error;

    fn serialize(self: Pin<&mut Self>, item: &SinkItem) -> io::Result<Bytes> {
        encode(item).map(Bytes::from)
    }
}

#[cfg(test)]
mod tests;
