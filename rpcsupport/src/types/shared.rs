//! [`Shared`]: a call's argument the caller keeps a handle on.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value sent in a call while the caller keeps it: tarpc's clients take
/// their arguments by value, and a caller that needs the value after the
/// call (a batch of items to put back if the save fails, a request to send
/// again) would otherwise copy it whole for every call. This is one
/// reference-counted copy, on the wire exactly as `T` itself, so it
/// changes no frame; the receiving end holds the only reference and takes
/// the value out without a copy ([`Shared::into_inner`]).
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    /// Shares `value`.
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }

    /// Another handle on the same value (no copy of it).
    pub fn share(&self) -> Shared<T> {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: Clone> Shared<T> {
    /// The value: moved out when this is its only handle (as on the end
    /// that decoded it), copied otherwise.
    pub fn into_inner(self) -> T {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| T::clone(&shared))
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Shared<T> {
        Shared::new(value)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        T::serialize(&self.0, serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shared<T>, D::Error> {
        T::deserialize(deserializer).map(Shared::new)
    }
}
