//! CBOR for [`Value`]: a total decoder and an encoder that writes the bytes cbor-x 1.6 (the
//! npm client's CBOR library, default encoder `{useRecords:false}` under Node) writes for the
//! same JavaScript value.
//!
//! Encoder rules copied from cbor-x: plain objects always use a 2-byte map length (`b9 00 01`),
//! a JavaScript `Map` is tag 259 around a map with the shortest length, numbers are the shortest
//! integer inside [-2^32, 2^32) and float64 otherwise, bigints are 8-byte integers, strings,
//! byte strings, arrays and tags use the shortest header.

use crate::error::Error;
use crate::value::{Value, TAG_MAP, TAG_NEG_BIGNUM, TAG_POS_BIGNUM};

/// Deepest nesting of arrays, maps and tags the decoder accepts.
pub const MAX_DEPTH: usize = 128;

/// Decodes one CBOR data item that spans all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
    let mut decoder = Decoder { bytes, pos: 0 };
    let value = decoder.item(0)?;
    if decoder.pos != bytes.len() {
        return Err(Error::TrailingBytes {
            count: bytes.len() - decoder.pos,
        });
    }
    Ok(value)
}

/// Encodes a value as cbor-x would.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out);
    out
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    write_value(value, out, false);
}

/// What an initial byte announces.
enum Arg {
    /// A definite argument (length, integer, tag number or simple value).
    Definite(u64),
    /// Additional information 31.
    Indefinite,
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(Error::UnexpectedEnd {
                offset: self.bytes.len(),
            });
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn invalid(&self, reason: &'static str) -> Error {
        Error::InvalidCbor {
            offset: self.pos,
            reason,
        }
    }

    /// Reads the argument that follows an initial byte with additional information `info`;
    /// also returns how many bytes it occupied (0, 1, 2, 4 or 8).
    fn arg(&mut self, info: u8) -> Result<(Arg, usize), Error> {
        Ok(match info {
            0..=23 => (Arg::Definite(u64::from(info)), 0),
            24 => (Arg::Definite(u64::from(self.byte()?)), 1),
            25 => {
                let b = self.take(2)?;
                (
                    Arg::Definite(u64::from(u16::from_be_bytes([b[0], b[1]]))),
                    2,
                )
            }
            26 => {
                let b = self.take(4)?;
                (
                    Arg::Definite(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))),
                    4,
                )
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (Arg::Definite(u64::from_be_bytes(a)), 8)
            }
            31 => (Arg::Indefinite, 0),
            _ => return Err(self.invalid("reserved additional information")),
        })
    }

    fn definite_len(&mut self, info: u8) -> Result<usize, Error> {
        match self.arg(info)? {
            (Arg::Definite(n), _) => {
                usize::try_from(n).map_err(|_| self.invalid("length too large"))
            }
            (Arg::Indefinite, _) => Err(self.invalid("indefinite length not supported here")),
        }
    }

    /// Whether the next byte is a break (`ff`); consumes it if so.
    fn at_break(&mut self) -> Result<bool, Error> {
        match self.bytes.get(self.pos) {
            Some(0xff) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(Error::UnexpectedEnd {
                offset: self.bytes.len(),
            }),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        let start = self.pos;
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        match major {
            0 | 1 => {
                let (arg, width) = match self.arg(info)? {
                    (Arg::Definite(n), w) => (n, w),
                    (Arg::Indefinite, _) => {
                        self.pos = start;
                        return Err(self.invalid("indefinite integer"));
                    }
                };
                let value = if major == 0 {
                    i128::from(arg)
                } else {
                    -1 - i128::from(arg)
                };
                // cbor-x yields a bigint for the 8-byte form and a number otherwise.
                Ok(if width == 8 {
                    Value::BigInt(value)
                } else {
                    // At most 4 bytes of argument: always within i64.
                    Value::Int(value as i64)
                })
            }
            2 => {
                let len = self.definite_len(info)?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            3 => {
                let len = self.definite_len(info)?;
                let offset = self.pos;
                let raw = self.take(len)?;
                match std::str::from_utf8(raw) {
                    Ok(s) => Ok(Value::Text(s.to_owned())),
                    Err(_) => Err(Error::InvalidUtf8 { offset }),
                }
            }
            4 => match self.arg(info)? {
                (Arg::Definite(n), _) => {
                    // Every element takes at least one byte: a count beyond the remaining input
                    // can never be satisfied, so reject it before reserving memory.
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|n| *n <= self.remaining())
                        .ok_or(Error::UnexpectedEnd {
                            offset: self.bytes.len(),
                        })?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.item(depth + 1)?);
                    }
                    Ok(Value::Array(items))
                }
                (Arg::Indefinite, _) => {
                    let mut items = Vec::new();
                    while !self.at_break()? {
                        items.push(self.item(depth + 1)?);
                    }
                    Ok(Value::Array(items))
                }
            },
            5 => match self.arg(info)? {
                (Arg::Definite(n), _) => {
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|n| n.saturating_mul(2) <= self.remaining())
                        .ok_or(Error::UnexpectedEnd {
                            offset: self.bytes.len(),
                        })?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = self.item(depth + 1)?;
                        let v = self.item(depth + 1)?;
                        entries.push((k, v));
                    }
                    Ok(Value::Map(entries))
                }
                (Arg::Indefinite, _) => {
                    let mut entries = Vec::new();
                    while !self.at_break()? {
                        let k = self.item(depth + 1)?;
                        let v = self.item(depth + 1)?;
                        entries.push((k, v));
                    }
                    Ok(Value::Map(entries))
                }
            },
            6 => {
                let tag = match self.arg(info)? {
                    (Arg::Definite(n), _) => n,
                    (Arg::Indefinite, _) => {
                        self.pos = start;
                        return Err(self.invalid("indefinite tag"));
                    }
                };
                let inner = self.item(depth + 1)?;
                Ok(tagged(tag, inner))
            }
            _ => self.simple_or_float(info, start),
        }
    }

    fn simple_or_float(&mut self, info: u8, start: usize) -> Result<Value, Error> {
        match info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            23 => Ok(Value::Undefined),
            0..=19 => Ok(Value::Simple(info)),
            24 => {
                let n = self.byte()?;
                if n < 32 {
                    self.pos = start;
                    return Err(self.invalid("simple value below 32 in two-byte form"));
                }
                Ok(Value::Simple(n))
            }
            25 => {
                let b = self.take(2)?;
                Ok(Value::number(f16_to_f64(u16::from_be_bytes([b[0], b[1]]))))
            }
            26 => {
                let b = self.take(4)?;
                Ok(Value::number(f64::from(f32::from_be_bytes([
                    b[0], b[1], b[2], b[3],
                ]))))
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Ok(Value::number(f64::from_be_bytes(a)))
            }
            31 => {
                self.pos = start;
                Err(self.invalid("break outside an indefinite-length item"))
            }
            _ => {
                self.pos = start;
                Err(self.invalid("reserved additional information"))
            }
        }
    }
}

