//! The one parser of what clients send, for both WebSocket codecs and the REST bodies: the
//! bytes become a `serde_json::Value` (JSON as it is; MessagePack through the same value, so a
//! map key that is not a string, or a bin or ext value, is refused there), and the target type
//! is read from that value by [`Strict`], a deserializer that is stricter than serde's usual
//! ones:
//!
//! - a struct is read only from a map (serde would also take an array of its fields in order);
//! - a list is read only where a list is expected (never buffered into an "any" value, which is
//!   how a tagged enum would otherwise take `["text","x"]` for `{"kind":"text","text":"x"}`);
//! - enum tags and variant names, and field names, must be strings (serde would take a
//!   variant's index, `{"kind":0}`, as its first variant);
//! - a string is a string: no bytes, numbers or booleans in its place, and the reverse;
//! - numbers keep their kind: an unsigned field takes no float or negative number.
//!
//! Tagged enums (a `type` or `kind` field names the variant) are read with [`tagged`]: the
//! enum is declared externally tagged, and `tagged` hands it the tag's value as the variant and
//! the whole map as the variant's fields.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Value};

pub type Error = serde_json::Error;

fn err(msg: impl std::fmt::Display) -> Error {
    de::Error::custom(msg)
}

/// The shape of a value, for messages.
fn what(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads `T` from `v` by the rules above.
pub fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, Error> {
    T::deserialize(Strict(v))
}

/// Reads a tagged enum `T` (declared without `#[serde(tag)]`) from an object whose `tag` field
/// names the variant.
pub fn tagged<T: DeserializeOwned>(v: &Value, tag: &'static str) -> Result<T, Error> {
    T::deserialize(Tagged { v, tag })
}

/// Parses JSON bytes into a value (syntax only).
pub fn json_value(bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(bytes)
}

/// Parses MessagePack bytes into the same kind of value: map keys must be strings, and bin and
/// ext values are refused.
pub fn msgpack_value(bytes: &[u8]) -> Result<Value, String> {
    rmp_serde::from_slice::<Value>(bytes).map_err(|e| e.to_string())
}

/// A deserializer over a borrowed value that enforces the module's rules.
#[derive(Clone, Copy)]
pub struct Strict<'a>(pub &'a Value);

struct Tagged<'a> {
    v: &'a Value,
    tag: &'static str,
}

impl<'de> Deserializer<'de> for Tagged<'de> {
    type Error = Error;

    fn deserialize_enum<V: Visitor<'de>>(self, _: &'static str, _: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        let Value::Object(map) = self.v else {
            return Err(err(format!("expected an object, found {}", what(self.v))));
        };
        match map.get(self.tag) {
            Some(Value::String(t)) => visitor.visit_enum(TaggedAccess { tag: t, map }),
            Some(other) => Err(err(format!("`{}` must be a string, found {}", self.tag, what(other)))),
            None => Err(de::Error::missing_field(self.tag)),
        }
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        Strict(self.v).deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct TaggedAccess<'a> {
    tag: &'a str,
    map: &'a Map<String, Value>,
}

impl<'de> de::EnumAccess<'de> for TaggedAccess<'de> {
    type Error = Error;
    type Variant = TaggedVariant<'de>;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), Error> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(self.tag))?;
        Ok((v, TaggedVariant { map: self.map }))
    }
}

struct TaggedVariant<'a> {
    map: &'a Map<String, Value>,
}

impl<'de> de::VariantAccess<'de> for TaggedVariant<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(StrictMapDe(self.map))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        Err(err("a tagged frame carries named fields"))
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(StrictMap { iter: self.map.iter(), value: None })
    }
}

/// A map read as a struct (the fields of a tagged variant).
struct StrictMapDe<'a>(&'a Map<String, Value>);

