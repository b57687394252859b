//! Subject and queue-group syntax.
//!
//! A subject is a non-empty list of non-empty tokens separated by `.`, e.g. `actor.abc.wake`.
//! Tokens may hold any character except whitespace, control characters, `*` and `>`: wildcard
//! subscriptions are not supported by this bus (the memory and PostgreSQL drivers match subjects
//! exactly), and rejecting the wildcard characters keeps NATS from silently treating them as
//! wildcards.

use crate::BusError;

/// Longest accepted subject, in bytes. Keeps PostgreSQL NOTIFY headers well under 8,000 bytes.
pub const MAX_SUBJECT_LEN: usize = 512;
/// Longest accepted queue group name, in bytes.
pub const MAX_GROUP_LEN: usize = 128;

/// Prefix of the reply subjects the bus creates for requests.
pub(crate) const INBOX_PREFIX: &str = "_INBOX.";

/// Checks that `subject` is a valid subject (see the module docs).
pub fn validate_subject(subject: &str) -> Result<(), BusError> {
    let fail = |reason| {
        Err(BusError::InvalidSubject {
            subject: subject.to_owned(),
            reason,
        })
    };
    if subject.is_empty() {
        return fail("empty");
    }
    if subject.len() > MAX_SUBJECT_LEN {
        return fail("longer than 512 bytes");
    }
    if subject.split('.').any(str::is_empty) {
        return fail("empty token");
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("whitespace or control character");
    }
    if subject.contains(['*', '>']) {
        return fail("wildcards are not supported");
    }
    Ok(())
}

/// Checks that `group` is a valid queue group name.
pub fn validate_group(group: &str) -> Result<(), BusError> {
    let fail = |reason| {
        Err(BusError::InvalidGroup {
            group: group.to_owned(),
            reason,
        })
    };
    if group.is_empty() {
        return fail("empty");
    }
    if group.len() > MAX_GROUP_LEN {
        return fail("longer than 128 bytes");
    }
    if group.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("whitespace or control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dotted_tokens() {
        assert!(validate_subject("a").is_ok());
        assert!(validate_subject("actor.0af3-x.wake").is_ok());
        assert!(validate_subject("_INBOX.abc.1").is_ok());
    }

    #[test]
    fn rejects_bad_subjects() {
        for bad in [
            "", ".", "a.", ".a", "a..b", "a b", "a\tb", "a.*", "a.>", "a\nb",
        ] {
            assert!(
                matches!(validate_subject(bad), Err(BusError::InvalidSubject { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(validate_subject(&"a".repeat(MAX_SUBJECT_LEN + 1)).is_err());
    }

    #[test]
    fn groups() {
        assert!(validate_group("workers").is_ok());
        assert!(matches!(
            validate_group(""),
            Err(BusError::InvalidGroup { .. })
        ));
        assert!(validate_group("a b").is_err());
    }
}
