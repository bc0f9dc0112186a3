//! The `gh_ref` protected-header member of Gatehouse's JWE access tokens:
//! what it seals, and the form earlier versions sealed.

use serde::Serialize;

use crate::token_status::StatusIndex;

/// What Gatehouse seals into the protected header of every JWE access token
/// (`gh_ref`): the token id, from which it derives the key that decrypts a
/// token encrypted to a resource server, and what the token's claims do not
/// say (its grant, and its global status-list index). Not the claims: those
/// are read from the decrypted, verified token itself. Sealed so the grant
/// stays private and cannot be swapped. Resource servers ignore the member
/// (it is not marked critical).
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenRef {
    pub(super) jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fam: Option<String>,
    /// The global status-list index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sli: Option<i64>,
}

/// The `gh_ref` of tokens issued by earlier versions, which carried the
/// claims because Gatehouse could not decrypt tokens encrypted to a
/// resource server. Still read, so those tokens stay introspectable and
/// revocable for the rest of their lifetime (a day at most).
#[derive(Debug, serde::Deserialize)]
pub(super) struct LegacyTokenRef {
    pub(super) jti: String,
    pub(super) sub: String,
    pub(super) cid: String,
    pub(super) aud: String,
    pub(super) scp: String,
    pub(super) iat: i64,
    pub(super) exp: i64,
    #[serde(default)]
    pub(super) fam: Option<String>,
    #[serde(default)]
    pub(super) at: Option<i64>,
    #[serde(default)]
    pub(super) sli: Option<i64>,
}

/// An opened `gh_ref`.
#[derive(Debug)]
pub(super) enum Reference {
    Current(TokenRef),
    Legacy(LegacyTokenRef),
}

impl Reference {
    pub(super) fn parse(bytes: &[u8]) -> Option<Reference> {
        if let Ok(r) = serde_json::from_slice(bytes) {
            return Some(Reference::Current(r));
        }
        serde_json::from_slice(bytes).ok().map(Reference::Legacy)
    }

    pub(super) fn jti(&self) -> &str {
        match self {
            Reference::Current(r) => &r.jti,
            Reference::Legacy(r) => &r.jti,
        }
    }

    /// The grant and the status index the reference records.
    pub(super) fn into_family_and_status(self) -> (Option<String>, Option<StatusIndex>) {
        let (fam, sli) = match self {
            Reference::Current(r) => (r.fam, r.sli),
            Reference::Legacy(r) => (r.fam, r.sli),
        };
        (fam, sli.map(StatusIndex))
    }
}
