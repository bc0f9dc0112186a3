//! Closed sets of protocol names: grant types (RFC 6749 4, 6), client
//! authentication methods (OIDC Core 9), access-token formats and the
//! token type identifiers of a token exchange (RFC 8693 3).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name outside the set a type knows. `Display` says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; use {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// One closed set of names: the variants, their wire strings, and what the
/// set is called in error messages. Generates `as_str`, `ALL`, `Display`,
/// `FromStr` and the string serde form.
macro_rules! names {
    ($(#[$m:meta])* $ty:ident, $what:literal, $expected:literal { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $($(#[$vm])* $v),+ }

        impl $ty {
            /// Every value, in the order documentation lists them.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];
            /// The wire (and stored) name.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $ty::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownName {
                    what: $what,
                    value: s.to_owned(),
                    expected: $expected,
                })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

names! {
    /// Grant types Gatehouse implements.
    GrantType, "grant type", "authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code or urn:ietf:params:oauth:grant-type:token-exchange" {
        AuthorizationCode => "authorization_code",
        RefreshToken => "refresh_token",
        ClientCredentials => "client_credentials",
        /// RFC 8628 3.4.
        DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        /// RFC 8693 2.1.
        TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
    }
}

names! {
    /// Token type identifiers (RFC 8693 3) Gatehouse reads or issues in a
    /// token exchange: its access tokens and its ID tokens.
    TokenTypeUri, "token type", "urn:ietf:params:oauth:token-type:access_token or urn:ietf:params:oauth:token-type:id_token" {
        AccessToken => "urn:ietf:params:oauth:token-type:access_token",
        IdToken => "urn:ietf:params:oauth:token-type:id_token",
    }
}

names! {
    /// Client authentication methods at the token endpoint (OIDC Core 9).
    AuthMethod, "auth method", "client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none" {
        ClientSecretBasic => "client_secret_basic",
        ClientSecretPost => "client_secret_post",
        ClientSecretJwt => "client_secret_jwt",
        PrivateKeyJwt => "private_key_jwt",
        None => "none",
    }
}

impl AuthMethod {
    /// Whether Gatehouse generates a shared secret for this method.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic
                | AuthMethod::ClientSecretPost
                | AuthMethod::ClientSecretJwt
        )
    }
}

names! {
    /// How a resource server's access tokens are made: an RFC 9068 JWT
    /// signed then encrypted to the API, or an opaque reference the API
    /// introspects (RFC 7662).
    TokenFormat, "token format", "jwe or opaque" {
        Jwe => "jwe",
        Opaque => "opaque",
    }
}

names! {
    /// Authentication levels (the `acr` claim, OIDC Core 2), in order: each
    /// satisfies the ones below it (`Ord` follows the declaration order).
    /// `Pwd`: one factor; `Mfa`: two factors; `Phr`: phishing-resistant (a
    /// passkey with user verification).
    Acr, "authentication level", "urn:gatehouse:acr:pwd, urn:gatehouse:acr:mfa or urn:gatehouse:acr:phr" {
        Pwd => "urn:gatehouse:acr:pwd",
        Mfa => "urn:gatehouse:acr:mfa",
        Phr => "urn:gatehouse:acr:phr",
    }
}

names! {
    /// Authentication method references (RFC 8176), the `amr` claim's values
    /// Gatehouse records.
    Amr, "authentication method", "pwd, otp, hwk, swk, user or mfa" {
        Pwd => "pwd",
        Otp => "otp",
        Hwk => "hwk",
        Swk => "swk",
        User => "user",
        Mfa => "mfa",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_lowest_first() {
        assert!(Acr::Pwd < Acr::Mfa && Acr::Mfa < Acr::Phr);
        assert_eq!(Acr::ALL.iter().max(), Some(&Acr::Phr));
        for a in Acr::ALL {
            assert_eq!(a.as_str().parse::<Acr>(), Ok(*a));
        }
        assert!("urn:gatehouse:acr:other".parse::<Acr>().is_err());
        assert_eq!("otp".parse::<Amr>(), Ok(Amr::Otp));
    }

    #[test]
    fn names_round_trip_exactly() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>(), Ok(*g));
            assert_eq!(serde_json::to_string(g).unwrap(), format!("\"{g}\""));
        }
        for m in AuthMethod::ALL {
            assert_eq!(m.to_string().parse::<AuthMethod>(), Ok(*m));
        }
        assert_eq!("opaque".parse::<TokenFormat>(), Ok(TokenFormat::Opaque));
        for t in TokenTypeUri::ALL {
            assert_eq!(t.as_str().parse::<TokenTypeUri>(), Ok(*t));
        }
        // Listings pad names into columns.
        assert_eq!(format!("{:<5}|", TokenFormat::Jwe), "jwe  |");
        let v: Vec<GrantType> = serde_json::from_str(r#"["refresh_token"]"#).unwrap();
        assert_eq!(v, [GrantType::RefreshToken]);
    }

    #[test]
    fn unknown_and_differently_cased_names_are_refused_with_the_choices() {
        let e = "Authorization_Code".parse::<GrantType>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown grant type \"Authorization_Code\"; use authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code or urn:ietf:params:oauth:grant-type:token-exchange"
        );
        assert!("JWE".parse::<TokenFormat>().is_err());
        assert!("".parse::<AuthMethod>().is_err());
        assert!(serde_json::from_str::<GrantType>("\"password\"").is_err());
        assert!("urn:ietf:params:oauth:token-type:jwt"
            .parse::<TokenTypeUri>()
            .is_err());
    }
}
