//! The compact JSON text of a value's `serde_json::Value`, written without building that value.
//!
//! `serde_json::to_writer(writer, &serde_json::to_value(x)?)` writes objects with their keys in
//! sorted order (a JSON value's map is ordered by key) and a repeated key once, with its last
//! value. [`to_vec`] writes the same bytes straight from `x`: each object's entries are written
//! one after another, then copied out in the order of their keys. It refuses what it does not
//! handle exactly as the value would (floats, 128-bit integers, keys that are neither text nor
//! numbers), for the caller to build the value instead.

use std::fmt::Display;
use std::io::Write as _;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Error as _};

type Error = serde_json::Error;

/// The bytes `serde_json::to_vec(&serde_json::to_value(value)?)` gives, or an error where this
/// writer does not handle the value (the caller builds the value then).
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    // Sized once for an event's data rather than grown step by step.
    let mut writer = ValueText {
        out: Vec::with_capacity(4096),
        keys: Vec::with_capacity(512),
        entries: Vec::with_capacity(32),
    };
    value.serialize(&mut writer)?;
    Ok(writer.out)
}

/// The text written so far, with the entries of the objects still open.
#[derive(Default)]
struct ValueText {
    out: Vec<u8>,
    /// The keys of the open objects' entries, unescaped, one after another.
    keys: Vec<u8>,
    /// The open objects' entries: where each key lies in `keys` and its value in `out`.
    entries: Vec<(Range<usize>, Range<usize>)>,
}

fn unsupported(what: &str) -> Error {
    Error::custom(format_args!("{what} is left to the JSON value"))
}

impl ValueText {
    fn write_display(&mut self, value: impl Display) -> Result<(), Error> {
        write!(self.out, "{value}").map_err(Error::io)
    }

    fn write_str(&mut self, text: &str) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, text)
    }

    fn open_object(&mut self) -> Object {
        Object {
            out_start: self.out.len(),
            keys_start: self.keys.len(),
            entries_start: self.entries.len(),
            key: None,
        }
    }

    /// Writes the object's entries in key order, the last of each key, in place of the entries
    /// as they were written.
    fn close_object(&mut self, object: &Object) -> Result<(), Error> {
        let Self { out, keys, entries } = self;
        let entries_of_object = entries.get_mut(object.entries_start..).unwrap_or_default();
        // Stable: of entries with one key, the last written stays last.
        entries_of_object
            .sort_by(|(left, _), (right, _)| keys[left.clone()].cmp(&keys[right.clone()]));
        let text_start = out.len();
        out.push(b'{');
        let mut first = true;
        for (index, (key, value)) in entries_of_object.iter().enumerate() {
            let key = &keys[key.clone()];
            let repeated_later = entries_of_object
                .get(index + 1)
                .is_some_and(|(next, _)| keys[next.clone()] == *key);
            if repeated_later {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            let key = std::str::from_utf8(key).map_err(Error::custom)?;
            serde_json::to_writer(&mut *out, key)?;
            out.push(b':');
            out.extend_from_within(value.clone());
        }
        out.push(b'}');
        out.copy_within(text_start.., object.out_start);
        out.truncate(object.out_start + (out.len() - text_start));
        keys.truncate(object.keys_start);
        entries.truncate(object.entries_start);
        Ok(())
    }

    fn push_key(&mut self, key: &str) -> Range<usize> {
        let start = self.keys.len();
        self.keys.extend_from_slice(key.as_bytes());
        start..self.keys.len()
    }
}

/// An object being written.
struct Object {
    out_start: usize,
    keys_start: usize,
    entries_start: usize,
    /// The key whose value comes next (maps give keys and values apart).
    key: Option<Range<usize>>,
}

/// An object being written by a serializer.
struct ObjectWriter<'a> {
    text: &'a mut ValueText,
    object: Object,
    /// The variant whose object this is, closed around it at the end.
    variant: bool,
}

