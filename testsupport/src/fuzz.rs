//! Bytes for fuzzing our RPC servers and clients: a small seeded random
//! generator, and hostile frames built from valid ones (random, mutated,
//! truncated, deeply nested, lying about lengths). Std only, like the rest
//! of this crate: the caller encodes the valid frames with the real codec
//! (`rpcsupport::codec::encode`) and sends the bytes.
//!
//! Frames follow our transport: a 4-byte big-endian length, then the
//! bincode body (varint integers: a byte under 251 is itself, 251/252/253
//! announce a u16/u32/u64 that follows).

use std::time::Duration;

/// xorshift64*: tiny, seeded, the same sequence on every platform, so a
/// failing round can be replayed from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (0 is moved off the fixed point).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// Between `min` and `max - 1` random bytes.
    pub fn junk(&mut self, min: usize, max: usize) -> Vec<u8> {
        let len = min + self.below(max - min);
        self.bytes(len)
    }
}

/// The seeds of one fuzz run: a fixed one, so CI repeats itself, then
/// `extra` drawn from the clock for new ground. `CRAWLER_FUZZ_SEED` replaces
/// them all with one seed, to replay a failure. Each is printed, so a
/// failing run names the seed to replay.
pub fn seeds(test: &str, extra: usize) -> Vec<u64> {
    let seeds = match std::env::var("CRAWLER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_nanos() as u64;
            let mut clock = Rng::new(now);
            std::iter::once(0x5eed_1111)
                .chain((0..extra).map(|_| clock.next_u64()))
                .collect()
        }
    };
    eprintln!("{test}: fuzz seeds {seeds:?} (replay one with CRAWLER_FUZZ_SEED=N)");
    seeds
}

/// `body` with its 4-byte big-endian length in front: one frame.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The client's opening bytes of our handshake, version 1, with `token`.
pub fn hello(token: &[u8]) -> Vec<u8> {
    let mut out = b"CRWL".to_vec();
    out.push(1);
    out.extend_from_slice(&(token.len() as u16).to_be_bytes());
    out.extend_from_slice(token);
    out
}

/// A bincode varint announcing `n`, as a length header.
pub fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[251u8][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[252u8][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &n.to_le_bytes()].concat(),
    }
}

/// The bincode of `depth` nested one-element `Value::List`s around a
/// `Value::Null` (variant 5 is `List`, 0 is `Null`): two bytes a level.
pub fn nested_value_lists(depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(depth * 2 + 1);
    for _ in 0..depth {
        out.extend_from_slice(&[5, 1]);
    }
    out.push(0);
    out
}

/// `body` with the first occurrence of `marker` replaced by `with`; `None`
/// if `marker` is not in it. Encode a valid message holding a marker
/// string, then splice hostile bytes where the marker's bytes are.
pub fn splice(body: &[u8], marker: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let at = body.windows(marker.len()).position(|w| w == marker)?;
    Some([&body[..at], with, &body[at + marker.len()..]].concat())
}

/// One mutation of a valid `body`: bytes flipped, set to extremes, cut
/// short, duplicated or grown, or a length header lying about what
/// follows.
pub fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    if out.is_empty() {
        return rng.junk(1, 17);
    }
    let at = rng.below(out.len());
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
        }
        1 => out[at] = [0, 0xff, 250, 251, 252, 253, 254][rng.below(7)],
        2 => out.truncate(at),
        3 => {
            let end = (at + 1 + rng.below(64)).min(out.len());
            let chunk = out[at..end].to_vec();
            for _ in 0..1 + rng.below(8) {
                out.splice(at..at, chunk.iter().copied());
            }
        }
        4 => {
            let noise = rng.junk(1, 33);
            out.splice(at..at, noise);
        }
        5 => {
            // A length that claims the world.
            let claim = varint([u64::MAX, 1 << 40, u32::MAX as u64, 1 << 20][rng.below(4)]);
            out.splice(at..at, claim);
        }
        _ => {
            let n = rng.below(out.len() - at + 1);
            out.drain(at..at + n);
        }
    }
    out
}

/// What one fuzz round sends on a fresh connection.
#[derive(Debug, Clone)]
pub enum Attack {
    /// Raw bytes where the handshake belongs.
    BeforeHandshake(Vec<u8>),
    /// A valid handshake, then these raw bytes (frames or not).
    AfterHandshake(Vec<u8>),
}

