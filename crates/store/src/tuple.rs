//! Order-preserving tuple encoding of keys, in the style of FoundationDB's tuple layer.
//!
//! A tuple is a sequence of [`Element`]s. Its encoding sorts byte-wise exactly as the tuples sort
//! element by element, so a tuple prefix is a key prefix and every subspace is one key range on
//! every driver. Element types sort in this order: null, bytes, string, nested tuple, integer,
//! boolean, id; within a type by value.
//!
//! Encoding (type code, then body):
//! - null `0x00`
//! - bytes `0x01`, string `0x02` (UTF-8): the body with every `0x00` written as `0x00 0xFF`,
//!   then a `0x00` terminator
//! - nested tuple `0x05`, its elements, `0x00`; a null inside a nested tuple is `0x00 0xFF`
//! - integer `0x0C..=0x1C`: `0x14` is zero, `0x14 + n` a positive number of `n` big-endian bytes,
//!   `0x14 - n` a negative number whose magnitude's `n` bytes are stored one's-complemented
//! - booleans `0x26` (false) and `0x27` (true)
//! - id `0x30` followed by 16 bytes

use std::cmp::Ordering;

use crate::error::StoreError;

const NULL: u8 = 0x00;
const BYTES: u8 = 0x01;
const STRING: u8 = 0x02;
const NESTED: u8 = 0x05;
const INT_ZERO: u8 = 0x14;
const FALSE: u8 = 0x26;
const TRUE: u8 = 0x27;
const ID: u8 = 0x30;
const ESCAPE: u8 = 0xFF;

/// One decoded tuple element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Element {
    /// The null element.
    Null,
    /// A byte string.
    Bytes(Vec<u8>),
    /// A UTF-8 string.
    String(String),
    /// A nested tuple.
    Tuple(Vec<Element>),
    /// A signed 64-bit integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A 16-byte identifier (a UUID or an actor id).
    Id([u8; 16]),
}

impl Element {
    fn rank(&self) -> u8 {
        match self {
            Element::Null => 0,
            Element::Bytes(_) => 1,
            Element::String(_) => 2,
            Element::Tuple(_) => 3,
            Element::Int(_) => 4,
            Element::Bool(_) => 5,
            Element::Id(_) => 6,
        }
    }
}

/// Orders elements the way their encodings sort.
impl Ord for Element {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Element::Bytes(a), Element::Bytes(b)) => a.cmp(b),
            (Element::String(a), Element::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Element::Tuple(a), Element::Tuple(b)) => a.cmp(b),
            (Element::Int(a), Element::Int(b)) => a.cmp(b),
            (Element::Bool(a), Element::Bool(b)) => a.cmp(b),
            (Element::Id(a), Element::Id(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Element {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A value that appends its tuple encoding to a buffer: elements, Rust tuples of them, slices.
///
/// A Rust tuple or slice packs as the concatenation of its elements (a flat tuple); wrap it in
/// [`Nested`] to pack it as one nested-tuple element.
pub trait Pack {
    /// Appends the encoding to `out`.
    fn pack_into(&self, out: &mut Vec<u8>);

    /// Appends the encoding as a member of a nested tuple (only null differs).
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        self.pack_into(out);
    }
}

/// Packs a value (usually a Rust tuple of elements) into a key.
pub fn pack<P: Pack + ?Sized>(value: &P) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    value.pack_into(&mut out);
    out
}

/// Decodes a whole key into its elements. Never panics on malformed input.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Element>, StoreError> {
    let mut decoder = Decoder { bytes, pos: 0 };
    let mut out = Vec::new();
    while decoder.pos < bytes.len() {
        out.push(decoder.element(false)?);
    }
    Ok(out)
}

/// A tuple element packed as a nested tuple.
#[derive(Debug, Clone, Copy)]
pub struct Nested<T>(pub T);

impl<T: Pack> Pack for Nested<T> {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(NESTED);
        self.0.pack_nested_into(out);
        out.push(0x00);
    }
}

/// The null element, for packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Null;

impl Pack for Null {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(NULL);
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        out.push(NULL);
        out.push(ESCAPE);
    }
}

/// A byte string element, for packing (a bare `&[u8]` would be ambiguous with a slice of
/// elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Pack for Bytes<'_> {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(BYTES);
        escape_into(self.0, out);
    }
}

/// A 16-byte id element, for packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub [u8; 16]);

impl Pack for Id {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(ID);
        out.extend_from_slice(&self.0);
    }
}

