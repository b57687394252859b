//! Client protocol version 4: the messages the npm client `rivetkit/client` (2.3.19) and an
//! actor exchange, in the three client encodings (json, cbor, bare), byte-exact with the npm
//! package's codec.
//!
//! - [`Value`] is the payload model (a CBOR data model matching cbor-x), with [`to_value`] /
//!   [`from_value`] for typed Rust code.
//! - The message types ([`ToServer`], [`ToClient`], the `Http*` bodies) implement [`Message`]:
//!   `msg.encode(Encoding::Bare)` and `ToServer::decode(&bytes, Encoding::Json)`.
//! - Decoders are total: any input yields a value or an [`Error`], with bounded nesting
//!   ([`cbor::MAX_DEPTH`]) and allocations bounded by the input length.
//!
//! Contract: `spec/client-protocol.md`; where it and the npm package disagree, the package wins.

#![warn(missing_docs)]

pub mod bare;
pub mod base64;
pub mod cbor;
mod codec;
pub mod compat;
mod error;
pub mod json;
mod messages;
mod serde_value;
mod value;
mod wire;

pub use codec::{decode_payload, encode_payload, Encoding, Message, CURRENT_VERSION};
pub use error::Error;
pub use messages::*;
pub use serde_value::{from_value, to_value};
pub use value::*;
