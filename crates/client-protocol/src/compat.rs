//! The JSON-compat transform of npm rivetkit (`encodeJsonCompatValue` /
//! `reviveJsonCompatValue`): JavaScript values JSON cannot express travel as 2-element tagged
//! arrays (`["$BigInt","5"]`, `["$Uint8Array","AQID"]`, `["$ArrayBuffer",…]`,
//! `["$Undefined",0]`, `["$Set",[…]]`), and a genuine 2-element array whose first element is a
//! string starting with `$` gets one more `$`.

use crate::base64;
use crate::error::Error;
use crate::value::{Value, TAG_MAP, TAG_SET, TAG_UINT8_ARRAY};

const BIGINT: &str = "$BigInt";
const ARRAY_BUFFER: &str = "$ArrayBuffer";
const UINT8_ARRAY: &str = "$Uint8Array";
const UNDEFINED: &str = "$Undefined";
const SET: &str = "$Set";

/// Applies the transform (`encodeJsonCompatValue`): the result holds tagged arrays instead of
/// bigints, byte strings, `undefined` and sets. Other tags (typed arrays, dates) pass through
/// unchanged, as in npm.
pub fn encode(value: &Value) -> Value {
    match value {
        Value::Undefined => tagged(UNDEFINED, Value::Int(0)),
        Value::BigInt(i) => tagged(BIGINT, Value::Text(i.to_string())),
        Value::Bytes(b) => tagged(ARRAY_BUFFER, Value::Text(base64::encode(b))),
        Value::Tag(TAG_UINT8_ARRAY, inner) if matches!(**inner, Value::Bytes(_)) => {
            match &**inner {
                Value::Bytes(b) => tagged(UINT8_ARRAY, Value::Text(base64::encode(b))),
                _ => value.clone(),
            }
        }
        Value::Tag(TAG_SET, inner) if matches!(**inner, Value::Array(_)) => match &**inner {
            Value::Array(items) => tagged(SET, Value::Array(items.iter().map(encode).collect())),
            _ => value.clone(),
        },
        Value::Tag(TAG_MAP, inner) => match &**inner {
            Value::Map(entries) => Value::Tag(
                TAG_MAP,
                Box::new(Value::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (encode(k), encode(v)))
                        .collect(),
                )),
            ),
            _ => value.clone(),
        },
        Value::Array(items) => escape_pair(items.iter().map(encode).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), encode(v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// Only the `$` escape, with the recursion of [`revive`]: what a value must look like to come
/// out unchanged of the npm decoder's revive step when it is sent without the full transform
/// (the cbor encoding).
pub fn escape(value: &Value) -> Value {
    match value {
        Value::Array(items) => escape_pair(items.iter().map(escape).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), escape(v)))
                .collect(),
        ),
        Value::Tag(TAG_MAP, inner) => match &**inner {
            Value::Map(entries) => Value::Tag(
                TAG_MAP,
                Box::new(Value::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (escape(k), escape(v)))
                        .collect(),
                )),
            ),
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Undoes the transform (`reviveJsonCompatValue`). Recurses into arrays, plain objects and
/// `Map`s like npm does; a 2-element array whose first element starts with a single `$` but is
/// not one of the five tags is an error, as in npm.
pub fn revive(value: Value) -> Result<Value, Error> {
    match value {
        Value::Array(items) => revive_array(items),
        Value::Map(entries) => Ok(Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, revive(v)?)))
                .collect::<Result<_, Error>>()?,
        )),
        Value::Tag(TAG_MAP, inner) => match *inner {
            Value::Map(entries) => Ok(Value::Tag(
                TAG_MAP,
                Box::new(Value::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| Ok((revive(k)?, revive(v)?)))
                        .collect::<Result<_, Error>>()?,
                )),
            )),
            other => Ok(Value::Tag(TAG_MAP, Box::new(other))),
        },
        other => Ok(other),
    }
}

fn tagged(tag: &str, payload: Value) -> Value {
    Value::Array(vec![Value::Text(tag.to_owned()), payload])
}