fn escape_into(body: &[u8], out: &mut Vec<u8>) {
    for &b in body {
        out.push(b);
        if b == 0 {
            out.push(ESCAPE);
        }
    }
    out.push(0x00);
}

fn pack_int(v: i64, out: &mut Vec<u8>) {
    if v == 0 {
        out.push(INT_ZERO);
        return;
    }
    let magnitude = v.unsigned_abs();
    let len = 8 - (magnitude.leading_zeros() / 8) as usize;
    let bytes = magnitude.to_be_bytes();
    if v > 0 {
        out.push(INT_ZERO + len as u8);
        out.extend_from_slice(&bytes[8 - len..]);
    } else {
        out.push(INT_ZERO - len as u8);
        out.extend(bytes[8 - len..].iter().map(|b| !b));
    }
}

impl Pack for Element {
    fn pack_into(&self, out: &mut Vec<u8>) {
        match self {
            Element::Null => out.push(NULL),
            Element::Bytes(b) => Bytes(b).pack_into(out),
            Element::String(s) => s.as_str().pack_into(out),
            Element::Tuple(items) => {
                out.push(NESTED);
                for item in items {
                    item.pack_nested_into(out);
                }
                out.push(0x00);
            }
            Element::Int(v) => pack_int(*v, out),
            Element::Bool(b) => b.pack_into(out),
            Element::Id(id) => Id(*id).pack_into(out),
        }
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        match self {
            Element::Null => Null.pack_nested_into(out),
            other => other.pack_into(out),
        }
    }
}

impl Pack for str {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(STRING);
        escape_into(self.as_bytes(), out);
    }
}

impl Pack for String {
    fn pack_into(&self, out: &mut Vec<u8>) {
        self.as_str().pack_into(out);
    }
}

impl Pack for bool {
    fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(if *self { TRUE } else { FALSE });
    }
}

macro_rules! pack_signed {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            fn pack_into(&self, out: &mut Vec<u8>) {
                pack_int(i64::from(*self), out);
            }
        }
    )*};
}
pack_signed!(i8, i16, i32, i64, u16, u32);

impl<T: Pack + ?Sized> Pack for &T {
    fn pack_into(&self, out: &mut Vec<u8>) {
        (**self).pack_into(out);
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        (**self).pack_nested_into(out);
    }
}

impl<T: Pack> Pack for Option<T> {
    fn pack_into(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.pack_into(out),
            None => Null.pack_into(out),
        }
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.pack_nested_into(out),
            None => Null.pack_nested_into(out),
        }
    }
}

