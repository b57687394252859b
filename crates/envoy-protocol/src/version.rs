//! Supported protocol versions.

use crate::error::Error;

/// A protocol version this crate can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// Version 6 (`@rivetkit/engine-envoy-protocol@2.3.11`, rivetkit 2.3.10/2.3.11).
    V6,
    /// Version 8 (`@rivetkit/engine-envoy-protocol@2.3.19`, rivetkit 2.3.19), the newest.
    V8,
}

impl ProtocolVersion {
    /// The newest version, advertised in `GET /metadata`.
    pub const LATEST: Self = Self::V8;

    /// The version number as it appears on the wire and in the connect URL.
    pub fn number(self) -> u16 {
        match self {
            Self::V6 => 6,
            Self::V8 => 8,
        }
    }
}

impl TryFrom<u16> for ProtocolVersion {
    type Error = Error;

    fn try_from(v: u16) -> Result<Self, Error> {
        match v {
            6 => Ok(Self::V6),
            8 => Ok(Self::V8),
            other => Err(Error::UnsupportedVersion(other)),
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}
