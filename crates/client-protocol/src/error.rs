//! The error type shared by every decoder in this crate.

/// Why a message, a payload or a value could not be decoded or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before the value was complete.
    #[error("unexpected end of input at byte {offset}")]
    UnexpectedEnd {
        /// Byte offset where more data was needed.
        offset: usize,
    },
    /// Bytes remained after a complete value.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The BARE version prefix is missing or names a version this codec does not know.
    #[error("unsupported protocol version {version} for {message}")]
    UnsupportedVersion {
        /// The version read from the 2-byte prefix.
        version: u16,
        /// The message type being decoded.
        message: &'static str,
    },
    /// The input is longer than the codec accepts.
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Accepted maximum.
        limit: usize,
    },
    /// Values are nested deeper than the codec accepts.
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// Accepted maximum depth.
        limit: usize,
    },
    /// A BARE union carried a tag this version does not define.
    #[error("invalid union tag {tag} for {union}")]
    InvalidTag {
        /// The tag byte read.
        tag: u8,
        /// The union being decoded.
        union: &'static str,
    },
    /// A BARE `bool` byte other than 0 or 1.
    #[error("invalid bool byte {0}")]
    InvalidBool(u8),
    /// A variable-length integer that is too long, too large or not minimally encoded.
    #[error("invalid variable-length integer at byte {offset}")]
    InvalidVarint {
        /// Byte offset of the integer.
        offset: usize,
    },
    /// A string that is not valid UTF-8.
    #[error("invalid UTF-8 in a string at byte {offset}")]
    InvalidUtf8 {
        /// Byte offset of the string.
        offset: usize,
    },
    /// Malformed CBOR.
    #[error("invalid CBOR at byte {offset}: {reason}")]
    InvalidCbor {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Malformed JSON text.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A JSON-compat tagged array (`["$…", …]`) that cannot be revived.
    #[error("invalid JSON-compat value: {0}")]
    InvalidCompat(String),
    /// A json/cbor message whose shape does not match the schema.
    #[error("invalid message: field `{field}` {problem}")]
    Schema {
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Converting between a [`crate::Value`] and a Rust type failed.
    #[error("value conversion failed: {0}")]
    Conversion(String),
}

impl Error {
    pub(crate) fn schema(field: impl Into<String>, problem: &'static str) -> Self {
        Error::Schema {
            field: field.into(),
            problem,
        }
    }
}
