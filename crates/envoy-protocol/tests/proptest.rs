//! Round trips for every message type and version (encode → decode → equal), plus totality of
//! the decoders on arbitrary and mutated input.

mod common;

use common::strategies::{any_msg, to_envoy, to_rivet};
use common::AnyMsg;
use proptest::prelude::*;
use rivet_envoy_protocol::{decode, encode, Error, ProtocolVersion, ToEnvoy, ToRivet};

const V8: ProtocolVersion = ProtocolVersion::V8;
const V6: ProtocolVersion = ProtocolVersion::V6;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// v8 carries every field of the version-independent types, so the round trip is exact.
    #[test]
    fn v8_round_trip_is_exact(msg in any_msg()) {
        let bytes = msg.encode(V8).unwrap();
        let back = AnyMsg::decode(msg.kind(), V8, &bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.encode(V8).unwrap(), bytes);
    }

    /// v6: encodes whenever representable; decoding gives the value minus what v6 lacks, and the
    /// bytes are stable.
    #[test]
    fn v6_round_trip_where_representable(msg in any_msg()) {
        match msg.encode(V6) {
            Ok(bytes) => {
                let back = AnyMsg::decode(msg.kind(), V6, &bytes).unwrap();
                prop_assert_eq!(back.view(V6), msg.view(V6));
                prop_assert_eq!(back.encode(V6).unwrap(), bytes.clone());
                // What v6 decodes is exactly representable in v8 as well.
                let v8 = back.encode(V8).unwrap();
                prop_assert_eq!(AnyMsg::decode(msg.kind(), V8, &v8).unwrap(), back);
            }
            Err(Error::NotRepresentable { version, .. }) => prop_assert_eq!(version, 6),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn decoders_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for v in [V8, V6] {
            for kind in ["ToRivet", "ToEnvoy", "ToEnvoyConn", "ToGateway", "ToOutbound", "ActorCommandKeyData", "ServerlessStart"] {
                if let Ok(m) = AnyMsg::decode(kind, v, &bytes) {
                    // Whatever decodes re-encodes to the same bytes (the encoding is canonical).
                    if kind != "ServerlessStart" {
                        prop_assert_eq!(m.encode(v).unwrap(), bytes.clone());
                    }
                }
            }
        }
    }

    /// Valid messages with one byte flipped, truncated or extended still never panic, and a
    /// truncated or extended message is always rejected.
    #[test]
    fn mutated_messages_never_panic(msg in to_rivet(), env in to_envoy(), pos in any::<usize>(), byte in any::<u8>()) {
        for v in [V8, V6] {
            if let Ok(bytes) = encode(v, &msg) {
                let mut flipped = bytes.clone();
                let i = pos % flipped.len();
                flipped[i] ^= byte;
                let _ = decode::<ToRivet>(v, &flipped);
                prop_assert!(decode::<ToRivet>(v, &bytes[..i]).is_err());
                let mut longer = bytes.clone();
                longer.push(byte);
                let trailing = matches!(decode::<ToRivet>(v, &longer), Err(Error::TrailingBytes { .. }));
                prop_assert!(trailing);
            }
            if let Ok(bytes) = encode(v, &env) {
                let mut flipped = bytes.clone();
                let i = pos % flipped.len();
                flipped[i] ^= byte;
                let _ = decode::<ToEnvoy>(v, &flipped);
                prop_assert!(decode::<ToEnvoy>(v, &bytes[..i]).is_err());
            }
        }
    }
}
