//! The rules a new password must meet (NIST SP 800-63B-4, 3.1.1.2): a
//! minimum length (`password_min_length`), at most 1 KiB, not one of
//! the commonly used passwords, and not built on context-specific words
//! (the user's username or email name, the service's name); no
//! composition rules (no "a digit and a
//! symbol"), which the guideline forbids. Applied wherever a password is
//! set (`users create`, `users set-password`), never at sign-in.
//!
//! Length is counted in Unicode scalar values (`char`s) of the password as
//! given; it is not normalized (NFC) first, so a character typed as a base
//! letter and a combining mark counts as two. The upper limit is in bytes
//! (UTF-8), the limit the hasher has always had.
//!
//! The list of common passwords is `data/common-passwords.txt`: the 19,640
//! lowercased passwords Django ships (`common-passwords.txt.gz`, compiled
//! by Royce Williams), BSD 3-Clause licence; provenance, checksums and the
//! licence text are in `data/common-passwords.LICENSE`. It is compared
//! case-insensitively.

use std::{collections::HashSet, sync::LazyLock};

use crate::password::MAX_PASSWORD_BYTES;

/// The least `password_min_length` may be: NIST SP 800-63B-4 allows no
/// shorter password even beside a second factor.
pub const MIN_MIN_LENGTH: usize = 8;
/// The most `password_min_length` may be: the guideline asks that
/// passwords of at least 64 characters be allowed, so no minimum above it.
pub const MAX_MIN_LENGTH: usize = 64;

/// The longest password accepted, in bytes (UTF-8).
pub const MAX_BYTES: usize = MAX_PASSWORD_BYTES;

/// The bundled list, one lowercased password a line.
const COMMON: &str = include_str!("../data/common-passwords.txt");

static COMMON_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON.lines().filter(|l| !l.is_empty()).collect());

/// Which rule a password broke. `Display` names the rule (and never the
/// password), for the operator or the person choosing it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password is too short: it must have at least {min} characters")]
    TooShort { min: usize },
    #[error("the password is too long: it must be at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("the password is one of the most commonly used passwords; choose another")]
    Common,
    #[error(
        "the password contains the username, the email name or the service's name; choose another"
    )]
    Personal,
}

/// Context-specific words shorter than this are not looked for: short
/// names occur inside unrelated passwords.
const MIN_WORD: usize = 4;

/// The service's own name, refused inside any password.
const SERVICE: &str = "gatehouse";

/// Checks a new password against the policy, with `min_len` the least
/// number of characters (the setting `password_min_length`) and
/// `personal` the user's username and email address (either may be
/// empty): a password containing one of them (an email by its part
/// before `@`), in any case, is refused.
pub fn check(password: &str, min_len: usize, personal: &[&str]) -> Result<(), PolicyError> {
    if password.len() > MAX_BYTES {
        return Err(PolicyError::TooLong);
    }
    if password.chars().count() < min_len {
        return Err(PolicyError::TooShort { min: min_len });
    }
    if is_common(password) {
        return Err(PolicyError::Common);
    }
    if is_personal(password, personal) {
        return Err(PolicyError::Personal);
    }
    Ok(())
}

/// Whether `password` contains a context-specific word.
fn is_personal(password: &str, personal: &[&str]) -> bool {
    let lower = password.to_lowercase();
    personal
        .iter()
        .map(|w| {
            w.split('@')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase()
        })
        .chain([SERVICE.to_owned()])
        .any(|w| w.chars().count() >= MIN_WORD && lower.contains(&w))
}