impl<T: Pack> Pack for [T] {
    fn pack_into(&self, out: &mut Vec<u8>) {
        for item in self {
            item.pack_into(out);
        }
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        for item in self {
            item.pack_nested_into(out);
        }
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn pack_into(&self, out: &mut Vec<u8>) {
        self.as_slice().pack_into(out);
    }
    fn pack_nested_into(&self, out: &mut Vec<u8>) {
        self.as_slice().pack_nested_into(out);
    }
}

impl Pack for () {
    fn pack_into(&self, _out: &mut Vec<u8>) {}
}

macro_rules! pack_tuple {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Pack),+> Pack for ($($name,)+) {
            fn pack_into(&self, out: &mut Vec<u8>) {
                $(self.$idx.pack_into(out);)+
            }
            fn pack_nested_into(&self, out: &mut Vec<u8>) {
                $(self.$idx.pack_nested_into(out);)+
            }
        }
    };
}
pack_tuple!(A.0);
pack_tuple!(A.0, B.1);
pack_tuple!(A.0, B.1, C.2);
pack_tuple!(A.0, B.1, C.2, D.3);
pack_tuple!(A.0, B.1, C.2, D.3, E.4);
pack_tuple!(A.0, B.1, C.2, D.3, E.4, F.5);
pack_tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
pack_tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn fail(&self, reason: &'static str) -> StoreError {
        StoreError::TupleDecode {
            offset: self.pos,
            reason,
        }
    }

    fn next(&mut self) -> Result<u8, StoreError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.fail("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    fn escaped(&mut self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        loop {
            let b = self.next()?;
            if b != 0 {
                out.push(b);
                continue;
            }
            if self.bytes.get(self.pos) == Some(&ESCAPE) {
                self.pos += 1;
                out.push(0);
            } else {
                return Ok(out);
            }
        }
    }

    fn element(&mut self, nested: bool) -> Result<Element, StoreError> {
        let code = self.next()?;
        match code {
            NULL => {
                if nested {
                    // Only reached for `0x00 0xFF`; a bare 0x00 ends the nested tuple.
                    self.pos += 1;
                }
                Ok(Element::Null)
            }
            BYTES => Ok(Element::Bytes(self.escaped()?)),
            STRING => {
                let start = self.pos;
                let raw = self.escaped()?;
                String::from_utf8(raw)
                    .map(Element::String)
                    .map_err(|_| StoreError::TupleDecode {
                        offset: start,
                        reason: "string is not UTF-8",
                    })
            }
            NESTED => {
                let mut items = Vec::new();
                loop {
                    match self.bytes.get(self.pos) {
                        None => return Err(self.fail("unterminated nested tuple")),
                        Some(0) if self.bytes.get(self.pos + 1) != Some(&ESCAPE) => {
                            self.pos += 1;
                            return Ok(Element::Tuple(items));
                        }
                        Some(_) => items.push(self.element(true)?),
                    }
                }
            }
            0x0C..=0x1C => {
                let negative = code < INT_ZERO;
                let len = usize::from(code.abs_diff(INT_ZERO));
                let body = self
                    .bytes
                    .get(self.pos..self.pos + len)
                    .ok_or_else(|| self.fail("truncated integer"))?;
                self.pos += len;
                let mut buf = [0u8; 8];
                for (dst, src) in buf[8 - len..].iter_mut().zip(body) {
                    *dst = if negative { !src } else { *src };
                }
                let magnitude = u64::from_be_bytes(buf);
                if len > 0 && buf[8 - len] == 0 {
                    return Err(self.fail("non-canonical integer"));
                }
                if negative {
                    if magnitude > 1u64 << 63 {
                        return Err(self.fail("integer out of i64 range"));
                    }
                    Ok(Element::Int((magnitude as i64).wrapping_neg()))
                } else {
                    i64::try_from(magnitude)
                        .map(Element::Int)
                        .map_err(|_| self.fail("integer out of i64 range"))
                }
            }
            FALSE => Ok(Element::Bool(false)),
            TRUE => Ok(Element::Bool(true)),
            ID => {
                let body = self
                    .bytes
                    .get(self.pos..self.pos + 16)
                    .ok_or_else(|| self.fail("truncated id"))?;
                let mut id = [0u8; 16];
                id.copy_from_slice(body);
                self.pos += 16;
                Ok(Element::Id(id))
            }
            _ => {
                self.pos -= 1;
                Err(self.fail("unknown type code"))
            }
        }
    }
}

/// The first key after every key that starts with `prefix` (`None` when no such key exists,
/// i.e. the prefix is all `0xFF`).
pub fn strinc(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut out = prefix[..=last].to_vec();
    out[last] += 1;
    Some(out)
}

/// A key prefix that groups related keys; every key packed through it lies in [`Subspace::range`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subspace {
    prefix: Vec<u8>,
}

impl Subspace {
    /// A subspace whose prefix is the packed tuple.
    pub fn new<P: Pack + ?Sized>(tuple: &P) -> Self {
        Subspace {
            prefix: pack(tuple),
        }
    }

    /// A subspace with a raw byte prefix.
    pub fn from_bytes(prefix: impl Into<Vec<u8>>) -> Self {
        Subspace {
            prefix: prefix.into(),
        }
    }

    /// The raw prefix.
    pub fn bytes(&self) -> &[u8] {
        &self.prefix
    }

    /// The child subspace for the tuple appended to this prefix.
    pub fn subspace<P: Pack + ?Sized>(&self, tuple: &P) -> Subspace {
        Subspace {
            prefix: self.pack(tuple),
        }
    }

