//! Actor key serialization (engine-api.md §7.9).
//!
//! Clients model a key as an array of strings; on the wire it is one string. The engine treats
//! that string as opaque; only the gateway's query form builds one from components.

/// The serialized form of the empty key.
pub const EMPTY_KEY: &str = "/";

const SEPARATOR: char = '/';
const ESCAPE: char = '\\';

/// Serializes key components: `[]` → `/`; otherwise each component is escaped (`\` → `\\`,
/// `/` → `\/`, an empty component → `\0`) and the results are joined with `/`.
pub fn serialize<S: AsRef<str>>(components: &[S]) -> String {
    if components.is_empty() {
        return EMPTY_KEY.to_owned();
    }
    let mut out = String::new();
    for (i, component) in components.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        let component = component.as_ref();
        if component.is_empty() {
            out.push_str("\\0");
            continue;
        }
        for c in component.chars() {
            if c == ESCAPE || c == SEPARATOR {
                out.push(ESCAPE);
            }
            out.push(c);
        }
    }
    out
}

/// Deserializes a key string the way clients read `Actor.key`: `None` or `/` → `[]`; `\x`
/// yields `x` except `\0`, which marks an empty component; an unescaped `/` ends a component;
/// a trailing lone `\` is kept literally.
pub fn deserialize(key: Option<&str>) -> Vec<String> {
    let key = match key {
        None => return Vec::new(),
        Some(k) if k == EMPTY_KEY => return Vec::new(),
        Some(k) => k,
    };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaping = false;
    let mut empty_component = false;
    for c in key.chars() {
        if escaping {
            if c == '0' {
                empty_component = true;
            } else {
                current.push(c);
            }
            escaping = false;
        } else if c == ESCAPE {
            escaping = true;
        } else if c == SEPARATOR {
            // `\0` wins over any characters that followed it in the same component, as the
            // reference client does; canonical keys never have such characters.
            parts.push(if empty_component {
                String::new()
            } else {
                std::mem::take(&mut current)
            });
            current.clear();
            empty_component = false;
        } else {
            current.push(c);
        }
    }
    if escaping {
        current.push(ESCAPE);
        parts.push(current);
    } else if empty_component {
        parts.push(String::new());
    } else if !current.is_empty() || !parts.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_key_is_a_slash() {
        assert_eq!(serialize::<&str>(&[]), "/");
        assert_eq!(deserialize(Some("/")), Vec::<String>::new());
        assert_eq!(deserialize(None), Vec::<String>::new());
    }

    #[test]
    fn components_are_joined_and_escaped() {
        assert_eq!(serialize(&["a", "b"]), "a/b");
        assert_eq!(serialize(&["a/b", "c\\d"]), "a\\/b/c\\\\d");
        assert_eq!(serialize(&["", "x", ""]), "\\0/x/\\0");
        assert_eq!(serialize(&["0"]), "0");
    }

    #[test]
    fn deserialization_reads_escapes() {
        assert_eq!(deserialize(Some("a\\/b/c\\\\d")), vec!["a/b", "c\\d"]);
        assert_eq!(deserialize(Some("\\0/x/\\0")), vec!["", "x", ""]);
        assert_eq!(deserialize(Some("a/")), vec!["a", ""]);
        assert_eq!(deserialize(Some("")), Vec::<String>::new());
        assert_eq!(deserialize(Some("a\\")), vec!["a\\"]);
    }

    proptest! {
        #[test]
        fn round_trips(components in proptest::collection::vec(".*", 0..6)) {
            let serialized = serialize(&components);
            prop_assert_eq!(deserialize(Some(&serialized)), components);
        }

        #[test]
        fn round_trips_with_separators_and_escapes(
            components in proptest::collection::vec("[a/\\\\0]{0,4}", 0..6)
        ) {
            let serialized = serialize(&components);
            prop_assert_eq!(deserialize(Some(&serialized)), components);
        }
    }
}
