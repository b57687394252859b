//! Encoding selection and the [`Message`] trait that every wire message implements.
//!
//! What each encoding does, mirroring npm rivetkit's `serializeWithEncoding` /
//! `deserializeWithEncoding`:
//!
//! | encoding | encode | decode |
//! |---|---|---|
//! | json | the message object through the JSON-compat transform, `JSON.stringify` text | `JSON.parse`, then revive tagged arrays |
//! | cbor | the message object as cbor-x writes it, payloads inline (only `$`-arrays escaped) | CBOR, then revive tagged arrays |
//! | bare | `04 00` + BARE; payload fields hold CBOR of the transformed value | versions 1–4 (3–4 for queue bodies), upgraded to 4 |

use crate::bare::{self, Reader, Writer};
use crate::error::Error;
use crate::value::Value;
use crate::{cbor, compat, json};

/// The protocol version this crate writes.
pub const CURRENT_VERSION: u16 = 4;

/// A client encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text (WebSocket text frames, `application/json`).
    Json,
    /// CBOR (binary frames, `application/octet-stream`).
    Cbor,
    /// Versioned BARE (binary frames, `application/octet-stream`); the npm client's default.
    Bare,
}

impl Encoding {
    /// All encodings.
    pub const ALL: [Encoding; 3] = [Encoding::Json, Encoding::Cbor, Encoding::Bare];

    /// The name used in `x-rivet-encoding` and `rivet_encoding.<name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
            Encoding::Bare => "bare",
        }
    }

    /// Parses an encoding name; `None` for unknown names (HTTP treats those as json).
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "json" => Some(Encoding::Json),
            "cbor" => Some(Encoding::Cbor),
            "bare" => Some(Encoding::Bare),
            _ => None,
        }
    }

    /// The HTTP `content-type` for bodies in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Cbor | Encoding::Bare => "application/octet-stream",
        }
    }

    /// Whether WebSocket frames in this encoding are binary (json uses text frames).
    pub fn is_binary(self) -> bool {
        !matches!(self, Encoding::Json)
    }
}

pub(crate) mod sealed {
    use super::*;

    /// The per-message pieces the provided methods of [`Message`] are built from.
    pub trait Codec: Sized {
        /// Message name for errors.
        const NAME: &'static str;
        /// Lowest BARE version that defines this message.
        const MIN_VERSION: u16;
        /// The message as the json/cbor object (before the compat transform).
        fn to_object(&self, encoding: Encoding) -> Value;
        /// The message from a decoded and revived json/cbor object.
        fn from_object(value: Value) -> Result<Self, Error>;
        /// Writes the version-4 BARE body.
        fn write_bare(&self, w: &mut Writer);
        /// Reads a BARE body of the given (supported) version, upgraded to version 4.
        fn read_bare(r: &mut Reader<'_>, version: u16) -> Result<Self, Error>;
    }
}

/// A message of client protocol version 4 in any of the three encodings.
pub trait Message: sealed::Codec {
    /// Encodes the message (json as UTF-8 text bytes; bare with the `04 00` prefix).
    fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Json => self.encode_json().into_bytes(),
            Encoding::Cbor => cbor::encode(&compat::escape(&self.to_object(Encoding::Cbor))),
            Encoding::Bare => {
                let mut w = Writer::with_version(CURRENT_VERSION);
                self.write_bare(&mut w);
                w.out
            }
        }
    }

    /// Encodes the message as JSON text (for WebSocket text frames).
    fn encode_json(&self) -> String {
        let mut out = String::with_capacity(64);
        json::write(&compat::encode(&self.to_object(Encoding::Json)), &mut out);
        out
    }

    /// Decodes a message. Never panics; any input yields a value or an error.
    fn decode(bytes: &[u8], encoding: Encoding) -> Result<Self, Error> {
        match encoding {
            Encoding::Json => Self::from_object(compat::revive(json::parse_bytes(bytes)?)?),
            Encoding::Cbor => Self::from_object(compat::revive(cbor::decode(bytes)?)?),
            Encoding::Bare => {
                let (version, body) = bare::split_version(bytes)?;
                if version < Self::MIN_VERSION || version > CURRENT_VERSION {
                    return Err(Error::UnsupportedVersion {
                        version,
                        message: Self::NAME,
                    });
                }
                let mut r = Reader::new(body);
                let msg = Self::read_bare(&mut r, version)?;
                r.finish()?;
                Ok(msg)
            }
        }
    }
}

/// CBOR bytes for a payload field in BARE (`encodeCborCompat`).
pub fn encode_payload(value: &Value) -> Vec<u8> {
    cbor::encode(&compat::encode(value))
}

/// A payload from the CBOR bytes of a BARE field (`decodeCborCompat`).
pub fn decode_payload(bytes: &[u8]) -> Result<Value, Error> {
    compat::revive(cbor::decode(bytes)?)
}