    /// The key for the tuple inside this subspace.
    pub fn pack<P: Pack + ?Sized>(&self, tuple: &P) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 32);
        out.extend_from_slice(&self.prefix);
        tuple.pack_into(&mut out);
        out
    }

    /// Decodes a key of this subspace into the elements after the prefix.
    pub fn unpack(&self, key: &[u8]) -> Result<Vec<Element>, StoreError> {
        let rest = key.strip_prefix(self.prefix.as_slice()).ok_or({
            StoreError::TupleDecode {
                offset: 0,
                reason: "key is outside the subspace",
            }
        })?;
        unpack(rest)
    }

    /// Whether the key starts with this subspace's prefix.
    pub fn contains(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
    }

    /// The range `[begin, end)` of every key packed inside this subspace (the prefix itself
    /// excluded): `prefix 0x00 .. prefix 0xFF`.
    pub fn range(&self) -> (Vec<u8>, Vec<u8>) {
        let mut begin = self.prefix.clone();
        begin.push(0x00);
        let mut end = self.prefix.clone();
        end.push(0xFF);
        (begin, end)
    }

    /// The range of keys inside this subspace that start with the packed tuple.
    pub fn range_of<P: Pack + ?Sized>(&self, tuple: &P) -> (Vec<u8>, Vec<u8>) {
        self.subspace(tuple).range()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn element(depth: u32) -> BoxedStrategy<Element> {
        let leaf = prop_oneof![
            Just(Element::Null),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(0xFF), any::<u8>()], 0..8)
                .prop_map(Element::Bytes),
            "[\\x00a-c\u{e9}]{0,6}".prop_map(Element::String),
            prop_oneof![
                any::<i64>(),
                -300i64..300,
                Just(i64::MIN),
                Just(i64::MAX),
                Just(0)
            ]
            .prop_map(Element::Int),
            any::<bool>().prop_map(Element::Bool),
            prop_oneof![any::<[u8; 16]>(), Just([0; 16]), Just([0xFF; 16])].prop_map(Element::Id),
        ];
        if depth == 0 {
            leaf.boxed()
        } else {
            prop_oneof![
                4 => leaf,
                1 => proptest::collection::vec(element(depth - 1), 0..4).prop_map(Element::Tuple),
            ]
            .boxed()
        }
    }

    fn tuple() -> impl Strategy<Value = Vec<Element>> {
        proptest::collection::vec(element(2), 0..5)
    }

    proptest! {
        #[test]
        fn round_trips(t in tuple()) {
            let bytes = pack(&t);
            prop_assert_eq!(unpack(&bytes).unwrap(), t);
        }

        #[test]
        fn preserves_order(a in tuple(), b in tuple()) {
            prop_assert_eq!(pack(&a).cmp(&pack(&b)), a.cmp(&b));
        }

        #[test]
        fn integers_preserve_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(pack(&a).cmp(&pack(&b)), a.cmp(&b));
            prop_assert_eq!(unpack(&pack(&a)).unwrap(), vec![Element::Int(a)]);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = unpack(&bytes);
        }

        #[test]
        fn subspace_keys_stay_in_range(t in tuple()) {
            let s = Subspace::new(&("actor", 7i64));
            let key = s.pack(&t);
            let (begin, end) = s.range();
            prop_assert!(s.contains(&key));
            if !t.is_empty() {
                prop_assert!(key >= begin && key < end);
            }
            prop_assert_eq!(s.unpack(&key).unwrap(), t);
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(pack(&("a", 1i64)), vec![0x02, b'a', 0x00, 0x15, 0x01]);
        assert_eq!(pack(&-1i64), vec![0x13, 0xFE]);
        assert_eq!(pack(&0i64), vec![0x14]);
        assert_eq!(pack(&Bytes(&[0, 1])), vec![0x01, 0x00, 0xFF, 0x01, 0x00]);
        assert_eq!(pack(&(true, false)), vec![0x27, 0x26]);
        assert_eq!(
            pack(&Nested((Null, 1i64))),
            vec![0x05, 0x00, 0xFF, 0x15, 0x01, 0x00]
        );
        let mut id = vec![0x30];
        id.extend_from_slice(&[7; 16]);
        assert_eq!(pack(&Id([7; 16])), id);
    }

    #[test]
    fn typed_and_dynamic_packing_agree() {
        let typed = pack(&(
            "x",
            Bytes(b"\x00y"),
            -5i64,
            Id([1; 16]),
            Nested(("z", Null)),
        ));
        let dynamic = pack(&vec![
            Element::String("x".into()),
            Element::Bytes(b"\x00y".to_vec()),
            Element::Int(-5),
            Element::Id([1; 16]),
            Element::Tuple(vec![Element::String("z".into()), Element::Null]),
        ]);
        assert_eq!(typed, dynamic);
    }

    #[test]
    fn strinc_works() {
        assert_eq!(strinc(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(strinc(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(strinc(b"\xff\xff"), None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(unpack(&[0x02, b'a']).is_err());
        assert!(unpack(&[0x16, 0x01]).is_err());
        assert!(unpack(&[0x05, 0x15]).is_err());
        assert!(unpack(&[0x99]).is_err());
        assert!(unpack(&[0x15, 0x00]).is_err());
        assert!(unpack(&[0x02, 0xC3, 0x00]).is_err());
    }
}
