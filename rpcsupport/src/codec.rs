//! Bincode inside every frame, decoded with two bounds a hostile peer
//! cannot talk its way past: how deeply the message nests, and how much
//! memory it may decode to for its size on the wire.
//!
//! Plain bincode has neither. [`Value`](crate::Value) is recursive, so a
//! frame of a few hundred KB of nested lists overflows the stack and aborts
//! the process; and a value can be 24–32 times larger in memory than on the
//! wire (an empty `Item` is 4 bytes of frame, 96 of memory), so a 64 MiB
//! frame could decode to gigabytes before any limit of the service is
//! looked at. The [`Codec`] wraps bincode's deserializer in [`Bounded`],
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
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use tarpc::tokio_serde;
use tarpc::tokio_util::bytes::{Bytes, BytesMut};

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

/// What one frame's decoding has left. Shared by reference between the
/// wrappers of every level, hence the cells; decoding is single-threaded.
struct State {
    depth: Cell<u32>,
    max_depth: u32,
    left: Cell<usize>,
    frame_len: usize,
}

impl State {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "a frame of {} bytes decodes to more memory than allowed \
                 (DecodeLimits::bytes_per_frame_byte)",
                self.frame_len
            ))),
        }
    }

    /// Runs `f` one level deeper.
    fn nested<T, E: de::Error>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let depth = self.depth.get() + 1;
        if depth > self.max_depth {
            return Err(E::custom(format_args!(
                "nested deeper than {} levels (DecodeLimits::max_depth)",
                self.max_depth
            )));
        }
        self.depth.set(depth);
        let out = f();
        self.depth.set(depth - 1);
        out
    }

    fn check_claim<E: de::Error>(&self, claimed: Option<usize>) -> Result<(), E> {
        match claimed {
            Some(n) if n > self.frame_len => Err(E::custom(format_args!(
                "a sequence claims {n} elements in a frame of {} bytes",
                self.frame_len
            ))),
            _ => Ok(()),
        }
    }
}

/// Deserializes a `T`, charged its own size, through [`Bounded`].
struct Seed<'s, T> {
    ghost: PhantomData<T>,
    state: &'s State,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        self.state.charge(std::mem::size_of::<T>())?;
        T::deserialize(Bounded {
            inner: d,
            state: self.state,
        })
    }
}

/// Wraps an inner seed so the deserializer it is given is [`Bounded`] too.
struct Inner<'s, S> {
    seed: S,
    state: &'s State,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Inner<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Bounded {
            inner: d,
            state: self.state,
        })
    }
}

/// A deserializer that counts levels and charges memory, then asks the
/// one it wraps.
struct Bounded<'s, D> {
    inner: D,
    state: &'s State,
}

macro_rules! flat {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let state = self.state;
            self.inner.$method(Wrap { visitor, state })
        }
    )*};
}

macro_rules! deep {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let state = self.state;
            state.nested(|| self.inner.$method(Wrap { visitor, state }))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<'_, D> {
    type Error = D::Error;

    flat!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any
    );
    deep!(
        deserialize_any,
        deserialize_option,
        deserialize_seq,
        deserialize_map
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        self.inner
            .deserialize_unit_struct(name, Wrap { visitor, state })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| {
            self.inner
                .deserialize_newtype_struct(name, Wrap { visitor, state })
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| self.inner.deserialize_tuple(len, Wrap { visitor, state }))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| {
            self.inner
                .deserialize_tuple_struct(name, len, Wrap { visitor, state })
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| {
            self.inner
                .deserialize_struct(name, fields, Wrap { visitor, state })
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| {
            self.inner
                .deserialize_enum(name, variants, Wrap { visitor, state })
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested accesses are bounded, and whose strings are
/// charged their length.
struct Wrap<'s, V> {
    visitor: V,
    state: &'s State,
}

macro_rules! scalar {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    scalar!(
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char
    );

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.state.charge(v.len())?;
        self.visitor.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let state = self.state;
        self.visitor.visit_some(Bounded { inner: d, state })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let state = self.state;
        self.visitor
            .visit_newtype_struct(Bounded { inner: d, state })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.state.check_claim(seq.size_hint())?;
        let state = self.state;
        self.visitor.visit_seq(Access { inner: seq, state })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.state.check_claim(map.size_hint())?;
        let state = self.state;
        self.visitor.visit_map(Access { inner: map, state })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let state = self.state;
        self.visitor.visit_enum(Access { inner: data, state })
    }
}

/// Sequence, map, enum and variant access, bounded: each element is
/// charged its in-memory size before it is decoded.
struct Access<'s, A> {
    inner: A,
    state: &'s State,
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.state.charge(std::mem::size_of::<T::Value>())?;
        let state = self.state;
        self.inner.next_element_seed(Inner { seed, state })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(PREALLOC_ELEMENTS))
    }
}

/// What a map entry costs beyond its key and value: a share of the B-tree
/// node around it (our maps are `BTreeMap`s).
const MAP_ENTRY_OVERHEAD: usize = 16;

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.state
            .charge(std::mem::size_of::<K::Value>() + MAP_ENTRY_OVERHEAD)?;
        let state = self.state;
        self.inner.next_key_seed(Inner { seed, state })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.state.charge(std::mem::size_of::<V::Value>())?;
        let state = self.state;
        self.inner.next_value_seed(Inner { seed, state })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint().map(|n| n.min(PREALLOC_ELEMENTS))
    }
}

