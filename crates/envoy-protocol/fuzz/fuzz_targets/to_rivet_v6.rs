//! Decodes arbitrary bytes as a V6 `ToRivet`: never panics, and whatever decodes re-encodes to the
//! identical bytes (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_envoy_protocol::{decode, encode, ProtocolVersion, ToRivet};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode::<ToRivet>(ProtocolVersion::V6, data) {
        let again = encode(ProtocolVersion::V6, &msg).expect("decoded value re-encodes");
        assert_eq!(again, data, "re-encoding differs");
    }
});
