//! Percent-decoding for path segments and query values.
//!
//! Lenient like the reference: a `%` that is not followed by two hex digits is kept literally;
//! only bytes that do not form UTF-8 after decoding are an error.

/// Decodes `%XX` escapes (and `+` as a space when `plus_as_space`, the form-urlencoded rule for
/// query values). `None` when the decoded bytes are not UTF-8.
pub(crate) fn decode(raw: &str, plus_as_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_escapes_and_keeps_malformed_ones() {
        assert_eq!(decode("a%20b%2Fc", false).unwrap(), "a b/c");
        assert_eq!(decode("100%", false).unwrap(), "100%");
        assert_eq!(decode("%zz%4", false).unwrap(), "%zz%4");
        assert_eq!(decode("%C3%A9", false).unwrap(), "é");
    }

    #[test]
    fn plus_is_a_space_only_in_form_values() {
        assert_eq!(decode("a+b", true).unwrap(), "a b");
        assert_eq!(decode("a+b", false).unwrap(), "a+b");
        assert_eq!(decode("a%2Bb", true).unwrap(), "a+b");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(decode("%FF", false), None);
        assert_eq!(decode("%C3", true), None);
    }
}