/// A hostile round: one of the shapes above, built from `valid` bodies
/// (valid encoded requests) and `deep` bodies (valid requests with a
/// nesting bomb spliced in), with the handshake's `token`.
pub fn attack(rng: &mut Rng, valid: &[Vec<u8>], deep: &[Vec<u8>], token: &[u8]) -> Attack {
    let pick = |rng: &mut Rng, set: &[Vec<u8>]| set[rng.below(set.len())].clone();
    match rng.below(10) {
        0 => Attack::BeforeHandshake(rng.junk(1, 513)),
        1 => Attack::BeforeHandshake(mutate(rng, &hello(token))),
        2 => {
            // A good hello, then junk that is not a frame header's promise.
            let mut bytes = hello(token);
            bytes.extend(rng.junk(0, 64));
            Attack::BeforeHandshake(bytes)
        }
        3 => {
            let len = rng.below(4096);
            Attack::AfterHandshake(frame(&rng.bytes(len)))
        }
        4 | 5 => {
            let body = pick(rng, valid);
            Attack::AfterHandshake(frame(&mutate(rng, &body)))
        }
        6 => {
            // A frame cut short: the header promises more than comes.
            let mut bytes = frame(&pick(rng, valid));
            let keep = 4 + rng.below(bytes.len() - 3);
            bytes.truncate(keep.min(bytes.len() - 1));
            Attack::AfterHandshake(bytes)
        }
        7 if !deep.is_empty() => Attack::AfterHandshake(frame(&pick(rng, deep))),
        8 => {
            // A header claiming a frame far over any limit.
            let mut bytes = [0x7f, 0xff, 0xff, 0xff].to_vec();
            bytes.extend(rng.junk(0, 64));
            Attack::AfterHandshake(bytes)
        }
        _ => {
            // A valid frame, then a bad one on the same connection.
            let mut bytes = frame(&pick(rng, valid));
            let body = pick(rng, valid);
            bytes.extend(frame(&mutate(rng, &body)));
            Attack::AfterHandshake(bytes)
        }
    }
}

/// Sends `attack` to the server at `addr` on a new connection (std,
/// blocking: run it off the async threads), then half-closes and reads
/// whatever comes back until the server closes or `linger` passes. Errors
/// are the point of the exercise and are ignored; the caller checks the
/// server through a good client instead.
pub fn send(addr: std::net::SocketAddr, attack: &Attack, token: &[u8], linger: Duration) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(linger));
    let bytes = match attack {
        Attack::BeforeHandshake(bytes) => bytes,
        Attack::AfterHandshake(bytes) => {
            let mut reply = [0u8; 1];
            if stream.write_all(&hello(token)).is_err()
                || stream.read_exact(&mut reply).is_err()
                || reply[0] != 0
            {
                return;
            }
            bytes
        }
    };
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    let until = std::time::Instant::now() + linger;
    while std::time::Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Most rounds one seed runs, and the most time it may take: together
/// they keep a fuzz test to a few seconds, whatever the machine.
pub const ROUNDS_PER_SEED: usize = 250;
/// See [`ROUNDS_PER_SEED`].
pub const TIME_PER_SEED: Duration = Duration::from_millis(1500);

/// Runs the fuzz rounds of `seeds` against the server at `addr`: each
/// round sends one [`attack`] on a new connection; every eighth, and after
/// the last, `good_call` (a well-behaved client's call, which should
/// panic if not answered) proves the server still serves. Blocking: run it
/// with `spawn_blocking`, and `good_call` through `Handle::block_on`.
/// Answers the rounds run.
pub fn hammer(
    addr: std::net::SocketAddr,
    seeds: &[u64],
    valid: &[Vec<u8>],
    deep: &[Vec<u8>],
    token: &[u8],
    mut good_call: impl FnMut(usize),
) -> usize {
    let mut rounds = 0;
    for &seed in seeds {
        let mut rng = Rng::new(seed);
        let until = std::time::Instant::now() + TIME_PER_SEED;
        for round in 0..ROUNDS_PER_SEED {
            if std::time::Instant::now() >= until {
                break;
            }
            let attack = attack(&mut rng, valid, deep, token);
            send(addr, &attack, token, Duration::from_millis(200));
            if round % 8 == 7 {
                good_call(rounds);
            }
            rounds += 1;
        }
        good_call(rounds);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator repeats from a seed, and mutation never panics, even
    /// on tiny inputs.
    #[test]
    fn seeded_and_total() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.bytes(32), b.bytes(32));
        for body in [&b""[..], b"x", b"hello world"] {
            for _ in 0..1000 {
                mutate(&mut a, body);
            }
        }
        for _ in 0..1000 {
            attack(&mut a, &[b"ab".to_vec()], &[], b"");
        }
        assert_eq!(varint(300), vec![251, 44, 1]);
        assert_eq!(splice(b"aXYb", b"XY", b"123").unwrap(), b"a123b");
    }
}
