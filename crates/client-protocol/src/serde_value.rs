//! Conversions between [`Value`] and Rust types implementing serde traits, for typed actions.
//!
//! Mapping: integers become [`Value::Int`] (JavaScript numbers) when their magnitude is at most
//! 2^53 and [`Value::BigInt`] otherwise; floats become numbers; serde byte buffers (e.g.
//! `serde_bytes::ByteBuf`) become `Uint8Array`s; `None` and `()` become `null`; structs become
//! plain objects. Going back, `undefined` reads as `null` (so as `None`), `Uint8Array`s and
//! `ArrayBuffer`s as byte buffers, `Set`s as sequences and `Map`s as maps.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Serialize;

use crate::error::Error;
use crate::value::{Value, MAX_SAFE_INTEGER, TAG_MAP, TAG_SET, TAG_UINT8_ARRAY};

/// Converts a serializable Rust value into a payload value.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    let cv = ciborium::Value::serialized(value).map_err(|e| Error::Conversion(e.to_string()))?;
    Ok(from_ciborium(cv))
}

/// Converts a payload value into a Rust value.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(ValueDeserializer(value)).map_err(|e| Error::Conversion(e.0))
}

fn from_ciborium(v: ciborium::Value) -> Value {
    match v {
        ciborium::Value::Integer(i) => {
            let i = i128::from(i);
            if i.abs() <= i128::from(MAX_SAFE_INTEGER) {
                Value::Int(i as i64)
            } else {
                Value::BigInt(i)
            }
        }
        ciborium::Value::Bytes(b) => Value::uint8_array(b),
        ciborium::Value::Float(f) => Value::number(f),
        ciborium::Value::Text(s) => Value::Text(s),
        ciborium::Value::Bool(b) => Value::Bool(b),
        ciborium::Value::Null => Value::Null,
        ciborium::Value::Tag(t, inner) => Value::Tag(t, Box::new(from_ciborium(*inner))),
        ciborium::Value::Array(items) => {
            Value::Array(items.into_iter().map(from_ciborium).collect())
        }
        ciborium::Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (from_ciborium(k), from_ciborium(v)))
                .collect(),
        ),
        // `ciborium::Value` is non-exhaustive.
        _ => Value::Null,
    }
}

/// The error type serde needs while walking a [`Value`].
#[derive(Debug)]
struct DeError(String);

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// A serde deserializer over a borrowed [`Value`], lenient the way JavaScript values need:
/// integral numbers read as floats, bigints as integers, `undefined` as `null`.
struct ValueDeserializer<'a>(&'a Value);

impl<'de, 'a> de::Deserializer<'de> for ValueDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null | Value::Undefined | Value::Simple(_) => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::BigInt(i) => {
                if let Ok(i) = i64::try_from(*i) {
                    visitor.visit_i64(i)
                } else if let Ok(u) = u64::try_from(*i) {
                    visitor.visit_u64(u)
                } else {
                    visitor.visit_i128(*i)
                }
            }
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Bytes(b) => visitor.visit_bytes(b),
            Value::Text(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(Seq(items.iter())),
            Value::Map(entries) => visitor.visit_map(Map {
                iter: entries.iter(),
                value: None,
            }),
            Value::Tag(TAG_UINT8_ARRAY | TAG_SET | TAG_MAP, inner) => {
                ValueDeserializer(inner).deserialize_any(visitor)
            }
            Value::Tag(_, inner) => ValueDeserializer(inner).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_nullish() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Int(i) => visitor.visit_f64(*i as f64),
            Value::BigInt(i) => visitor.visit_f64(*i as f64),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A `Vec<u8>` asks for a sequence; let it read a byte string too.
        match self.0 {
            Value::Bytes(b) => {
                visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied()))
            }
            Value::Tag(TAG_UINT8_ARRAY, inner) => ValueDeserializer(inner).deserialize_seq(visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(Enum(&entries[0])),
            _ => Err(de::Error::custom(
                "expected a string or a single-key object for an enum",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string bytes byte_buf unit
        unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de, 'a> SeqAccess<'de> for Seq<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.0.next() {
            Some(v) => seed.deserialize(ValueDeserializer(v)).map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'a> {
    iter: std::slice::Iter<'a, (Value, Value)>,
    value: Option<&'a Value>,
}

impl<'de, 'a> MapAccess<'de> for Map<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(ValueDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(ValueDeserializer(v)),
            None => Err(de::Error::custom("map value requested before its key")),
        }
    }
}

struct Enum<'a>(&'a (Value, Value));

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = DeError;
    type Variant = ValueDeserializer<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let variant = seed.deserialize(ValueDeserializer(&self.0 .0))?;
        Ok((variant, ValueDeserializer(&self.0 .1)))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for ValueDeserializer<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Args {
        count: u32,
        big: u64,
        label: Option<String>,
        ratio: f64,
        tags: Vec<String>,
    }

    #[test]
    fn typed_round_trip() {
        let a = Args {
            count: 5,
            big: u64::MAX,
            label: None,
            ratio: 0.5,
            tags: vec!["x".into()],
        };
        let v = to_value(&a).unwrap();
        assert_eq!(v.get("count"), Some(&Value::Int(5)));
        assert_eq!(v.get("big"), Some(&Value::BigInt(i128::from(u64::MAX))));
        assert_eq!(from_value::<Args>(&v).unwrap(), a);
    }

    #[test]
    fn javascript_shapes_read_as_rust_types() {
        let v = Value::object([
            ("count", Value::BigInt(7)),
            ("big", Value::Int(1)),
            ("label", Value::Undefined),
            ("ratio", Value::Int(2)),
            ("tags", Value::set(vec![Value::text("a")])),
        ]);
        let a: Args = from_value(&v).unwrap();
        assert_eq!(a.count, 7);
        assert_eq!(a.label, None);
        assert_eq!(a.ratio, 2.0);
        assert_eq!(a.tags, vec!["a".to_owned()]);
        assert!(from_value::<Args>(&Value::Int(1)).is_err());
        let bytes: Vec<u8> = from_value(&Value::uint8_array(vec![1, 2])).unwrap();
        assert_eq!(bytes, vec![1, 2]);
        let bytes: Vec<u8> = from_value(&Value::Array(vec![Value::Int(3)])).unwrap();
        assert_eq!(bytes, vec![3]);
    }
}
