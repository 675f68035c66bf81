//! The wrappers that bound a decode: [`Bounded`] around bincode's
//! deserializer, [`Wrap`] around each visitor, [`Access`] around each
//! sequence, map and enum, all charging one frame's [`State`].

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;

use super::PREALLOC_ELEMENTS;

/// What one frame's decoding has left. Shared by reference between the
/// wrappers of every level, hence the cells; decoding is single-threaded.
pub(super) struct State {
    pub(super) depth: Cell<u32>,
    pub(super) max_depth: u32,
    pub(super) left: Cell<usize>,
    pub(super) frame_len: usize,
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
pub(super) struct Seed<'s, T> {
    pub(super) ghost: PhantomData<T>,
    pub(super) state: &'s State,
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
