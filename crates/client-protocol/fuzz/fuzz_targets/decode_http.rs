//! Fuzzes the HTTP body decoders in all three encodings; the first byte picks the encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivet_client_protocol::*;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let enc = Encoding::ALL[usize::from(*first) % 3];
    common::check::<HttpActionRequest>(body, enc);
    common::check::<HttpActionResponse>(body, enc);
    common::check::<HttpQueueSendRequest>(body, enc);
    common::check::<HttpQueueSendResponse>(body, enc);
    common::check::<HttpResponseError>(body, enc);
    common::check::<HttpResolveResponse>(body, enc);
});