impl ObjectWriter<'_> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: Range<usize>, value: &T) -> Result<(), Error> {
        let start = self.text.out.len();
        value.serialize(&mut *self.text)?;
        let end = self.text.out.len();
        self.text.entries.push((key, start..end));
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        self.text.close_object(&self.object)?;
        if self.variant {
            self.text.out.push(b'}');
        }
        Ok(())
    }
}

/// An array being written.
struct ArrayWriter<'a> {
    text: &'a mut ValueText,
    first: bool,
    /// The variant whose array this is, closed around it at the end.
    variant: bool,
}

impl ArrayWriter<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.text.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.text)
    }

    fn finish(self) -> Result<(), Error> {
        self.text.out.push(b']');
        if self.variant {
            self.text.out.push(b'}');
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut ValueText {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ArrayWriter<'a>;
    type SerializeTuple = ArrayWriter<'a>;
    type SerializeTupleStruct = ArrayWriter<'a>;
    type SerializeTupleVariant = ArrayWriter<'a>;
    type SerializeMap = ObjectWriter<'a>;
    type SerializeStruct = ObjectWriter<'a>;
    type SerializeStructVariant = ObjectWriter<'a>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_i128(self, _value: i128) -> Result<(), Error> {
        Err(unsupported("a 128-bit integer"))
    }

    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.write_display(value)
    }

    fn serialize_u128(self, _value: u128) -> Result<(), Error> {
        Err(unsupported("a 128-bit integer"))
    }

    fn serialize_f32(self, _value: f32) -> Result<(), Error> {
        Err(unsupported("a float"))
    }

    fn serialize_f64(self, _value: f64) -> Result<(), Error> {
        Err(unsupported("a float"))
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.write_str(value.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.write_str(value)
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        // A JSON value holds bytes as an array of numbers.
        let mut array = ser::Serializer::serialize_seq(self, Some(value.len()))?;
        for byte in value {
            ser::SerializeSeq::serialize_element(&mut array, byte)?;
        }
        ser::SerializeSeq::end(array)
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.write_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        // One key: nothing to sort.
        self.out.push(b'{');
        self.write_str(variant)?;
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<ArrayWriter<'a>, Error> {
        self.out.push(b'[');
        Ok(ArrayWriter {
            text: self,
            first: true,
            variant: false,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<ArrayWriter<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<ArrayWriter<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ArrayWriter<'a>, Error> {
        self.out.push(b'{');
        self.write_str(variant)?;
        self.out.extend_from_slice(b":[");
        Ok(ArrayWriter {
            text: self,
            first: true,
            variant: true,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<ObjectWriter<'a>, Error> {
        let object = self.open_object();
        Ok(ObjectWriter {
            text: self,
            object,
            variant: false,
        })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<ObjectWriter<'a>, Error> {
        // serde_json's own types (`RawValue`, arbitrary-precision numbers) pass themselves off
        // as structs with a private name; the value would write them differently.
        if name.starts_with("$serde_json") {
            return Err(unsupported("a serde_json private type"));
        }
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ObjectWriter<'a>, Error> {
        self.out.push(b'{');
        self.write_str(variant)?;
        self.out.push(b':');
        let object = self.open_object();
        Ok(ObjectWriter {
            text: self,
            object,
            variant: true,
        })
    }
}

impl ser::SerializeSeq for ArrayWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for ArrayWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for ArrayWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for ArrayWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for ObjectWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.text.keys.len();
        key.serialize(KeyText {
            keys: &mut self.text.keys,
        })?;
        self.object.key = Some(start..self.text.keys.len());
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .object
            .key
            .take()
            .ok_or_else(|| Error::custom("a map value without its key"))?;
        self.entry(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for ObjectWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let key = self.text.push_key(key);
        self.entry(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for ObjectWriter<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let key = self.text.push_key(key);
        self.entry(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// A map key, as a JSON value's map takes it: text, or a number or boolean spelled as text.
struct KeyText<'a> {
    keys: &'a mut Vec<u8>,
}

impl KeyText<'_> {
    fn display(self, value: impl Display) -> Result<(), Error> {
        write!(self.keys, "{value}").map_err(Error::io)
    }
}

fn key_must_be_text() -> Error {
    unsupported("a key that is not text")
}

impl ser::Serializer for KeyText<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_f32(self, _value: f32) -> Result<(), Error> {
        Err(unsupported("a float key"))
    }

    fn serialize_f64(self, _value: f64) -> Result<(), Error> {
        Err(unsupported("a float key"))
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.display(value)
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.keys.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_text())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_text())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_text())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_text())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_text())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_text())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_text())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_text())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::to_vec;

    /// Writes `value` both ways and compares; `None` where the direct writer leaves it to the
    /// value.
    fn check<T: Serialize>(value: &T) -> Option<String> {
        let written = String::from_utf8(to_vec(value).ok()?).unwrap();
        // Where it writes, the value can be built, and its text is the same.
        let expected = serde_json::to_string(&serde_json::to_value(value).unwrap()).unwrap();
        assert_eq!(written, expected);
        Some(written)
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        Unit,
        Fields { zeta: u8, alpha: Option<String> },
        Inner(Inner),
    }

    #[derive(Serialize)]
    enum External {
        Unit,
        Newtype(i64),
        Tuple(u8, bool),
        Struct { b: u8, a: u8 },
    }

    #[derive(Serialize)]
    #[serde(tag = "result", content = "reason")]
    enum Adjacent {
        Plain,
        With(Inner),
    }

    #[derive(Serialize)]
    struct Inner {
        z: Vec<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        a: BTreeMap<String, i32>,
        #[serde(with = "serde_bytes_as_seq")]
        bytes: Vec<u8>,
    }

    mod serde_bytes_as_seq {
        pub(super) fn serialize<S: serde::Serializer>(
            bytes: &[u8],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(bytes)
        }
    }

    #[derive(Serialize)]
    struct Outer {
        #[serde(flatten)]
        extra: BTreeMap<String, String>,
        b: u8,
        inner: Inner,
        tagged: Vec<Tagged>,
        external: Vec<External>,
        adjacent: Vec<Adjacent>,
        by_number: BTreeMap<u16, char>,
        by_flag: BTreeMap<bool, ()>,
        unit: (),
        tuple: (i8, &'static str),
    }

    fn inner() -> Inner {
        Inner {
            z: vec![3, 1],
            skipped: None,
            a: [
                ("b".to_owned(), -1),
                ("a\"\n".to_owned(), 2),
                ("ab".to_owned(), 3),
            ]
            .into_iter()
            .collect(),
            bytes: vec![0, 255],
        }
    }

    #[test]
    fn writes_the_text_of_the_json_value() {
        let outer = Outer {
            // A repeated key: the value keeps the last one written.
            extra: [
                ("b".to_owned(), "flattened".to_owned()),
                ("é".to_owned(), "ü\u{1}".to_owned()),
            ]
            .into_iter()
            .collect(),
            b: 7,
            inner: inner(),
            tagged: vec![
                Tagged::Unit,
                Tagged::Fields {
                    zeta: 1,
                    alpha: None,
                },
                Tagged::Inner(inner()),
            ],
            external: vec![
                External::Unit,
                External::Newtype(-5),
                External::Tuple(1, true),
                External::Struct { b: 2, a: 1 },
            ],
            adjacent: vec![Adjacent::Plain, Adjacent::With(inner())],
            by_number: [(10, 'x'), (9, 'y'), (100, '"')].into_iter().collect(),
            by_flag: [(true, ()), (false, ())].into_iter().collect(),
            unit: (),
            tuple: (-1, "t"),
        };
        assert!(check(&outer).is_some());
        assert!(check(&Option::<u8>::None).is_some());
        assert!(check(&BTreeMap::<String, u8>::new()).is_some());
        assert!(check(&Vec::<u8>::new()).is_some());
        assert!(check(&(u64::MAX, i64::MIN)).is_some());
    }

    #[test]
    fn leaves_floats_and_wide_integers_to_the_value() {
        assert!(check(&1.5_f64).is_none());
        assert!(check(&1_u128).is_none());
        assert!(check(&BTreeMap::from([((1, 2), 3)])).is_none());
    }
}