impl<'de> Deserializer<'de> for StrictMapDe<'de> {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(StrictMap { iter: self.0.iter(), value: None })
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct StrictMap<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for StrictMap<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self.value.take().ok_or_else(|| err("value without a key"))?;
        seed.deserialize(Strict(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct StrictSeq<'a> {
    iter: std::slice::Iter<'a, Value>,
}

impl<'de> SeqAccess<'de> for StrictSeq<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(v) => seed.deserialize(Strict(v)).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

impl<'de> Strict<'de> {
    fn invalid(self, expected: &str) -> Error {
        err(format!("expected {expected}, found {}", what(self.0)))
    }
    fn visit_number<V: Visitor<'de>>(self, visitor: V, expected: &str) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            _ => Err(self.invalid(expected)),
        }
    }
    fn unsigned<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => match n.as_u64() {
                Some(u) => visitor.visit_u64(u),
                None => Err(err(format!("expected a non-negative integer, found {n}"))),
            },
            _ => Err(self.invalid("a non-negative integer")),
        }
    }
    fn signed<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => match n.as_i64() {
                Some(i) => visitor.visit_i64(i),
                None => match n.as_u64() {
                    Some(u) => visitor.visit_u64(u),
                    None => Err(err(format!("expected an integer, found {n}"))),
                },
            },
            _ => Err(self.invalid("an integer")),
        }
    }
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    /// For types that take anything (untagged enums, ids that are a string or a number): a
    /// list is refused here, since nothing on the wire is "a list or something else".
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(_) => self.visit_number(visitor, "a number"),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(_) => Err(err("a list is not expected here")),
            Value::Object(m) => visitor.visit_map(StrictMap { iter: m.iter(), value: None }),
        }
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.invalid("a boolean")),
        }
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.signed(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.signed(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.signed(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.signed(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.unsigned(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.unsigned(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.unsigned(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.unsigned(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_number(visitor, "a number")
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_number(visitor, "a number")
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.invalid("null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(a) => visitor.visit_seq(StrictSeq { iter: a.iter() }),
            _ => Err(self.invalid("a list")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(StrictMap { iter: m.iter(), value: None }),
            _ => Err(self.invalid("an object")),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, _: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }
    /// Unit variants by name only (`"group"`, never `0`).
    fn deserialize_enum<V: Visitor<'de>>(self, _: &'static str, _: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(self.invalid("a string")),
        }
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Point {
        x: u32,
        label: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Dot { at: Point },
        Empty {},
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Direct,
        Group,
    }

    #[test]
    fn structs_come_only_from_maps() {
        let p: Point = from_value(&json!({"x": 1, "label": "a", "tags": ["t"], "extra": [1, [2]]})).unwrap();
        assert_eq!(p, Point { x: 1, label: Some("a".into()), tags: vec!["t".into()] });
        assert!(from_value::<Point>(&json!([1, "a"])).is_err());
        assert!(from_value::<Point>(&json!({"x": 1, "tags": "t"})).is_err());
        assert!(from_value::<Point>(&json!({"x": -1})).is_err());
        assert!(from_value::<Point>(&json!({"x": 1.0})).is_err());
        assert!(from_value::<Point>(&json!({"x": "1"})).is_err());
        assert!(from_value::<Point>(&json!({"x": 1, "label": 5})).is_err());
    }

    #[test]
    fn tags_and_variants_are_strings() {
        let s: Shape = tagged(&json!({"type": "dot", "at": {"x": 3}}), "type").unwrap();
        assert_eq!(s, Shape::Dot { at: Point { x: 3, label: None, tags: vec![] } });
        assert_eq!(tagged::<Shape>(&json!({"type": "empty"}), "type").unwrap(), Shape::Empty {});
        assert!(tagged::<Shape>(&json!({"type": 0, "at": {"x": 3}}), "type").is_err());
        assert!(tagged::<Shape>(&json!({"type": "dot", "at": [3]}), "type").is_err());
        assert!(tagged::<Shape>(&json!(["dot", {"x": 3}]), "type").is_err());
        assert!(tagged::<Shape>(&json!({"at": {"x": 3}}), "type").is_err());
        assert_eq!(from_value::<Kind>(&json!("group")).unwrap(), Kind::Group);
        assert!(from_value::<Kind>(&json!(0)).is_err());
        assert!(from_value::<Kind>(&json!("Direct")).is_err());
    }

    #[test]
    fn msgpack_maps_need_string_keys_and_no_bin() {
        // {1: "x"}
        assert!(msgpack_value(&[0x81, 0x01, 0xa1, b'x']).is_err());
        // {"type": bin "ping"}
        let mut bin = vec![0x81, 0xa4];
        bin.extend_from_slice(b"type");
        bin.extend_from_slice(&[0xc4, 0x04]);
        bin.extend_from_slice(b"ping");
        assert!(msgpack_value(&bin).is_err());
        let ok = rmp_serde::to_vec_named(&json!({"type": "ping"})).unwrap();
        assert_eq!(msgpack_value(&ok).unwrap(), json!({"type": "ping"}));
    }
}
