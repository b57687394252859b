//! Decodes arbitrary bytes as a serverless start body (2-byte little-endian version + `ToEnvoy`):
//! never panics, and whatever decodes re-encodes to the identical bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_envoy_protocol::{decode_serverless_start, encode_versioned};

fuzz_target!(|data: &[u8]| {
    if let Ok((version, msg)) = decode_serverless_start(data) {
        assert_eq!(encode_versioned(version, &msg).expect("re-encodes"), data);
    }
});
