//! Decodes arbitrary bytes as the engine-internal envelopes (`ToEnvoyConn`, `ToGateway`,
//! `ToOutbound`, `ActorCommandKeyData`) of either version, chosen by the first byte: never
//! panics, and whatever decodes re-encodes to the identical bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_envoy_protocol::{
    decode, encode, Command, Message, ProtocolVersion, ToEnvoyConn, ToGateway, ToOutbound,
};

fn check<M: Message>(v: ProtocolVersion, data: &[u8]) {
    if let Ok(msg) = decode::<M>(v, data) {
        assert_eq!(
            encode(v, &msg).expect("re-encodes"),
            data,
            "re-encoding differs"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let v = if selector & 1 == 0 {
        ProtocolVersion::V8
    } else {
        ProtocolVersion::V6
    };
    match (selector >> 1) % 4 {
        0 => check::<ToEnvoyConn>(v, body),
        1 => check::<ToGateway>(v, body),
        2 => check::<ToOutbound>(v, body),
        _ => check::<Command>(v, body),
    }
});