/// Builds the value for a tag; bignums become [`Value::BigInt`] when they fit, as cbor-x
/// turns them into bigints.
fn tagged(tag: u64, inner: Value) -> Value {
    if tag == TAG_POS_BIGNUM || tag == TAG_NEG_BIGNUM {
        if let Value::Bytes(b) = &inner {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            let digits = &b[first..];
            if digits.len() <= 16 {
                let n = digits
                    .iter()
                    .fold(0u128, |acc, d| (acc << 8) | u128::from(*d));
                if let Ok(n) = i128::try_from(n) {
                    return Value::BigInt(if tag == TAG_POS_BIGNUM { n } else { -1 - n });
                }
            }
        }
    }
    Value::Tag(tag, Box::new(inner))
}

fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    let magnitude = match exp {
        0 => frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    };
    sign * magnitude
}

fn write_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 0x100 {
        out.push(m | 24);
        out.push(n as u8);
    } else if n < 0x1_0000 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n < 0x1_0000_0000 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_len(major: u8, len: usize, out: &mut Vec<u8>) {
    write_head(major, len as u64, out);
}

/// Writes a JavaScript number that is an integer the way cbor-x does.
fn write_js_int(i: i64, out: &mut Vec<u8>) {
    if (0..0x1_0000_0000).contains(&i) {
        write_head(0, i as u64, out);
    } else if (-0x1_0000_0000..0).contains(&i) {
        write_head(1, (-1 - i) as u64, out);
    } else if i.abs() <= crate::value::MAX_SAFE_INTEGER {
        out.push(0xfb);
        out.extend_from_slice(&(i as f64).to_be_bytes());
    } else {
        // Not a JavaScript number; keep it exact.
        write_bigint(i128::from(i), out);
    }
}

