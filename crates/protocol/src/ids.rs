//! Identifiers that are not interchangeable: a [`ClientId`] where a client
//! is meant, a [`UserId`] (the `sub`) where a user is, a [`Kid`] where one
//! of Gatehouse's own keys is. All are opaque strings on
//! the wire and in the database; the types only stop one being passed where
//! another belongs. They read as `&str` (`Deref`), compare
//! with strings, and serialise as plain strings.

use std::{borrow::Borrow, fmt, ops::Deref};

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$m:meta])* $ty:ident) => {
        $(#[$m])*
        #[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            pub fn new(s: impl Into<String>) -> Self {
                $ty(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl From<String> for $ty {
            fn from(s: String) -> Self {
                $ty(s)
            }
        }
        impl From<&str> for $ty {
            fn from(s: &str) -> Self {
                $ty(s.to_owned())
            }
        }
        impl From<&String> for $ty {
            fn from(s: &String) -> Self {
                $ty(s.clone())
            }
        }
        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $ty {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$ty> for str {
            fn eq(&self, other: &$ty) -> bool {
                self == other.0
            }
        }
        impl PartialEq<$ty> for &str {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$ty> for String {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }
    };
}

id! {
    /// A registered client's `client_id`.
    ClientId
}

id! {
    /// A user's stable subject identifier (`sub`).
    UserId
}

id! {
    /// The key id (`kid`) of one of Gatehouse's own keys.
    Kid
}

id! {
    /// The RFC 7638 SHA-256 thumbprint, base64url, of a client's DPoP key
    /// (RFC 9449): `cnf.jkt` in a bound token, `dpop_jkt` at /authorize.
    Jkt
}

impl Jkt {
    /// A thumbprint as sent by a client (`dpop_jkt`): exactly the 43
    /// base64url characters of a SHA-256 digest, else `None`.
    pub fn parse(s: &str) -> Option<Jkt> {
        let ok = s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Jkt(s.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire_and_compare_with_strings() {
        let c = ClientId::from("app-1");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"app-1\"");
        assert_eq!(serde_json::from_str::<ClientId>("\"app-1\"").unwrap(), c);
        assert_eq!(c, "app-1");
        assert_eq!("app-1", c);
        assert_eq!(c.len(), 5);
        assert_eq!(format!("{c} {c:?} {c:<7}|"), "app-1 \"app-1\" app-1  |");
    }

    #[test]
    fn a_thumbprint_is_43_base64url_characters() {
        let t = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        assert_eq!(Jkt::parse(t).unwrap(), t);
        for bad in [
            "",
            &t[1..],
            &format!("{t}A"),
            &t.replace('-', "+"),
            &t.replace('Z', "="),
        ] {
            assert!(Jkt::parse(bad).is_none(), "{bad}");
        }
    }
}
