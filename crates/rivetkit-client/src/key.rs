//! Actor keys and the URL pieces built from them.

/// Serializes a key the way the engine stores it (engine-api.md §7.9): `/` for the empty key,
/// otherwise the components joined by `/` with `\` and `/` escaped and an empty component
/// written `\0`.
pub fn serialize_key(key: &[String]) -> String {
    if key.is_empty() {
        return "/".to_string();
    }
    let mut out = String::new();
    for (i, part) in key.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if part.is_empty() {
            out.push_str("\\0");
            continue;
        }
        for c in part.chars() {
            if c == '\\' || c == '/' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Percent-encodes like JavaScript's `encodeURIComponent`, which is what the npm client uses
/// for path segments and query values.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let unreserved = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if unreserved {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn serializes_keys_like_the_engine() {
        assert_eq!(serialize_key(&[]), "/");
        assert_eq!(serialize_key(&key(&["k"])), "k");
        assert_eq!(serialize_key(&key(&["a", "b"])), "a/b");
        assert_eq!(serialize_key(&key(&["a/b", "c\\d"])), "a\\/b/c\\\\d");
        assert_eq!(serialize_key(&key(&["", "x"])), "\\0/x");
    }

    #[test]
    fn encodes_components_like_encode_uri_component() {
        assert_eq!(encode_component("a b/c@d"), "a%20b%2Fc%40d");
        assert_eq!(encode_component("group.sub-x_y~"), "group.sub-x_y~");
        assert_eq!(encode_component("é"), "%C3%A9");
    }
}
