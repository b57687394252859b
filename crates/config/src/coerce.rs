//! A deserializer over a JSON value tree that parses strings as the type the field asks for.
//!
//! Environment variables only carry strings, and `RIVET__guard__port=6420` must still fill a
//! `u16`. Rather than guessing a type from the text (which would turn a token `12345` into a
//! number), the field's own type decides: a string is parsed as a number or boolean only where a
//! number or boolean is wanted, and a scalar becomes a string where a string is wanted.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::{Map, Value};

/// Wraps a value so that deserializing it coerces strings to the requested scalar type.
pub(crate) struct Coerce(pub(crate) Value);

type Error = serde_json::Error;

fn parse_error(text: &str, wanted: &str) -> Error {
    de::Error::custom(format!("invalid value {text:?}, expected {wanted}"))
}

macro_rules! coerce_int {
    ($method:ident, $ty:ty, $visit:ident, $name:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::String(s) => {
                    let parsed: $ty = s.trim().parse().map_err(|_| parse_error(&s, $name))?;
                    visitor.$visit(parsed.into())
                }
                other => other.$method(visitor),
            }
        }
    };
}

impl<'de> Deserializer<'de> for Coerce {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(CoerceMap::new(map)),
            Value::Array(items) => visitor.visit_seq(CoerceSeq(items.into_iter())),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => visitor.visit_bool(true),
                "false" | "0" | "no" | "off" => visitor.visit_bool(false),
                _ => Err(parse_error(&s, "a boolean")),
            },
            other => other.deserialize_bool(visitor),
        }
    }

    coerce_int!(deserialize_u8, u8, visit_u64, "an integer from 0 to 255");
    coerce_int!(
        deserialize_u16,
        u16,
        visit_u64,
        "an integer from 0 to 65535"
    );
    coerce_int!(deserialize_u32, u32, visit_u64, "a non-negative integer");
    coerce_int!(deserialize_u64, u64, visit_u64, "a non-negative integer");
    coerce_int!(deserialize_i8, i8, visit_i64, "an integer");
    coerce_int!(deserialize_i16, i16, visit_i64, "an integer");
    coerce_int!(deserialize_i32, i32, visit_i64, "an integer");
    coerce_int!(deserialize_i64, i64, visit_i64, "an integer");
    coerce_int!(deserialize_f32, f32, visit_f64, "a number");
    coerce_int!(deserialize_f64, f64, visit_f64, "a number");

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            other => other.deserialize_string(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Coerce(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            // An empty section can only be spelled as a string in an environment variable.
            Value::String(s) if matches!(s.trim(), "" | "{}" | "true") => {
                visitor.visit_map(CoerceMap::new(Map::new()))
            }
            Value::Null => visitor.visit_map(CoerceMap::new(Map::new())),
            other => Coerce(other).deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(CoerceEnum {
                variant,
                value: None,
            }),
            Value::Object(map) if map.len() == 1 => {
                let Some((variant, value)) = map.into_iter().next() else {
                    return Err(de::Error::custom("expected a single-key map"));
                };
                visitor.visit_enum(CoerceEnum {
                    variant,
                    value: Some(value),
                })
            }
            Value::Object(map) => Err(de::Error::custom(format!(
                "expected exactly one of the variants as the only key, found {} keys",
                map.len()
            ))),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct identifier ignored_any
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct CoerceMap {
    entries: serde_json::map::IntoIter,
    pending: Option<Value>,
}

impl CoerceMap {
    fn new(map: Map<String, Value>) -> Self {
        CoerceMap {
            entries: map.into_iter(),
            pending: None,
        }
    }
}

impl<'de> MapAccess<'de> for CoerceMap {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.pending = Some(value);
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let value = self.pending.take().unwrap_or(Value::Null);
        seed.deserialize(Coerce(value))
    }
}

struct CoerceSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for CoerceSeq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|value| seed.deserialize(Coerce(value)))
            .transpose()
    }
}

struct CoerceEnum {
    variant: String,
    value: Option<Value>,
}

impl<'de> EnumAccess<'de> for CoerceEnum {
    type Error = Error;
    type Variant = CoerceVariant;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, CoerceVariant), Error> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, CoerceVariant(self.value)))
    }
}

struct CoerceVariant(Option<Value>);

impl<'de> VariantAccess<'de> for CoerceVariant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(map)) if map.is_empty() => Ok(()),
            Some(other) => Err(de::Error::invalid_type(unexpected(&other), &"no value")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(Coerce(self.0.unwrap_or(Value::Null)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        Coerce(self.0.unwrap_or(Value::Null)).deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        Coerce(self.0.unwrap_or(Value::Null)).deserialize_map(visitor)
    }
}