fn write_bigint(i: i128, out: &mut Vec<u8>) {
    const TWO_64: i128 = 1 << 64;
    if (0..TWO_64).contains(&i) {
        out.push(0x1b);
        out.extend_from_slice(&(i as u64).to_be_bytes());
    } else if i < 0 && i > -TWO_64 {
        // cbor-x's bound is strict: -2^64 itself becomes a bignum.
        out.push(0x3b);
        out.extend_from_slice(&((-1 - i) as u64).to_be_bytes());
    } else {
        let (tag, mut n) = if i >= 0 {
            (0xc2, i as u128)
        } else {
            (0xc3, (-1 - i) as u128)
        };
        let mut digits = Vec::with_capacity(16);
        while n > 0 {
            digits.push((n & 0xff) as u8);
            n >>= 8;
        }
        digits.reverse();
        out.push(tag);
        write_len(2, digits.len(), out);
        out.extend_from_slice(&digits);
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>, in_js_map: bool) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Undefined => out.push(0xf7),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Int(i) => write_js_int(*i, out),
        Value::BigInt(i) => write_bigint(*i, out),
        Value::Float(f) => {
            let f = *f;
            if f.fract() == 0.0 && (-4_294_967_296.0..4_294_967_296.0).contains(&f) {
                // An integral number (including -0) is written as an integer by cbor-x.
                write_js_int(f as i64, out);
            } else {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Bytes(b) => {
            write_len(2, b.len(), out);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            write_len(3, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            write_len(4, items.len(), out);
            for item in items {
                write_value(item, out, false);
            }
        }
        Value::Map(entries) => {
            if in_js_map {
                write_len(5, entries.len(), out);
            } else if entries.len() < 0x1_0000 {
                // cbor-x reserves a 2-byte count for every plain object.
                out.push(0xb9);
                out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
            } else {
                out.push(0xba);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            }
            for (k, v) in entries {
                write_value(k, out, false);
                write_value(v, out, false);
            }
        }
        Value::Tag(tag, inner) => {
            write_head(6, *tag, out);
            write_value(inner, out, *tag == TAG_MAP);
        }
        Value::Simple(n) => {
            if *n < 24 {
                out.push(0xe0 | n);
            } else {
                out.push(0xf8);
                out.push(*n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn writes_what_cbor_x_writes() {
        // From `cbor.encode([5n, Uint8Array[1,2,3], Set[1], Map{1:2}, 1.5, 2**40, -0, undefined, ArrayBuffer(2)])`.
        let v = Value::Array(vec![
            Value::BigInt(5),
            Value::uint8_array(vec![1, 2, 3]),
            Value::set(vec![Value::Int(1)]),
            Value::js_map(vec![(Value::Int(1), Value::Int(2))]),
            Value::Float(1.5),
            Value::number(2f64.powi(40)),
            Value::number(-0.0),
            Value::Undefined,
            Value::Bytes(vec![0, 0]),
        ]);
        assert_eq!(
            hex(&encode(&v)),
            "891b0000000000000005d84043010203d901028101d90103a10102fb3ff8000000000000fb427000000000000000f7420000"
        );
        assert_eq!(decode(&encode(&v)).unwrap(), v);
    }

    #[test]
    fn plain_objects_use_two_byte_counts() {
        let v = Value::object([("a", Value::Int(1))]);
        assert_eq!(hex(&encode(&v)), "b90001616101");
        // Compact headers (as the reference server writes) decode to the same value.
        assert_eq!(decode(&[0xa1, 0x61, 0x61, 0x01]).unwrap(), v);
    }

    #[test]
    fn integer_widths_follow_cbor_x() {
        assert_eq!(hex(&encode(&Value::Int(-(1 << 31) - 1))), "3a80000000");
        assert_eq!(hex(&encode(&Value::Int(-(1 << 32)))), "3affffffff");
        assert_eq!(
            hex(&encode(&Value::Int(-(1 << 32) - 1))),
            "fbc1f0000000100000"
        );
        assert_eq!(hex(&encode(&Value::Int(1 << 32))), "fb41f0000000000000");
        assert_eq!(
            hex(&encode(&Value::BigInt(-(1 << 64)))),
            "c348ffffffffffffffff"
        );
        assert_eq!(
            hex(&encode(&Value::BigInt(1 - (1 << 64)))),
            "3bfffffffffffffffe"
        );
        assert_eq!(
            hex(&encode(&Value::BigInt(1 << 64))),
            "c249010000000000000000"
        );
        assert_eq!(hex(&encode(&Value::BigInt(-1))), "3b0000000000000000");
        assert_eq!(decode(&[0xf9, 0x3e, 0x00]).unwrap(), Value::Float(1.5));
        assert_eq!(decode(&[0x19, 0x00, 0x05]).unwrap(), Value::Int(5));
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        assert!(decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        let deep = vec![0x81; 100_000];
        assert_eq!(decode(&deep), Err(Error::TooDeep { limit: MAX_DEPTH }));
        assert!(decode(&[0xff]).is_err());
        assert!(decode(&[0x5f, 0xff]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
    }
}