fn escape_pair(mut items: Vec<Value>) -> Value {
    if items.len() == 2 {
        if let Value::Text(first) = &mut items[0] {
            if first.starts_with('$') {
                first.insert(0, '$');
            }
        }
    }
    Value::Array(items)
}

fn revive_array(mut items: Vec<Value>) -> Result<Value, Error> {
    let is_tagged = items.len() == 2 && matches!(&items[0], Value::Text(s) if s.starts_with('$'));
    if !is_tagged {
        return Ok(Value::Array(
            items.into_iter().map(revive).collect::<Result<_, _>>()?,
        ));
    }
    let payload = items.pop().unwrap_or(Value::Null);
    let tag = match items.pop() {
        Some(Value::Text(tag)) => tag,
        _ => return Err(Error::InvalidCompat("malformed tagged array".into())),
    };
    match tag.as_str() {
        BIGINT => revive_bigint(&payload).map(Value::BigInt),
        ARRAY_BUFFER => Ok(Value::Bytes(revive_base64(&payload)?)),
        UINT8_ARRAY => Ok(Value::uint8_array(revive_base64(&payload)?)),
        UNDEFINED => Ok(Value::Undefined),
        SET => match payload {
            Value::Array(members) => Ok(Value::set(
                members.into_iter().map(revive).collect::<Result<_, _>>()?,
            )),
            _ => Err(Error::InvalidCompat("$Set payload is not an array".into())),
        },
        _ if tag.starts_with("$$") => Ok(Value::Array(vec![
            Value::Text(tag[1..].to_owned()),
            revive(payload)?,
        ])),
        _ => Err(Error::InvalidCompat(format!(
            "unknown JSON encoding type {tag:?}"
        ))),
    }
}

fn revive_bigint(payload: &Value) -> Result<i128, Error> {
    match payload {
        Value::Text(s) => parse_bigint(s),
        Value::Int(i) => Ok(i128::from(*i)),
        Value::BigInt(i) => Ok(*i),
        _ => Err(Error::InvalidCompat(
            "$BigInt payload is not a string".into(),
        )),
    }
}

/// Parses what `BigInt(string)` accepts for decimal input (surrounding whitespace, an optional
/// sign, an empty string meaning 0).
fn parse_bigint(s: &str) -> Result<i128, Error> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(0);
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidCompat(format!("invalid $BigInt {s:?}")));
    }
    // `i128::from_str` takes the sign itself, which keeps i128::MIN parseable.
    t.parse::<i128>()
        .map_err(|_| Error::InvalidCompat(format!("$BigInt {s:?} out of range")))
}

fn revive_base64(payload: &Value) -> Result<Vec<u8>, Error> {
    match payload {
        Value::Text(s) => base64::decode(s)
            .ok_or_else(|| Error::InvalidCompat("invalid base64 in a byte array".into())),
        _ => Err(Error::InvalidCompat(
            "byte array payload is not a string".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_round_trips() {
        let v = Value::object([
            ("b", Value::BigInt(5)),
            ("u", Value::uint8_array(vec![1, 2, 3])),
            ("arr", Value::Array(vec![Value::text("$x"), Value::Int(1)])),
        ]);
        let t = encode(&v);
        assert_eq!(
            t,
            Value::object([
                (
                    "b",
                    Value::Array(vec![Value::text("$BigInt"), Value::text("5")])
                ),
                (
                    "u",
                    Value::Array(vec![Value::text("$Uint8Array"), Value::text("AQID")])
                ),
                ("arr", Value::Array(vec![Value::text("$$x"), Value::Int(1)])),
            ])
        );
        assert_eq!(revive(t).unwrap(), v);
    }

    #[test]
    fn unknown_tags_are_errors() {
        let v = Value::Array(vec![Value::text("$nope"), Value::Int(1)]);
        assert!(matches!(revive(v), Err(Error::InvalidCompat(_))));
    }
}
