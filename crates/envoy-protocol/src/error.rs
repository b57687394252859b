//! The one error type of this crate.

/// Everything that can go wrong while encoding or decoding an envoy protocol message.
///
/// Offsets are byte positions in the decoded buffer, so a bad frame can be logged precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The protocol version is not one this crate speaks (only 6 and 8 are).
    #[error("unsupported envoy protocol version {0} (supported: 6, 8)")]
    UnsupportedVersion(u16),
    /// The input ended before the value was complete.
    #[error("unexpected end of input at byte {offset}: {needed} more byte(s) needed")]
    UnexpectedEof {
        /// Where the missing bytes were expected.
        offset: usize,
        /// How many bytes were missing at least.
        needed: usize,
    },
    /// A union or enum tag that the type does not define.
    #[error("invalid tag {tag} for {ty} at byte {offset}")]
    InvalidTag {
        /// The BARE type being decoded.
        ty: &'static str,
        /// The tag byte found.
        tag: u8,
        /// Where the tag was found.
        offset: usize,
    },
    /// A varint with a redundant trailing zero group (BARE requires the minimal encoding).
    #[error("non-canonical varint at byte {offset}")]
    NonCanonicalVarint {
        /// Where the varint starts.
        offset: usize,
    },
    /// A varint that does not fit into 64 bits.
    #[error("varint overflows 64 bits at byte {offset}")]
    VarintOverflow {
        /// Where the varint starts.
        offset: usize,
    },
    /// A bool (or optional marker) byte other than 0 or 1.
    #[error("invalid bool byte {value:#04x} at byte {offset}")]
    InvalidBool {
        /// The byte found.
        value: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A `str` whose bytes are not valid UTF-8.
    #[error("invalid UTF-8 string at byte {offset}")]
    InvalidUtf8 {
        /// Where the string bytes start.
        offset: usize,
    },
    /// A length prefix larger than the input can hold (or than a u32 for `str`/`data`).
    #[error("length {len} at byte {offset} exceeds the {remaining} remaining byte(s)")]
    LengthTooLarge {
        /// The declared length.
        len: u64,
        /// Where the length prefix starts.
        offset: usize,
        /// How many bytes were left after the prefix.
        remaining: usize,
    },
    /// A map with the same key twice (the npm codec rejects these too).
    #[error("duplicate map key {key:?} at byte {offset}")]
    DuplicateMapKey {
        /// The repeated key.
        key: String,
        /// Where the second occurrence starts.
        offset: usize,
    },
    /// Bytes left over after a complete message.
    #[error("{remaining} trailing byte(s) after the message at byte {offset}")]
    TrailingBytes {
        /// Where the message ended.
        offset: usize,
        /// How many bytes followed it.
        remaining: usize,
    },
    /// The message (or one of its parts) does not exist in the requested protocol version.
    #[error("{what} is not representable in envoy protocol version {version}")]
    NotRepresentable {
        /// Name of the message or variant.
        what: &'static str,
        /// The version asked for.
        version: u16,
    },
    /// A `str` or `data` value longer than the u32 length BARE decoders accept.
    #[error("{what} of {len} bytes is too long to encode (max {max})", max = u32::MAX)]
    TooLong {
        /// What was being encoded.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
