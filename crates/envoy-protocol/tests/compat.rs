//! Byte-level compatibility with the npm codecs (`@rivetkit/engine-envoy-protocol` 2.3.19 = v8,
//! 2.3.11 = v6), both directions, with union-arm coverage asserted.
//!
//! Needs Node.js and the packages in `tests/compat/node_modules` (`npm ci --ignore-scripts`).

mod common;

use std::collections::BTreeSet;

use common::{
    collect_arms, expected_arms, from_hex, run_node, strategies::any_msg, to_hex, AnyMsg,
};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rivet_envoy_protocol::{Error, ProtocolVersion};
use serde_json::{json, Value};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V8, ProtocolVersion::V6];

fn assert_coverage(covered: &BTreeSet<String>, what: &str) {
    let mut missing = Vec::new();
    let mut required = 0;
    for v in VERSIONS {
        let expected = expected_arms(v.number());
        required += expected.len();
        missing.extend(expected.difference(covered).cloned());
    }
    assert!(
        missing.is_empty(),
        "{what}: union arms not covered:\n  {}",
        missing.join("\n  ")
    );
    println!(
        "{what}: all {required} required union arms / enum values covered ({} distinct seen):",
        covered.len()
    );
    for arm in covered {
        println!("  {arm}");
    }
}

/// npm encodes every arm of both versions; we decode, compare the decoded value with npm's own
/// decoding, and re-encode to the identical bytes.
#[test]
fn npm_vectors_decode_and_reencode_byte_identically() {
    let vectors = run_node("vectors.mjs", "");
    let vectors = vectors.as_array().expect("vector list");
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for vector in vectors {
        let name = vector["name"].as_str().expect("name");
        let kind = vector["kind"].as_str().expect("kind");
        let version = vector["version"].as_u64().expect("version") as u16;
        let v = ProtocolVersion::try_from(version).expect("version");
        let bytes = from_hex(vector["hex"].as_str().expect("hex"));
        let npm_view = &vector["value"];
        collect_arms(npm_view, kind, version, &mut covered);
        let msg = match AnyMsg::decode(kind, v, &bytes) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("v{version} {name}: decode failed: {e}"));
                continue;
            }
        };
        let ours = msg.view(v);
        if &ours != npm_view {
            failures.push(format!(
                "v{version} {name}: decoded value differs\n  npm:  {npm_view}\n  rust: {ours}"
            ));
        }
        match msg.encode(v) {
            Ok(b) if b == bytes => {}
            Ok(b) => failures.push(format!(
                "v{version} {name}: re-encoding differs\n  npm:  {}\n  rust: {}",
                to_hex(&bytes),
                to_hex(&b)
            )),
            Err(e) => failures.push(format!("v{version} {name}: re-encode failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} npm vectors decoded and re-encoded identically",
        vectors.len()
    );
    assert_coverage(&covered, "npm -> rust");
}

/// We encode (the vector values plus random values of every kind); npm decodes them to the value
/// we meant and re-encodes them to the same bytes.
#[test]
fn rust_encodings_are_decoded_by_npm_to_the_same_values() {
    let mut msgs: Vec<(ProtocolVersion, AnyMsg)> = Vec::new();
    let vectors = run_node("vectors.mjs", "");
    for vector in vectors.as_array().expect("vector list") {
        let version = vector["version"].as_u64().expect("version") as u16;
        let v = ProtocolVersion::try_from(version).expect("version");
        let kind = vector["kind"].as_str().expect("kind");
        let bytes = from_hex(vector["hex"].as_str().expect("hex"));
        msgs.push((v, AnyMsg::decode(kind, v, &bytes).expect("decode vector")));
    }
    let from_vectors = msgs.len();
    let mut runner = TestRunner::deterministic();
    let strategy = any_msg();
    let mut skipped_v6 = 0;
    for v in VERSIONS {
        for _ in 0..600 {
            let msg = strategy.new_tree(&mut runner).expect("value").current();
            match msg.encode(v) {
                Ok(_) => msgs.push((v, msg)),
                Err(Error::NotRepresentable { .. }) if v == ProtocolVersion::V6 => skipped_v6 += 1,
                Err(e) => panic!("encode {msg:?} in v{v}: {e}"),
            }
        }
    }

    let input: Vec<Value> = msgs
        .iter()
        .map(|(v, m)| {
            json!({"kind": m.kind(), "version": v.number(), "hex": to_hex(&m.encode(*v).expect("encode"))})
        })
        .collect();
    let results = run_node("decode.mjs", &Value::Array(input.clone()).to_string());
    let results = results.as_array().expect("result list");
    assert_eq!(results.len(), msgs.len());

    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for (((v, msg), sent), got) in msgs.iter().zip(&input).zip(results) {
        let hex = sent["hex"].as_str().expect("hex");
        if let Some(err) = got.get("error") {
            failures.push(format!("v{v} {msg:?}: npm failed to decode {hex}: {err}"));
            continue;
        }
        let ours = msg.view(*v);
        if got["value"] != ours {
            failures.push(format!(
                "v{v} {}: npm decoded a different value\n  npm:  {}\n  rust: {ours}",
                msg.kind(),
                got["value"]
            ));
        }
        if got["reencoded"].as_str() != Some(hex) {
            failures.push(format!(
                "v{v} {}: npm re-encoding differs\n  rust: {hex}\n  npm:  {}",
                msg.kind(),
                got["reencoded"]
            ));
        }
        collect_arms(&got["value"], msg.kind(), v.number(), &mut covered);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} rust encodings decoded by npm ({from_vectors} from vectors, {} random; {skipped_v6} random values not representable in v6)",
        msgs.len(),
        msgs.len() - from_vectors
    );
    assert_coverage(&covered, "rust -> npm");
}

