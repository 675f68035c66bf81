//! The contract's integration tests, in one test binary (issue 12): the
//! security of serve/connect (tokens, TLS, limits) and seeded fuzzing of
//! the replies a client decodes.

mod fuzz_replies;
mod security;
