//! A serde `Deserializer` adaptor under which a struct is read only from a JSON object, at
//! any depth. It must not change anything else: numbers, strings, lists, enums and the errors
//! of the deserializer it wraps pass through as they are.
//!
//! serde's derived `Deserialize` for a struct also takes a sequence and reads it as the
//! struct's fields in order, so with serde_json alone `{"ChangeBatch": ["x", [...]]}` was a
//! batch with comment "x", `[["CREATE", {...}]]` a list of Changes and `["a.example", "A",
//! 60, [...]]` a ResourceRecordSet. Route 53 expects an object in each of those places and
//! its documents have no positional form. Wrapping the deserializer, rather than writing a
//! `Deserialize` for every request struct or reading the body into a `serde_json::Value`
//! first, covers every struct the API reads, those added later included, and keeps what
//! serde_json checks while it reads (a field given twice, the line and column of an error)
//! with no second pass or copy of the body. `serde_path_to_error` wraps this adaptor, so
//! the refusal names the field it is at.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// What a struct given as an array is told.
pub const ARRAY_FOR_OBJECT: &str = "expected a JSON object, found an array";

/// `D`, with every struct under it read only from a map (a JSON object).
pub struct ObjectsOnly<D>(pub D);

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Wrap::any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap::any(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap::any(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap::any(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap::any(visitor))
    }

    /// The one place the adaptor decides: a struct's visitor is told of a sequence no more.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_struct(name, fields, Wrap::object(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap::any(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor that hands whatever it is given to `visitor`, wrapped so that what is read
/// through it is `ObjectsOnly` too; for a struct (`object`), a sequence is an error.
struct Wrap<V> {
    visitor: V,
    object: bool,
}

impl<V> Wrap<V> {
    fn any(visitor: V) -> Self {
        Self {
            visitor,
            object: false,
        }
    }

    fn object(visitor: V) -> Self {
        Self {
            visitor,
            object: true,
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visit!(
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(ObjectsOnly(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(ObjectsOnly(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.object {
            return Err(de::Error::custom(ARRAY_FOR_OBJECT));
        }
        self.visitor.visit_seq(Seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Map(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Enum(data))
    }
}

/// A seed whose deserializer is wrapped: how elements, keys, values and variants stay
/// `ObjectsOnly`.
struct Seed<T>(T);

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(ObjectsOnly(d))
    }
}

struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Map<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Enum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(Seed(seed))
            .map(|(value, variant)| (value, Variant(variant)))
    }
}

struct Variant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::any(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap::object(visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u32,
        b: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Kind {
        Unit,
        Struct { x: u8 },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        list: Vec<Inner>,
        tuple: (u8, String),
        map: BTreeMap<String, Inner>,
        kind: Kind,
        any: serde_json::Value,
        #[serde(default)]
        maybe: Option<Inner>,
    }

    fn read<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_lists_and_everything_else_read_as_before() {
        let json = r#"{"list": [{"a": 1}, {"a": 2, "b": "x"}], "tuple": [7, "t"],
            "map": {"k": {"a": 3}}, "kind": "Unit", "any": [1, {"z": [null]}],
            "maybe": {"a": 4}}"#;
        let outer: Outer = read(json).unwrap();
        let plain: Outer = serde_json::from_str(json).unwrap();
        assert_eq!(outer, plain);
        let kind: Kind = read(r#"{"Struct": {"x": 9}}"#).unwrap();
        assert_eq!(kind, Kind::Struct { x: 9 });
        // What serde_json refuses is still refused, in its words.
        let twice = read::<Inner>(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(twice.contains("duplicate field `a`"), "{twice}");
    }

    #[test]
    fn a_struct_given_as_an_array_is_refused_where_it_is() {
        for (json, path) in [
            (r#"[1, "x"]"#, ""),
            (
                r#"{"list": [[1, "x"]], "tuple": [7, "t"], "map": {}, "kind": "Unit", "any": 0}"#,
                "list[0]",
            ),
            (
                r#"{"list": [], "tuple": [7, "t"], "map": {"k": [1]}, "kind": "Unit", "any": 0}"#,
                "map.k",
            ),
            (
                r#"{"list": [], "tuple": [7, "t"], "map": {}, "kind": {"Struct": [9]}, "any": 0}"#,
                "kind",
            ),
            (
                r#"{"list": [], "tuple": [7, "t"], "map": {}, "kind": "Unit", "any": 0, "maybe": [1]}"#,
                "maybe",
            ),
        ] {
            let err = read::<Outer>(json).unwrap_err();
            assert!(err.contains(ARRAY_FOR_OBJECT), "{json}: {err}");
            assert!(err.starts_with(path), "{json}: {err}");
        }
    }
}
