//! Rivet ids: actor, namespace and ray ids share one 30-character base-36 form.
//!
//! Layout (engine-api.md §5): 19 bytes `[0x01] ‖ 16 random bytes (a v4 UUID) ‖ label as u16 BE`,
//! read as a little-endian integer and written in base 36, least-significant digit first,
//! exactly 30 digits. The datacenter label therefore lands in the last characters (`…l00` for
//! label 1), which tells every node which datacenter owns an id.

use std::fmt;
use std::str::FromStr;

const VERSION: u8 = 1;
const LEN: usize = 30;
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A parsed id. It carries its text form: ids are printed on hot paths (ray ids, bus subjects,
/// every tunnelled request), and the base-36 conversion is a few dozen divisions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    uuid: [u8; 16],
    label: u16,
    text: [u8; LEN],
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 30 characters.
    #[error("invalid ID length: {0}")]
    Length(usize),
    /// A character outside `0-9a-z`.
    #[error("invalid ID character: {0:?}")]
    Character(char),
    /// The value does not fit in 19 bytes.
    #[error("ID out of range")]
    Overflow,
    /// The version byte is not 1.
    #[error("unsupported ID version: {0}")]
    Version(u8),
}

impl Id {
    /// A new random id in the datacenter with `label`.
    pub fn new(label: u16) -> Id {
        let mut uuid: [u8; 16] = rand::random();
        // RFC 4122 version 4, variant 1.
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        Id::from_parts(uuid, label)
    }

    /// An id from its parts.
    pub fn from_parts(uuid: [u8; 16], label: u16) -> Id {
        Id {
            uuid,
            label,
            text: encode(uuid, label),
        }
    }

    /// The 16 UUID bytes.
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// The datacenter label.
    pub fn label(&self) -> u16 {
        self.label
    }
}

/// Packs as two tuple elements, the 16 UUID bytes and the label, as namespace keys always did.
impl rivet_store::tuple::Pack for Id {
    fn pack_into(&self, out: &mut Vec<u8>) {
        rivet_store::tuple::Id(self.uuid).pack_into(out);
        i64::from(self.label).pack_into(out);
    }
}

impl Id {
    /// The id packed by [`rivet_store::tuple::Pack`], read back from two unpacked elements.
    pub fn from_elements(
        uuid: &rivet_store::tuple::Element,
        label: &rivet_store::tuple::Element,
    ) -> Option<Id> {
        use rivet_store::tuple::Element;
        match (uuid, label) {
            (Element::Id(uuid), Element::Int(label)) => {
                Some(Id::from_parts(*uuid, u16::try_from(*label).ok()?))
            }
            _ => None,
        }
    }
}

/// 36⁶, the largest power of 36 below 2³²: the conversions work six digits at a time on
/// 32-bit limbs, in 64-bit arithmetic (a division by a constant is a multiplication).
const CHUNK: u64 = 36u64.pow(6);