impl<'de, 's, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<'s, A> {
    type Error = A::Error;
    type Variant = Access<'s, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Self::Error> {
        let state = self.state;
        let (value, variant) = self.inner.variant_seed(Inner { seed, state })?;
        Ok((
            value,
            Access {
                inner: variant,
                state,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        // Not a level of its own: the seed's deserializer counts the value.
        let state = self.state;
        self.inner.newtype_variant_seed(Inner { seed, state })
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| self.inner.tuple_variant(len, Wrap { visitor, state }))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let state = self.state;
        state.nested(|| self.inner.struct_variant(fields, Wrap { visitor, state }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Item, Value};
    use std::collections::BTreeMap;

    fn nested_list(depth: usize) -> Value {
        let mut v = Value::Null;
        for _ in 0..depth {
            v = Value::List(vec![v]);
        }
        v
    }

    /// The bounded codec writes exactly what tarpc's own Bincode format
    /// writes, and reads it back.
    #[test]
    fn same_bytes_as_tarpc_bincode() {
        use tarpc::tokio_serde::Serializer;
        let item = Item {
            url: "http://x/".into(),
            kind: "k".into(),
            id: Some("1".into()),
            payload: [("v".to_string(), nested_list(5))].into(),
        };
        let mut theirs = tarpc::tokio_serde::formats::Bincode::<Item, Item>::default();
        let expected = Pin::new(&mut theirs).serialize(&item).unwrap();
        let ours = encode(&item).unwrap();
        assert_eq!(&ours[..], &expected[..]);
        let back: Item = decode(&ours, DecodeLimits::default()).unwrap();
        assert_eq!(back, item);
    }

    /// Nesting past the limit is an error, not a stack overflow, even for
    /// a frame of a million nested lists; nesting under it decodes.
    #[test]
    fn deep_nesting_is_an_error() {
        // Value::List(..) is enum tag 5, then a length of 1: two bytes per level.
        let mut frame = Vec::new();
        for _ in 0..1_000_000 {
            frame.extend_from_slice(&[5, 1]);
        }
        frame.push(0);
        let before = refused_frames();
        let e = decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
        assert!(e.to_string().contains("max_depth"), "{e}");
        assert!(refused_frames() > before);

        let ok = nested_list(100);
        assert_eq!(
            decode::<Value>(&encode(&ok).unwrap(), DecodeLimits::default()).unwrap(),
            ok
        );
    }

    /// The deepest value the limit lets through decodes on a small stack
    /// (tokio's worker threads have 2 MiB).
    #[test]
    fn deepest_accepted_value_fits_a_small_stack() {
        let limits = DecodeLimits::default();
        // Two levels per value level, minus one for the innermost Null.
        let deepest = nested_list(limits.max_depth as usize / 2 - 1);
        let frame = encode(&deepest).unwrap();
        let decoded = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || decode::<Value>(&frame, limits).map(|v| v == deepest))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(decoded.unwrap());
    }

    /// A frame of tiny values that would decode to many times its size is
    /// refused; ordinary items pass.
    #[test]
    fn decoded_size_is_bounded_by_the_frame() {
        let limits = DecodeLimits {
            slack_bytes: 0,
            ..DecodeLimits::default()
        };
        // 100 000 empty items: 4 bytes each on the wire, 96 in memory.
        let empty = Item {
            url: String::new(),
            kind: String::new(),
            id: None,
            payload: BTreeMap::new(),
        };
        let frame = encode(&vec![empty; 100_000]).unwrap();
        let e = decode::<Vec<Item>>(&frame, limits).unwrap_err();
        assert!(e.to_string().contains("bytes_per_frame_byte"), "{e}");

        let ordinary: Vec<Item> = (0..1000)
            .map(|i| Item {
                url: format!("http://127.0.0.1:8080/profile/{i}"),
                kind: "profile".into(),
                id: Some(i.to_string()),
                payload: [
                    ("name".to_string(), Value::from("安静的雪")),
                    ("age".to_string(), Value::Int(31)),
                    ("city".to_string(), Value::from("beijing")),
                ]
                .into(),
            })
            .collect();
        let frame = encode(&ordinary).unwrap();
        assert_eq!(decode::<Vec<Item>>(&frame, limits).unwrap(), ordinary);
    }

    /// A length header claiming more elements than the frame has bytes is
    /// refused at once, without reserving memory for them.
    #[test]
    fn huge_length_claims_are_refused() {
        // Value::List with a varint length of u64::MAX (tag 253, 8 bytes).
        let mut frame = vec![5, 253];
        frame.extend_from_slice(&u64::MAX.to_le_bytes());
        let e = decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
        assert!(e.to_string().contains("claims"), "{e}");
        // A string claiming 1 GiB in a short frame.
        let mut frame = vec![4, 252];
        frame.extend_from_slice(&(1u32 << 30).to_le_bytes());
        decode::<Value>(&frame, DecodeLimits::default()).unwrap_err();
    }
}
