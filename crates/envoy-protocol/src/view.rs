//! Serde helpers for the JSON view of messages.
//!
//! Every message type implements `serde::Serialize` in the shape the npm codec's decoded objects
//! take when made JSON-safe: camelCase fields, unions as `{"tag": <npm name>, "val": …}`, 64-bit
//! integers as decimal strings (npm uses `bigint`), byte strings as lower-case hex. The
//! compatibility tests compare this view with the npm codec's output, and it reads well in logs.

use serde::Serializer;

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Bytes as hex.
pub fn hex<T: AsRef<[u8]>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(v.as_ref()))
}

/// Optional bytes as hex or null.
pub fn opt_hex<T: AsRef<[u8]>, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&to_hex(v.as_ref())),
        None => s.serialize_none(),
    }
}

/// A list of byte strings as a list of hex strings.
pub fn vec_hex<T: AsRef<[u8]>, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| to_hex(b.as_ref())))
}

/// A 64-bit integer as a decimal string.
pub fn int<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// An optional 64-bit integer as a decimal string or null.
pub fn opt_int<T: std::fmt::Display, S: Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}
