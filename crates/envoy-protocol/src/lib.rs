//! Actor-host ("envoy") protocol: wire types and BARE codec, versions 8 and 6.
//!
//! The byte-level authority is the npm codec (`@rivetkit/engine-envoy-protocol@2.3.19` for v8,
//! `@2.3.11` for v6); `tests/compat.rs` checks every message and union arm against it.
//!
//! The engine and the SDK work with one version-independent set of types (the v8 schema, a
//! superset of v6). The codec maps them to the socket's version at the edge:
//!
//! ```
//! use rivet_envoy_protocol::{decode, encode, ProtocolVersion, ToRivet, ToRivetPong};
//!
//! let v = ProtocolVersion::try_from(6u16)?;
//! let bytes = encode(v, &ToRivet::Pong(ToRivetPong { ts: 1 }))?;
//! let back: ToRivet = decode(v, &bytes)?;
//! assert_eq!(back, ToRivet::Pong(ToRivetPong { ts: 1 }));
//! # Ok::<(), rivet_envoy_protocol::Error>(())
//! ```
//!
//! Messages that do not exist in a version (e.g. staged SQLite commits in v6) fail to encode with
//! [`Error::NotRepresentable`]; fields v6 lacks are dropped on encode and take their defaults on
//! decode (`envoy-protocol.md` §6.3).

#![warn(missing_docs)]

pub mod bare;
mod error;
pub mod types;
mod version;
pub mod view;
mod wire;

pub use error::{Error, Result};
pub use types::common::*;
pub use types::envelope::*;
pub use types::kv::*;
pub use types::lifecycle::*;
pub use types::sqlite::*;
pub use types::top::*;
pub use types::tunnel::*;
pub use version::ProtocolVersion;

use bare::{Reader, Writer};
use wire::WireV;

mod sealed {
    pub trait Sealed {}
}

/// A top-level message: one that is encoded on its own (a socket frame, a bus payload, a
/// stored value).
pub trait Message: Sized + sealed::Sealed {
    /// Appends the encoding of `self` in `version` to `out`. On error `out` is left unchanged.
    fn encode_into(&self, version: ProtocolVersion, out: &mut Vec<u8>) -> Result<()>;

    /// Decodes exactly one value from `bytes`; trailing bytes are an error (as in npm).
    fn decode_from(version: ProtocolVersion, bytes: &[u8]) -> Result<Self>;
}

macro_rules! message {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl Message for $ty {
            fn encode_into(&self, version: ProtocolVersion, out: &mut Vec<u8>) -> Result<()> {
                let start = out.len();
                let mut w = Writer::from_vec(std::mem::take(out));
                let res = self.encode_v(version, &mut w);
                *out = w.into_vec();
                if res.is_err() {
                    out.truncate(start);
                }
                res
            }
            fn decode_from(version: ProtocolVersion, bytes: &[u8]) -> Result<Self> {
                let mut r = Reader::new(bytes);
                let value = <$ty as WireV>::decode_v(version, &mut r)?;
                r.finish()?;
                Ok(value)
            }
        }
    )*};
}

message!(
    ToRivet,
    ToEnvoy,
    ToEnvoyConn,
    ToGateway,
    ToOutbound,
    Command
);

/// Encodes `msg` in `version`.
pub fn encode<M: Message>(version: ProtocolVersion, msg: &M) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    msg.encode_into(version, &mut out)?;
    Ok(out)
}

/// Decodes one `M` of `version` from `bytes`.
pub fn decode<M: Message>(version: ProtocolVersion, bytes: &[u8]) -> Result<M> {
    M::decode_from(version, bytes)
}

/// Encodes `msg` behind a 2-byte little-endian version prefix, the framing of the serverless
/// start body (`ToEnvoy`, engine-api.md §11.2) and of the reference engine's stored and
/// published envelopes.
pub fn encode_versioned<M: Message>(version: ProtocolVersion, msg: &M) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&version.number().to_le_bytes());
    msg.encode_into(version, &mut out)?;
    Ok(out)
}

/// Decodes a value framed by [`encode_versioned`], returning the version it was encoded in.
pub fn decode_versioned<M: Message>(bytes: &[u8]) -> Result<(ProtocolVersion, M)> {
    let mut r = Reader::new(bytes);
    let version = ProtocolVersion::try_from(r.u16()?)?;
    let body = r.bytes(r.remaining())?;
    Ok((version, M::decode_from(version, body)?))
}

/// Body of the serverless `POST {url}/start` request: the pool's version, then
/// `ToEnvoy::Commands` with the actor's start command (engine-api.md §11.2).
pub fn encode_serverless_start(
    version: ProtocolVersion,
    commands: Vec<CommandWrapper>,
) -> Result<Vec<u8>> {
    encode_versioned(version, &ToEnvoy::Commands(commands))
}

/// Decodes a serverless start body (any `ToEnvoy`, as the npm runtime does).
pub fn decode_serverless_start(bytes: &[u8]) -> Result<(ProtocolVersion, ToEnvoy)> {
    decode_versioned(bytes)
}
