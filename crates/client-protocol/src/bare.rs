//! BARE primitives with the exact acceptance rules of `@rivetkit/bare-ts` 0.6 (the npm
//! client's BARE runtime): `uint` is LEB128 of at most 10 bytes in canonical form, lengths are
//! canonical LEB128 below 2^32, `bool` is 0 or 1, strings are strict UTF-8, and the
//! embedded-version helpers of `vbare` put a u16 little-endian version in front.

use crate::error::Error;

/// bare-ts refuses buffers larger than this (its default `maxBufferLength`).
pub const MAX_MESSAGE_LEN: usize = 32 * 1024 * 1024;

/// A cursor over BARE input.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn end(&self) -> Error {
        Error::UnexpectedEnd {
            offset: self.bytes.len(),
        }
    }

    /// Fails unless all input was consumed.
    pub fn finish(&self) -> Result<(), Error> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                count: self.bytes.len() - self.pos,
            })
        }
    }

    /// A single byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| self.end())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() - self.pos < n {
            return Err(self.end());
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// `bool`: exactly 0 or 1.
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::InvalidBool(b)),
        }
    }

    /// `uint`: LEB128, at most 10 bytes, no trailing zero byte, value below 2^64.
    pub fn uint(&mut self) -> Result<u64, Error> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(Error::InvalidVarint { offset: start });
            }
            value |= bits << (7 * i);
            if b < 0x80 {
                if b == 0 && i > 0 {
                    return Err(Error::InvalidVarint { offset: start });
                }
                return Ok(value);
            }
        }
        Err(Error::InvalidVarint { offset: start })
    }

    /// A length (`readUintSafe32`): canonical LEB128 of at most 5 bytes, below 2^32.
    pub fn length(&mut self) -> Result<usize, Error> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 || i == 4 {
                if (b == 0 && i > 0) || (i == 4 && b > 0x0f) {
                    return Err(Error::InvalidVarint { offset: start });
                }
                return usize::try_from(value).map_err(|_| Error::InvalidVarint { offset: start });
            }
        }
        Err(Error::InvalidVarint { offset: start })
    }

    /// `u64`: 8 bytes little-endian.
    pub fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// `data`: a length, then that many bytes.
    pub fn data(&mut self) -> Result<&'a [u8], Error> {
        let len = self.length()?;
        self.take(len)
    }

    /// `str`: a length, then that many bytes of UTF-8.
    pub fn string(&mut self) -> Result<String, Error> {
        let offset = self.pos;
        let raw = self.data()?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| Error::InvalidUtf8 { offset })
    }

    /// `optional<T>`: a bool, then `T` when it is true.
    pub fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        if self.bool()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Splits the u16 little-endian version prefix from a BARE message.
pub fn split_version(bytes: &[u8]) -> Result<(u16, &[u8]), Error> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(Error::TooLarge {
            len: bytes.len(),
            limit: MAX_MESSAGE_LEN,
        });
    }
    match bytes {
        [lo, hi, rest @ ..] => Ok((u16::from_le_bytes([*lo, *hi]), rest)),
        _ => Err(Error::UnexpectedEnd {
            offset: bytes.len(),
        }),
    }
}

/// BARE output.
pub struct Writer {
    /// Bytes written so far.
    pub out: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with the given version prefix.
    pub fn with_version(version: u16) -> Self {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&version.to_le_bytes());
        Writer { out }
    }

    /// A single byte.
    pub fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    /// `bool`.
    pub fn bool(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    /// `uint` (LEB128).
    pub fn uint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    /// `u64` little-endian.
    pub fn u64(&mut self, n: u64) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    /// `data`.
    pub fn data(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    /// `str`.
    pub fn string(&mut self, s: &str) {
        self.data(s.as_bytes());
    }

    /// `optional<T>`.
    pub fn optional<T>(&mut self, v: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.bool(true);
                write(self, v);
            }
            None => self.bool(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_rules_match_bare_ts() {
        let read = |b: &[u8]| Reader::new(b).uint();
        assert_eq!(read(&[0x00]), Ok(0));
        assert_eq!(read(&[0x7f]), Ok(127));
        assert_eq!(read(&[0x80, 0x01]), Ok(128));
        assert!(read(&[0x80, 0x00]).is_err());
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(read(&over).is_err());
        let mut w = Writer { out: Vec::new() };
        w.uint(u64::MAX);
        assert_eq!(w.out, max);
    }

    #[test]
    fn length_rules_match_bare_ts() {
        let read = |b: &[u8]| Reader::new(b).length();
        assert_eq!(read(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(u32::MAX as usize));
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0x10]).is_err());
        assert!(read(&[0x85, 0x00]).is_err());
        assert!(Reader::new(&[0x05, 1, 2]).data().is_err());
    }
}
