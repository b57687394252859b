//! The payload value model: a CBOR data model that mirrors what the npm client's CBOR library
//! (cbor-x 1.6 under Node) produces for JavaScript values.
//!
//! A payload (action arguments, outputs, event arguments, error metadata, queue bodies) is held
//! in its *JavaScript* form: a bigint is [`Value::BigInt`], a `Uint8Array` is
//! `Tag(64, Bytes)`, a `Set` is `Tag(258, Array)`, `undefined` is [`Value::Undefined`]. The
//! codecs apply the JSON-compat transform (`["$BigInt","5"]` …) where the wire format needs it,
//! so code using this crate never sees tagged arrays.

/// CBOR tag cbor-x (under Node) puts on a `Uint8Array`.
pub const TAG_UINT8_ARRAY: u64 = 64;
/// CBOR tag cbor-x puts on a `Set`.
pub const TAG_SET: u64 = 258;
/// CBOR tag cbor-x puts on a `Map`.
pub const TAG_MAP: u64 = 259;
/// CBOR tag of a positive bignum.
pub const TAG_POS_BIGNUM: u64 = 2;
/// CBOR tag of a negative bignum.
pub const TAG_NEG_BIGNUM: u64 = 3;

/// Largest integer a JavaScript number holds exactly (2^53).
pub const MAX_SAFE_INTEGER: i64 = 1 << 53;

/// A payload value.
///
/// Equality is structural; `Float(NaN)` is never equal to itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (CBOR `f6`).
    Null,
    /// `undefined` (CBOR `f7`).
    Undefined,
    /// A boolean.
    Bool(bool),
    /// A JavaScript number that is an integer with magnitude at most 2^53. Written as the
    /// shortest CBOR integer inside [-2^32, 2^32) and as a float64 outside, as cbor-x does.
    /// Values beyond 2^53 (which JavaScript cannot hold) are written as 8-byte integers and
    /// therefore decode back as [`Value::BigInt`].
    Int(i64),
    /// A JavaScript bigint. Written as an 8-byte CBOR integer (`1b`/`3b`) inside
    /// [-2^64, 2^64) and as a tag 2/3 bignum outside.
    BigInt(i128),
    /// A JavaScript number that is not a safe integer (fraction, huge, NaN, ±Infinity).
    /// Written as float64, as cbor-x does. Use [`Value::number`] to build one from an `f64`.
    Float(f64),
    /// An untagged byte string: an `ArrayBuffer` (or Node `Buffer`) in JavaScript.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map in insertion order. Untagged maps are JavaScript plain objects (text keys);
    /// a JavaScript `Map` is `Tag(259, Map)`.
    Map(Vec<(Value, Value)>),
    /// A CBOR tag around a value (`Date` = 1, typed arrays = 64…87, `Set` = 258, `Map` = 259).
    Tag(u64, Box<Value>),
    /// A CBOR simple value other than false/true/null/undefined.
    Simple(u8),
}

impl Value {
    /// A JavaScript number: integers with magnitude ≤ 2^53 become [`Value::Int`] (so `5.0`,
    /// `-0.0` and `5` are the same value, as in JavaScript), everything else [`Value::Float`].
    pub fn number(f: f64) -> Value {
        if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
            // The range check above makes the cast exact.
            Value::Int(f as i64)
        } else {
            Value::Float(f)
        }
    }

    /// A `Uint8Array`.
    pub fn uint8_array(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Tag(TAG_UINT8_ARRAY, Box::new(Value::Bytes(bytes.into())))
    }

    /// A `Set` of the given items.
    pub fn set(items: Vec<Value>) -> Value {
        Value::Tag(TAG_SET, Box::new(Value::Array(items)))
    }

    /// A JavaScript `Map` with the given entries.
    pub fn js_map(entries: Vec<(Value, Value)>) -> Value {
        Value::Tag(TAG_MAP, Box::new(Value::Map(entries)))
    }

    /// A plain object with text keys.
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    }

    /// A text value.
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// The string, if this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The value under a text key, if this is a map (plain object) holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The integer held by an `Int`, a `BigInt` or an integral `Float`, if it fits an `i128`.
    pub fn as_integer(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(i128::from(*i)),
            Value::BigInt(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 1.0e38 => Some(*f as i128),
            _ => None,
        }
    }

    /// Whether this is `null` or `undefined`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::number(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}
