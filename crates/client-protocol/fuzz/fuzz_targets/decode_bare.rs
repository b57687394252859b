//! Fuzzes the bare WebSocket message decoders (ToServer, ToClient).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_client_protocol::{Encoding, ToClient, ToServer};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check::<ToServer>(data, Encoding::Bare);
    common::check::<ToClient>(data, Encoding::Bare);
});
