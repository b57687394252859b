//! Client protocol (version 4) wire types and json/cbor/bare codecs.
