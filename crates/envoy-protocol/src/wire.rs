//! The traits that tie each message type to its BARE encoding.

use crate::bare::{Reader, Writer};
use crate::error::Result;
use crate::version::ProtocolVersion;

/// A type whose encoding is the same in every supported protocol version.
pub(crate) trait Wire: Sized {
    fn encode(&self, w: &mut Writer) -> Result<()>;
    fn decode(r: &mut Reader<'_>) -> Result<Self>;
}

/// A type whose encoding depends on the protocol version.
pub(crate) trait WireV: Sized {
    fn encode_v(&self, v: ProtocolVersion, w: &mut Writer) -> Result<()>;
    fn decode_v(v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self>;
}

/// Every type with a version-independent encoding also encodes per version.
impl<T: Wire> WireV for T {
    fn encode_v(&self, _v: ProtocolVersion, w: &mut Writer) -> Result<()> {
        self.encode(w)
    }
    fn decode_v(_v: ProtocolVersion, r: &mut Reader<'_>) -> Result<Self> {
        T::decode(r)
    }
}

/// Error for an unknown union or enum tag.
pub(crate) fn bad_tag(ty: &'static str, tag: u8, r: &Reader<'_>) -> crate::Error {
    crate::Error::InvalidTag {
        ty,
        tag,
        offset: r.offset().saturating_sub(1),
    }
}
