//! Query strings and JSON bodies, rejected with the reference's `api.bad_request` reasons.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use rivet_orchestrator::runner_config::unknown_field;

/// A parsed query string: each accepted name with its values in order.
#[derive(Debug, Default)]
pub struct Query {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Query {
    /// Parses `raw` accepting only `fields`; names in `repeatable` may appear several times.
    /// With `strict` false, unknown names are ignored instead of rejected.
    pub fn parse(
        raw: Option<&str>,
        fields: &[&'static str],
        repeatable: &[&str],
        strict: bool,
    ) -> Result<Query, ApiError> {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name);
            let value = decode(value);
            let Some(field) = fields.iter().find(|f| **f == name) else {
                if strict {
                    return Err(ApiError::bad_request(unknown_field(&name, fields)));
                }
                continue;
            };
            let entry = values.entry(field).or_default();
            if !entry.is_empty() && !repeatable.contains(field) {
                return Err(ApiError::bad_request(format!("duplicate field `{field}`")));
            }
            entry.push(value);
        }
        Ok(Query { values })
    }

    /// The single value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The single value of a required `name`.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.one(name)
            .ok_or_else(|| ApiError::bad_request(format!("missing field `{name}`")))
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every value of a repeatable `name` plus the comma-separated items of `list_name`.
    pub fn list(&self, name: &str, list_name: &str) -> Vec<String> {
        let mut out = self.all(name).to_vec();
        for list in self.all(list_name) {
            out.extend(
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        out
    }

    /// An optional unsigned integer.
    pub fn number(&self, name: &str) -> Result<Option<usize>, ApiError> {
        self.one(name)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            })
            .transpose()
    }
}

/// Percent-decodes a query component (`+` is a space); invalid escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a JSON body: requires `Content-Type: application/json`, then the JSON syntax, then
/// the shape (reasons without serde_json's position suffix, as the reference words them).
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::bad_request(
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("Failed to parse the request body as JSON: {e}"))
    })?;
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_any_query_never_panics(raw in "\\PC{0,60}") {
            let _ = Query::parse(Some(&raw), &["namespace", "limit"], &["namespace"], true)
                .map(|q| q.number("limit"));
            let _ = decode(&raw);
        }

        #[test]
        fn encoded_values_decode_back(value in "\\PC{0,30}") {
            let encoded: String = value
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            prop_assert_eq!(decode(&encoded), value);
        }
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("a%2Cb+c"), "a,b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn rejects_unknown_and_duplicate_fields() {
        let err = Query::parse(Some("foo=1"), &["namespace"], &[], true).unwrap_err();
        assert_eq!(
            err.metadata.unwrap()["reason"],
            "unknown field `foo`, expected `namespace`"
        );
        let err =
            Query::parse(Some("namespace=a&namespace=b"), &["namespace"], &[], true).unwrap_err();
        assert_eq!(
            err.metadata.unwrap()["reason"],
            "duplicate field `namespace`"
        );
        let q = Query::parse(Some("id=a&ids=b,c&id=d"), &["id", "ids"], &["id"], true).unwrap();
        assert_eq!(q.list("id", "ids"), ["a", "d", "b", "c"]);
    }
}
