//! JSON text for [`Value`], with JavaScript semantics: `JSON.parse` numbers are doubles (an
//! integral one is [`Value::Int`]), duplicate keys keep their first position and last value,
//! and the writer produces exactly the text of `JSON.stringify` (number formatting, escapes,
//! key order).
//!
//! The writer expects a value already passed through [`crate::compat::encode`]; values JSON
//! cannot express are written as `null`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::Error;
use crate::value::Value;

/// Parses JSON text (serde_json bounds nesting to 128 levels).
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = ValueSeed
        .deserialize(&mut de)
        .map_err(|e| Error::InvalidJson(e.to_string()))?;
    de.end().map_err(|e| Error::InvalidJson(e.to_string()))?;
    Ok(value)
}

/// Parses JSON bytes the way the npm client does (`TextDecoder` without `fatal`: a leading
/// BOM is dropped and invalid UTF-8 becomes U+FFFD).
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, Error> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(_) => parse(&String::from_utf8_lossy(bytes)),
    }
}

/// Writes JSON text for a (compat-transformed) value.
pub fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Undefined | Value::Simple(_) | Value::Bytes(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::BigInt(i) => out.push_str(&i.to_string()),
        Value::Float(f) => write_number(*f, out),
        Value::Text(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => write_object(entries, out),
        Value::Tag(crate::value::TAG_MAP, inner) => match &**inner {
            Value::Map(entries) => write_object(entries, out),
            _ => out.push_str("null"),
        },
        Value::Tag(_, _) => out.push_str("null"),
    }
}

fn write_object(entries: &[(Value, Value)], out: &mut String) {
    out.push('{');
    let mut first = true;
    for (k, v) in entries {
        let Some(key) = key_string(k) else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        write_string(&key, out);
        out.push(':');
        write(v, out);
    }
    out.push('}');
}

/// The property name JavaScript would use for a map key; `None` for keys it would not keep.
fn key_string(k: &Value) -> Option<String> {
    Some(match k {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) => {
            let mut s = String::new();
            write_number(*f, &mut s);
            s
        }
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        _ => return None,
    })
}

/// `JSON.stringify` string escaping.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript `Number::toString` (shortest round-trip digits, exponent form outside
/// [1e-7, 1e21)); `NaN` and infinities are `null` as in `JSON.stringify`.
pub fn write_number(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    if f == 0.0 {
        out.push('0');
        return;
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => (sci.as_str(), "0"),
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1;
    if negative {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n >= 1 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::number(i as f64))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::number(u as f64))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::number(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed)?;
            // JSON.parse: a repeated key keeps its first position and takes the last value.
            match index.get(&key) {
                Some(&i) => entries[i].1 = value,
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push((Value::Text(key), value));
                }
            }
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(f: f64) -> String {
        let mut s = String::new();
        write_number(f, &mut s);
        s
    }

    #[test]
    fn numbers_format_like_javascript() {
        // Expected strings from node: JSON.stringify([...]).
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(123456789012345680000.0), "123456789012345680000");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(-1.5e-10), "-1.5e-10");
        assert_eq!(num(9007199254740992.0), "9007199254740992");
        assert_eq!(num(1e300), "1e+300");
        assert_eq!(num(5e-324), "5e-324");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(-0.000001), "-0.000001");
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn parse_keeps_order_and_js_duplicate_rule() {
        let v = parse(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(
            v,
            Value::object([("b", Value::Int(3)), ("a", Value::Int(2))])
        );
        let mut s = String::new();
        write(&v, &mut s);
        assert_eq!(s, r#"{"b":3,"a":2}"#);
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let mut s = String::new();
        write_string("a\"\\\n\u{1}\u{7f}é", &mut s);
        assert_eq!(s, "\"a\\\"\\\\\\n\\u0001\u{7f}é\"");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "[".repeat(10_000);
        assert!(parse(&text).is_err());
    }
}
