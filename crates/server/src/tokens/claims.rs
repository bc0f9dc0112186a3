//! The claims of the tokens Gatehouse signs, as types: an access token
//! (RFC 9068 2.2), an ID token (OIDC Core 2), a logout token (Back-Channel
//! Logout 1.0 2.4), and the user claims the granted scopes release (OIDC
//! Core 5.4) in ID tokens and at userinfo. Each serialises to exactly the
//! JSON members it had as a hand-built map: optional members are left out,
//! never `null`.

use gatehouse_storage::model::User;
use serde::{Deserialize, Serialize};

use crate::{
    oauth::{ClientId, Jkt, ScopeSet, UserId},
    token_status::StatusClaim,
};

/// An access token's claims (RFC 9068 2.2). `sub` is the user, or the
/// client itself for client_credentials. No `nbf`: RFC 9068 does not ask
/// for it and it would only repeat `iat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    /// Tokens of the first releases may lack it: read as 0 (before any
    /// revocation cut-off).
    #[serde(default)]
    pub iat: i64,
    pub jti: String,
    pub client_id: ClientId,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Where the token's revocation bit lives (Token Status List).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
    /// The DPoP key the token is bound to (RFC 9449 6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Who acts for `sub` (RFC 8693 4.1): a token issued by token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The actor claim (RFC 8693 4.1): the party acting for the token's
/// subject, with the actors before it nested inside (the most recent
/// outermost). Only `sub` is Gatehouse's; a chain from elsewhere is not
/// accepted (only Gatehouse's own tokens are exchanged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// How many actors the chain holds (this one included).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
}

/// A token's confirmation claim (RFC 7800 3.1): for a DPoP-bound token the
/// thumbprint of the client's key (RFC 9449 6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: Jkt,
}

/// An ID token's claims (OIDC Core 2), with the user claims its scopes
/// release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: UserId,
    pub aud: ClientId,
    pub azp: ClientId,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// The standard claims about a user that the granted scopes release (OIDC
/// Core 5.4): `profile` → preferred_username, name, updated_at; `email` →
/// email and email_verified (when the user has an address).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl UserClaims {
    /// What `scope` releases about `user`.
    pub fn of(user: &User, scope: &ScopeSet) -> UserClaims {
        let mut c = UserClaims::default();
        if scope.contains("profile") {
            c.preferred_username = Some(user.username.clone());
            c.name.clone_from(&user.name);
            c.updated_at = Some(user.updated_at);
        }
        if scope.contains("email") {
            if let Some(e) = &user.email {
                c.email = Some(e.clone());
                c.email_verified = Some(user.email_verified);
            }
        }
        c
    }
}

/// The userinfo answer (OIDC Core 5.3.2): `sub` and the released claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserinfoClaims {
    pub sub: UserId,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// The event member of a logout token.
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token's claims (Back-Channel Logout 1.0 2.4): the back-channel
/// event, `sub` and `sid`, never a nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: ClientId,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub events: LogoutEvents,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogoutEvents;

impl Serialize for LogoutEvents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(BACKCHANNEL_LOGOUT_EVENT, &serde_json::Map::new())?;
        m.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "ada".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: None,
            password_hash: String::new(),
            disabled: false,
            created_at: 1,
            updated_at: 2,
            mfa_required: false,
        }
    }

    #[test]
    fn optional_members_are_left_out_not_null() {
        let c = AccessTokenClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: "https://api.example".into(),
            exp: 20,
            iat: 10,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "read".into(),
            auth_time: None,
            acr: None,
            status: None,
            cnf: None,
            act: None,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"iss": "https://id.example", "sub": "u1", "aud": "https://api.example",
                   "exp": 20, "iat": 10, "jti": "j", "client_id": "c", "scope": "read"})
        );
        let back: AccessTokenClaims =
            serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let bound = AccessTokenClaims {
            cnf: Some(Confirmation {
                jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
            }),
            ..c
        };
        assert_eq!(
            serde_json::to_value(&bound).unwrap()["cnf"],
            json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
        );
        let exchanged = AccessTokenClaims {
            act: Some(Actor {
                sub: "svc-c".into(),
                act: Some(Box::new(Actor {
                    sub: "svc-b".into(),
                    act: None,
                })),
            }),
            ..bound
        };
        let v = serde_json::to_value(&exchanged).unwrap();
        assert_eq!(v["act"], json!({"sub": "svc-c", "act": {"sub": "svc-b"}}));
        let back: AccessTokenClaims = serde_json::from_value(v).unwrap();
        assert_eq!(back.act.as_ref().map(Actor::depth), Some(2));
        assert_eq!(back, exchanged);
    }

    #[test]
    fn scopes_release_user_claims_and_id_tokens_flatten_them() {
        let none = UserClaims::of(&user(), &ScopeSet::parse("openid").unwrap());
        assert_eq!(none, UserClaims::default());
        let c = IdTokenClaims {
            iss: "i".into(),
            sub: "u1".into(),
            aud: "c".into(),
            azp: "c".into(),
            exp: 2,
            iat: 1,
            auth_time: 1,
            nonce: Some("n".into()),
            acr: None,
            amr: vec!["pwd".into()],
            sid: None,
            at_hash: None,
            user: UserClaims::of(&user(), &ScopeSet::parse("openid profile email").unwrap()),
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"iss": "i", "sub": "u1", "aud": "c", "azp": "c", "exp": 2, "iat": 1,
                   "auth_time": 1, "nonce": "n", "amr": ["pwd"], "preferred_username": "ada",
                   "updated_at": 2, "email": "ada@example.com", "email_verified": true})
        );
    }

    #[test]
    fn logout_tokens_carry_the_back_channel_event() {
        let c = LogoutTokenClaims {
            iss: "i".into(),
            sub: "u1".into(),
            aud: "c".into(),
            iat: 1,
            exp: 121,
            jti: "j".into(),
            events: LogoutEvents,
            sid: None,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap()["events"],
            json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
    }
}
