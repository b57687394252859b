//! A small BARE reader and writer, written to match `@rivetkit/bare-ts` byte for byte.
//!
//! Decoding is total: every method either returns a value or an [`Error`], never panics, and
//! never allocates more than the remaining input can justify.

use crate::error::{Error, Result};

/// Longest `uint` encoding of a u64 (10 groups of 7 bits).
const MAX_VARINT_LEN: usize = 10;

/// Upper bound on elements reserved up front for a list or map; larger collections grow as they
/// are actually decoded, so a forged count cannot force a big allocation.
const MAX_PREALLOC: usize = 1024;

/// Cursor over an input buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails with [`Error::TrailingBytes`] unless the whole input was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                offset: self.pos,
                remaining: self.remaining(),
            })
        }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::UnexpectedEof {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// `u8`; also used for union and enum tags (the npm codec reads tags as one byte).
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Fixed little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `i64`.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Fixed `i8`.
    pub fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `i16`.
    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `i32`.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `f32` (bit-exact).
    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// Fixed little-endian `f64` (bit-exact, NaN payloads preserved).
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// `data[N]`.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.array()
    }

    /// `bool`: exactly `00` or `01`.
    pub fn bool(&mut self) -> Result<bool> {
        let offset = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(Error::InvalidBool { value, offset }),
        }
    }

    /// `uint`: minimal unsigned LEB128 of at most 64 bits.
    pub fn uint(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut result: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.u8()?;
            let group = u64::from(byte & 0x7f);
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(Error::VarintOverflow { offset: start });
            }
            result |= group << (7 * i);
            if byte < 0x80 {
                if byte == 0 && i > 0 {
                    return Err(Error::NonCanonicalVarint { offset: start });
                }
                return Ok(result);
            }
        }
        Err(Error::VarintOverflow { offset: start })
    }

    /// `int`: zig-zag encoded `uint`.
    pub fn int(&mut self) -> Result<i64> {
        let z = self.uint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A length prefix that must fit in the remaining input (every element takes at least one
    /// byte, so a larger count can never decode).
    pub fn length(&mut self) -> Result<usize> {
        let offset = self.pos;
        let len = self.uint()?;
        match usize::try_from(len) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(Error::LengthTooLarge {
                len,
                offset,
                remaining: self.remaining(),
            }),
        }
    }

    /// `data`.
    pub fn data(&mut self) -> Result<Vec<u8>> {
        let n = self.length()?;
        Ok(self.bytes(n)?.to_vec())
    }

    /// `str`.
    pub fn str(&mut self) -> Result<String> {
        let n = self.length()?;
        let offset = self.pos;
        let bytes = self.bytes(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(Error::InvalidUtf8 { offset }),
        }
    }

    /// `optional<T>`.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// `list<T>`.
    pub fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let n = self.length()?;
        let mut out = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    /// `map<str><V>`, keeping wire order and rejecting duplicate keys like the npm codec.
    pub fn str_map<V>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<V>,
    ) -> Result<indexmap::IndexMap<String, V>> {
        let n = self.length()?;
        let mut out = indexmap::IndexMap::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            let offset = self.pos;
            let key = self.str()?;
            let value = f(self)?;
            // One hash per key; the npm codec rejects the duplicate before reading its value,
            // which fails the same inputs.
            match out.entry(key) {
                indexmap::map::Entry::Occupied(e) => {
                    return Err(Error::DuplicateMapKey {
                        key: e.key().clone(),
                        offset,
                    })
                }
                indexmap::map::Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
        }
        Ok(out)
    }
}