/// The spec's §7 reference encodings (v8).
#[test]
fn spec_reference_vectors() {
    let id = "1e316f756679656b767665326131366c6c75683130666938693132636c3030";
    let cases = [
        ("ToEnvoy", "00 983a000000000000 40771b0000000000 0000400100000000"),
        ("ToEnvoy", "05 c4db4402a2010000"),
        ("ToRivet", "04 c4db4402a2010000"),
        ("ToRivet", "00 01 01 07 636f756e746572 1d 7b2269636f6e223a2278222c226e616d65223a22436f756e746572227d 01 11 7b2268656c6c6f223a22776f726c64227d"),
        ("ToEnvoy", "01 01 <id> 01000000 0100000000000000 00 07 636f756e746572 01 02 6b33 bbbd4102a2010000 01 05 68656c6c6f 00 00"),
        ("ToRivet", "01 01 <id> 01000000 0000000000000000 01 00"),
        ("ToRivet", "02 01 <id> 01000000 0100000000000000"),
        ("ToEnvoy", "01 01 <id> 01000000 0200000000000000 01 00"),
        ("ToRivet", "01 01 <id> 01000000 0100000000000000 01 01 00 00"),
        ("ToEnvoy", "03 66000000 01 02 0161 0163 02 0131 03333333 02 06322e332e3139 c2da4402a2010000 06322e332e3139 c2da4402a2010000"),
        ("ToRivet", "06 9ea9012e c5c3bdb6 0000 05 00"),
    ];
    for (kind, spaced) in cases {
        let hex = spaced.replace("<id>", id).replace(' ', "");
        let bytes = from_hex(&hex);
        let msg = AnyMsg::decode(kind, ProtocolVersion::V8, &bytes)
            .unwrap_or_else(|e| panic!("{kind} {spaced}: {e}"));
        assert_eq!(
            to_hex(&msg.encode(ProtocolVersion::V8).unwrap()),
            hex,
            "{msg:?}"
        );
    }
}