/// Whether `password`, in any case, is on the bundled list.
fn is_common(password: &str) -> bool {
    COMMON_SET.contains(password.to_lowercase().as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn context_specific_words_are_refused() {
        let me = ["Alice.Walker", "alice.walker@example.com"];
        assert_eq!(
            check("my-ALICE.WALKER-2026", 12, &me),
            Err(PolicyError::Personal)
        );
        assert_eq!(
            check("x-gatehouse-password-x", 12, &[]),
            Err(PolicyError::Personal)
        );
        // Short names are not looked for; other names are fine.
        assert_eq!(check("bob-horse-battery", 12, &["bob"]), Ok(()));
        assert_eq!(check("carol-horse-battery", 12, &me), Ok(()));
        assert_eq!(check("carol-horse-battery", 12, &["", "@x"]), Ok(()));
    }

    #[test]
    fn the_list_is_large_lowercased_and_without_blank_lines() {
        let lines: Vec<&str> = COMMON.lines().collect();
        assert!(lines.len() >= 10_000, "{} entries", lines.len());
        assert_eq!(COMMON_SET.len(), lines.len(), "no duplicates");
        for l in &lines {
            assert!(!l.is_empty(), "no blank line");
            assert_eq!(l.to_lowercase(), *l, "{l:?} is lowercased");
        }
    }

    #[test]
    fn length_is_counted_in_characters_with_a_byte_ceiling() {
        assert_eq!(
            check("short-pw-1x", 12, &[]),
            Err(PolicyError::TooShort { min: 12 })
        );
        assert_eq!(check("twelve-chars", 12, &[]), Ok(()));
        // Twelve characters of two bytes each: long enough, though a byte
        // count would say 24 and a count of "letters" would say the same.
        assert_eq!(
            check("ééééééééééé", 12, &[]),
            Err(PolicyError::TooShort { min: 12 })
        );
        assert_eq!(check("éééééééééééé", 12, &[]), Ok(()));
        // Not normalized: e + combining acute is two characters.
        assert_eq!(
            check("e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}", 12, &[]),
            Ok(())
        );
        assert_eq!(check(&"x".repeat(MAX_BYTES), 12, &[]), Ok(()));
        assert_eq!(
            check(&"x".repeat(MAX_BYTES + 1), 12, &[]),
            Err(PolicyError::TooLong)
        );
        // 512 two-byte characters are 1024 bytes; one more is too long.
        assert_eq!(check(&"é".repeat(512), 12, &[]), Ok(()));
        assert_eq!(check(&"é".repeat(513), 12, &[]), Err(PolicyError::TooLong));
        assert_eq!(check("", 8, &[]), Err(PolicyError::TooShort { min: 8 }));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for p in [
            "password1234",
            "PASSWORD1234",
            "Qwertyuiop123",
            "1234567890123",
        ] {
            assert!(
                COMMON_SET.contains(p.to_lowercase().as_str()),
                "{p} is listed"
            );
            assert_eq!(check(p, 12, &[]), Err(PolicyError::Common), "{p}");
        }
        // Shorter listed ones are refused once the minimum allows them.
        assert_eq!(check("Password", 8, &[]), Err(PolicyError::Common));
        assert_eq!(check("correct horse battery staple", 12, &[]), Ok(()));
    }

    #[test]
    fn no_composition_rules() {
        for p in [
            "all lower case words here",
            "ONLYUPPERCASELETTERS",
            "000111222333444",
            "日本語のパスフレーズです",
        ] {
            assert_eq!(check(p, 12, &[]), Ok(()), "{p}");
        }
    }

    #[test]
    fn messages_name_the_rule_not_the_password() {
        let secret = "password1234";
        for e in [
            check(secret, 12, &[]).unwrap_err(),
            check("pw", 12, &[]).unwrap_err(),
            check(&"p".repeat(2000), 12, &[]).unwrap_err(),
        ] {
            let m = e.to_string();
            assert!(!m.contains(secret) && !m.contains("pw\""), "{m}");
        }
        assert!(PolicyError::TooShort { min: 15 }
            .to_string()
            .contains("at least 15 characters"));
        assert!(PolicyError::TooLong.to_string().contains("1024 bytes"));
        assert!(PolicyError::Common.to_string().contains("commonly used"));
    }
}