/// Growable output buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Writes into `buf`, appending after what it already holds.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The written bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Raw bytes (`data[N]` or pre-encoded content).
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `u8`, union tags and enum values.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Fixed little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `i64`.
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `f64`.
    pub fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed `i8`.
    pub fn i8(&mut self, v: i8) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `i16`.
    pub fn i16(&mut self, v: i16) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `i32`.
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes());
    }

    /// Fixed little-endian `f32`.
    pub fn f32(&mut self, v: f32) {
        self.bytes(&v.to_le_bytes());
    }

    /// `bool`.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// `uint`.
    pub fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// `int` (zig-zag).
    pub fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Length prefix of a `str` or `data`, which BARE decoders read as a u32.
    fn byte_len(&mut self, what: &'static str, len: usize) -> Result<()> {
        if u32::try_from(len).is_err() {
            return Err(Error::TooLong { what, len });
        }
        self.uint(len as u64);
        Ok(())
    }

    /// `data`.
    pub fn data(&mut self, b: &[u8]) -> Result<()> {
        self.byte_len("data", b.len())?;
        self.bytes(b);
        Ok(())
    }

    /// `str`.
    pub fn str(&mut self, s: &str) -> Result<()> {
        self.byte_len("str", s.len())?;
        self.bytes(s.as_bytes());
        Ok(())
    }

    /// `optional<T>`.
    pub fn option<T>(
        &mut self,
        v: Option<&T>,
        f: impl FnOnce(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        match v {
            Some(v) => {
                self.u8(1);
                f(self, v)
            }
            None => {
                self.u8(0);
                Ok(())
            }
        }
    }

    /// `list<T>`.
    pub fn list<T>(
        &mut self,
        v: &[T],
        mut f: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        self.uint(v.len() as u64);
        for item in v {
            f(self, item)?;
        }
        Ok(())
    }

    /// `map<str><V>` in insertion order.
    pub fn str_map<V>(
        &mut self,
        m: &indexmap::IndexMap<String, V>,
        mut f: impl FnMut(&mut Self, &V) -> Result<()>,
    ) -> Result<()> {
        self.uint(m.len() as u64);
        for (k, v) in m {
            self.str(k)?;
            f(self, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_round_trips_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut w = Writer::default();
            w.uint(v);
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.uint().unwrap(), v);
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn uint_rejects_non_canonical_and_overflow() {
        assert!(matches!(
            Reader::new(&[0x80, 0x00]).uint(),
            Err(Error::NonCanonicalVarint { .. })
        ));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(matches!(
            Reader::new(&over).uint(),
            Err(Error::VarintOverflow { .. })
        ));
        assert!(matches!(
            Reader::new(&[0xff; 11]).uint(),
            Err(Error::VarintOverflow { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x80]).uint(),
            Err(Error::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn fixed_width_values_are_little_endian() {
        let mut w = Writer::default();
        w.u16(0x0102);
        w.i16(-2);
        w.i32(-3);
        w.f32(1.5);
        w.f64(-0.0);
        w.i8(-1);
        w.u64(1);
        let bytes = w.into_vec();
        assert_eq!(&bytes[..4], &[0x02, 0x01, 0xfe, 0xff]);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.i16().unwrap(), -2);
        assert_eq!(r.i32().unwrap(), -3);
        assert_eq!(r.f32().unwrap(), 1.5);
        assert_eq!(r.f64().unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(r.i8().unwrap(), -1);
        assert_eq!(r.u64().unwrap(), 1);
        assert!(r.finish().is_ok());
        assert!(matches!(
            r.u8(),
            Err(Error::UnexpectedEof { needed: 1, .. })
        ));
    }

    #[test]
    fn int_zigzag() {
        for v in [0i64, -1, 1, -64, 63, i64::MIN, i64::MAX] {
            let mut w = Writer::default();
            w.int(v);
            let bytes = w.into_vec();
            assert_eq!(Reader::new(&bytes).int().unwrap(), v);
        }
    }

    #[test]
    fn bool_and_lengths_are_strict() {
        assert!(matches!(
            Reader::new(&[2]).bool(),
            Err(Error::InvalidBool { value: 2, .. })
        ));
        assert!(matches!(
            Reader::new(&[5, 1, 2]).data(),
            Err(Error::LengthTooLarge { len: 5, .. })
        ));
        assert!(matches!(
            Reader::new(&[2, 0xff, 0xfe]).str(),
            Err(Error::InvalidUtf8 { .. })
        ));
        // A forged huge list count must fail before allocating.
        let mut w = Writer::default();
        w.uint(u64::MAX);
        let bytes = w.into_vec();
        assert!(matches!(
            Reader::new(&bytes).list(|r| r.u8()),
            Err(Error::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn duplicate_map_keys_rejected() {
        let bytes = [2, 1, b'a', 1, b'x', 1, b'a', 1, b'y'];
        assert!(matches!(
            Reader::new(&bytes).str_map(|r| r.str()),
            Err(Error::DuplicateMapKey { .. })
        ));
    }
}