/// The 30-character text of an id: the little-endian 152-bit number of its 19 bytes in base
/// 36, least significant digit first.
fn encode(uuid: [u8; 16], label: u16) -> [u8; LEN] {
    let mut bytes = [0u8; 20];
    bytes[0] = VERSION;
    bytes[1..17].copy_from_slice(&uuid);
    bytes[17..19].copy_from_slice(&label.to_be_bytes());
    let mut limbs = [0u32; 5];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(4)) {
        *limb = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let mut out = [b'0'; LEN];
    for six in out.chunks_exact_mut(6) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let acc = (rem << 32) | u64::from(*limb);
            *limb = (acc / CHUNK) as u32;
            rem = acc % CHUNK;
        }
        for digit in six.iter_mut() {
            *digit = DIGITS[(rem % 36) as usize];
            rem /= 36;
        }
    }
    out
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every byte of `text` is an ASCII digit or letter.
        f.write_str(std::str::from_utf8(&self.text).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Id {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Id, IdError> {
        if s.len() != LEN {
            return Err(IdError::Length(s.chars().count()));
        }
        // Digit values, least significant first (the text's last character is the most
        // significant digit).
        let mut digits = [0u8; LEN];
        for (slot, c) in digits.iter_mut().rev().zip(s.chars().rev()) {
            *slot = c.to_digit(36).ok_or(IdError::Character(c))? as u8;
        }
        let mut limbs = [0u32; 5];
        for six in digits.chunks_exact(6).rev() {
            let mut carry = six
                .iter()
                .rev()
                .fold(0u64, |acc, d| acc * 36 + u64::from(*d));
            for limb in limbs.iter_mut() {
                let acc = u64::from(*limb) * CHUNK + carry;
                *limb = acc as u32;
                carry = acc >> 32;
            }
            if carry != 0 {
                return Err(IdError::Overflow);
            }
        }
        // 19 bytes: the fifth limb holds three.
        if limbs[4] >> 24 != 0 {
            return Err(IdError::Overflow);
        }
        let mut n = [0u8; 20];
        for (chunk, limb) in n.chunks_exact_mut(4).zip(limbs) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        if n[0] != VERSION {
            return Err(IdError::Version(n[0]));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&n[1..17]);
        let label = u16::from_be_bytes([n[17], n[18]]);
        // Lowercase text of the fixed length is the one encoding of its value: keep it rather
        // than encoding the value again.
        if s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            let mut text = [0u8; LEN];
            text.copy_from_slice(s.as_bytes());
            return Ok(Id { uuid, label, text });
        }
        Ok(Id::from_parts(uuid, label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uuid(hex: &str) -> [u8; 16] {
        let hex: String = hex.chars().filter(|c| *c != '-').collect();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn matches_the_reference_example() {
        let id = Id::from_parts(uuid("4ee4d164-db50-4bc1-a88b-a9ba6fc86fb6"), 1);
        assert_eq!(id.to_string(), "t1s4f27ni26z168a3jwmydor4jcl00");
        assert_eq!("t1s4f27ni26z168a3jwmydor4jcl00".parse::<Id>().unwrap(), id);
        assert_eq!("T1S4F27NI26Z168A3JWMYDOR4JCL00".parse::<Id>().unwrap(), id);
    }

    #[test]
    fn new_ids_end_with_their_label() {
        assert!(Id::new(1).to_string().ends_with("l00"));
        assert_eq!(Id::new(7).label(), 7);
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert_eq!("abc".parse::<Id>(), Err(IdError::Length(3)));
        assert_eq!(
            "t1s4f27ni26z168a3jwmydor4jc!00".parse::<Id>(),
            Err(IdError::Character('!'))
        );
        assert!(matches!(
            "000000000000000000000000000000".parse::<Id>(),
            Err(IdError::Version(0))
        ));
        assert_eq!(
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".parse::<Id>(),
            Err(IdError::Overflow)
        );
    }

    /// The conversion by definition: the 19-byte number divided by 36 once per digit.
    fn encode_digit_by_digit(uuid: [u8; 16], label: u16) -> String {
        let mut n = [0u8; 19];
        n[0] = VERSION;
        n[1..17].copy_from_slice(&uuid);
        n[17..19].copy_from_slice(&label.to_be_bytes());
        let mut out = String::new();
        for _ in 0..LEN {
            let mut rem: u32 = 0;
            for byte in n.iter_mut().rev() {
                let acc = (rem << 8) | u32::from(*byte);
                *byte = (acc / 36) as u8;
                rem = acc % 36;
            }
            out.push(DIGITS[rem as usize] as char);
        }
        out
    }

    proptest! {
        #[test]
        fn text_is_the_base_36_number(bytes in any::<[u8; 16]>(), label in any::<u16>()) {
            prop_assert_eq!(Id::from_parts(bytes, label).to_string(), encode_digit_by_digit(bytes, label));
        }

        #[test]
        fn round_trips(bytes in any::<[u8; 16]>(), label in any::<u16>()) {
            let id = Id::from_parts(bytes, label);
            let text = id.to_string();
            prop_assert_eq!(text.len(), 30);
            prop_assert_eq!(text.parse::<Id>().unwrap(), id);
            // Upper case parses to the same id, printed in the canonical lower case.
            let upper = text.to_uppercase().parse::<Id>().unwrap();
            prop_assert_eq!(upper, id);
            prop_assert_eq!(upper.to_string(), text);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Id>();
        }
    }
}
