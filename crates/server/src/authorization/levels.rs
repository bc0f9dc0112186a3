//! Authentication levels: what a request asks for (`acr_values`, the
//! `claims` parameter's `id_token.acr`), what a session has reached, what
//! the operator requires, and the `acr` an ID token states.
//!
//! Levels are ordered (`Acr`: pwd < mfa < phr) and each satisfies the ones
//! below. A voluntary request the user cannot reach gives the lower level;
//! an essential one is `unmet_authentication_requirements` (OpenID Connect
//! Unmet Authentication Requirements 1.0).

use gatehouse_protocol::{Acr, Amr};
use gatehouse_storage::model::{Client, Session, User};
use serde::{Deserialize, Serialize};

/// The longest `claims` parameter accepted, in bytes.
pub const MAX_CLAIMS_LEN: usize = 4096;

/// The levels a request asks for. Names Gatehouse does not know are left
/// out; an essential request for only unknown names stays essential with
/// no values, which nothing satisfies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcrRequest {
    #[serde(default)]
    pub values: Vec<Acr>,
    #[serde(default)]
    pub essential: bool,
}

impl AcrRequest {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && !self.essential
    }

    /// The highest requested level at or below `reached`, if any.
    pub fn best_within(&self, reached: Acr) -> Option<Acr> {
        self.values.iter().copied().filter(|v| *v <= reached).max()
    }
}

#[derive(Deserialize)]
struct ClaimsParam {
    #[serde(default)]
    id_token: Option<IdTokenClaims>,
}

#[derive(Deserialize)]
struct IdTokenClaims {
    #[serde(default)]
    acr: Option<ClaimRequest>,
}

/// One claim's request (OIDC Core 5.5.1): `null`, or an object.
#[derive(Deserialize)]
struct ClaimRequest {
    #[serde(default)]
    essential: bool,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    values: Option<Vec<String>>,
}

fn known(names: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<Acr> {
    let mut v: Vec<Acr> = names
        .into_iter()
        .filter_map(|n| n.as_ref().parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Parses `acr_values` (space-separated, voluntary: OIDC Core 3.1.2.1) and
/// the `claims` parameter (OIDC Core 5.5). The `claims` parameter's
/// `id_token.acr`, when present, is the request; other requested claims
/// are accepted and not acted on. Errors are the `error_description` of an
/// `invalid_request`.
pub fn requested(
    acr_values: Option<&str>,
    claims: Option<&str>,
) -> Result<AcrRequest, &'static str> {
    let from_claims = match claims {
        None => None,
        Some(c) if c.len() > MAX_CLAIMS_LEN => return Err("claims is longer than 4096 bytes"),
        Some(c) => {
            let parsed: ClaimsParam = serde_json::from_str(c)
                .map_err(|_| "claims must be a JSON object (OpenID Connect Core 5.5)")?;
            match parsed.id_token.and_then(|t| t.acr) {
                None => None,
                Some(r) => {
                    let mut names = r.values.unwrap_or_default();
                    names.extend(r.value);
                    Some(AcrRequest {
                        values: known(&names),
                        essential: r.essential,
                    })
                }
            }
        }
    };
    Ok(from_claims.unwrap_or_else(|| AcrRequest {
        values: known(acr_values.unwrap_or("").split_ascii_whitespace()),
        essential: false,
    }))
}

/// The level a session has reached (a session from before levels were
/// recorded counts as one factor).
pub fn session_level(session: &Session) -> Acr {
    session
        .acr
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(Acr::Pwd)
}

/// The level a grant was made at, from its `amr` (RFC 8176 `mfa`: two
/// factors). Unlike its `acr`, which states what the client asked for,
/// this is what the user did.
pub fn level_of_amr(amr: &[String]) -> Acr {
    let has = |m: Amr| amr.iter().any(|a| a == m.as_str());
    if (has(Amr::Swk) || has(Amr::Hwk)) && has(Amr::User) {
        Acr::Phr
    } else if has(Amr::Mfa) {
        Acr::Mfa
    } else {
        Acr::Pwd
    }
}

/// What the operator requires of every sign-in of `user` to `client`: the
/// client's `--require-acr` and the user's `mfa require`.
pub fn policy_floor(client: &Client, user: &User) -> Acr {
    let user_floor = if user.mfa_required {
        Acr::Mfa
    } else {
        Acr::Pwd
    };
    client.require_acr.unwrap_or(Acr::Pwd).max(user_floor)
}

/// What a request needs, given the session's level and the highest level
/// the user could reach with her factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needed {
    /// The session is enough.
    Enough,
    /// The user must reach this level first (a second factor, or enrol one).
    StepUp(Acr),
    /// An essential request (or a required level) nothing the user has can meet.
    Unmet,
}

/// Decides what the request needs. `floor` is the operator's policy (and
/// `Mfa` for a user with a second factor: she always uses it), `capable`
/// the highest level the user can reach with the factors she has,
/// `enrollable` the highest she can reach by enrolling a factor during the
/// sign-in (TOTP: `Mfa`, only where the operator's policy makes her enrol;
/// else `Pwd`). A voluntary request the user cannot reach gives less; an
/// essential one is unmet.
pub fn needed(req: &AcrRequest, level: Acr, floor: Acr, capable: Acr, enrollable: Acr) -> Needed {
    let have = capable.max(level);
    let reachable = have.max(enrollable);
    let wanted = if req.essential {
        match req.best_within(reachable) {
            Some(w) => w,
            None => return Needed::Unmet,
        }
    } else {
        req.best_within(have).unwrap_or(Acr::Pwd)
    };
    let target = wanted.max(floor);
    if target > reachable {
        Needed::Unmet
    } else if target > level {
        Needed::StepUp(target)
    } else {
        Needed::Enough
    }
}

/// The `acr` an ID token states: the highest requested level the session
/// satisfies, or the session's own level when none was requested or none
/// is satisfied (a voluntary request the user could not meet).
pub fn acr_claim(req: &AcrRequest, level: Acr) -> Acr {
    req.best_within(level).unwrap_or(level)
}

/// The methods and level after a second factor `method` on a session that
/// had `amr` (RFC 8176: `mfa` once two factors were used).
pub fn with_second_factor(amr: &[String], method: Amr) -> (Acr, Vec<String>) {
    let mut out: Vec<String> = amr.to_vec();
    for m in [method, Amr::Mfa] {
        if !out.iter().any(|a| a == m.as_str()) {
            out.push(m.as_str().to_owned());
        }
    }
    (Acr::Mfa, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MFA: &str = "urn:gatehouse:acr:mfa";

    #[test]
    fn acr_values_are_voluntary_and_unknown_names_dropped() {
        let r = requested(Some("urn:other urn:gatehouse:acr:mfa"), None).unwrap();
        assert_eq!(r.values, vec![Acr::Mfa]);
        assert!(!r.essential);
        assert!(requested(Some("urn:other"), None).unwrap().is_empty());
    }

    #[test]
    fn the_claims_parameter_wins_and_can_be_essential() {
        let c = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{MFA}"]}}}}}}"#);
        let r = requested(Some("urn:gatehouse:acr:pwd"), Some(&c)).unwrap();
        assert_eq!(r.values, vec![Acr::Mfa]);
        assert!(r.essential);
        let one = format!(r#"{{"id_token":{{"acr":{{"value":"{MFA}"}}}}}}"#);
        assert_eq!(requested(None, Some(&one)).unwrap().values, vec![Acr::Mfa]);
        let null = r#"{"id_token":{"acr":null},"userinfo":{"email":null}}"#;
        assert!(requested(None, Some(null)).unwrap().is_empty());
        assert!(requested(None, Some("[1]")).is_err());
        assert!(requested(None, Some("not json")).is_err());
        let essential_unknown = r#"{"id_token":{"acr":{"essential":true,"value":"urn:x"}}}"#;
        let r = requested(None, Some(essential_unknown)).unwrap();
        assert!(r.essential && r.values.is_empty());
    }

    #[test]
    fn what_a_request_needs() {
        use Acr::*;
        let none = AcrRequest::default();
        let mfa = AcrRequest {
            values: vec![Mfa],
            essential: false,
        };
        let mfa_essential = AcrRequest {
            values: vec![Mfa],
            essential: true,
        };
        let phr_essential = AcrRequest {
            values: vec![Phr],
            essential: true,
        };
        // Nothing asked, nothing required.
        assert_eq!(needed(&none, Pwd, Pwd, Pwd, Mfa), Needed::Enough);
        // A user with TOTP always uses it.
        assert_eq!(needed(&none, Pwd, Mfa, Mfa, Mfa), Needed::StepUp(Mfa));
        // Voluntary mfa: asked of a user who has a second factor; one who
        // has none is not made to enrol (an essential request does that).
        assert_eq!(needed(&mfa, Pwd, Pwd, Mfa, Mfa), Needed::StepUp(Mfa));
        assert_eq!(needed(&mfa, Pwd, Pwd, Pwd, Mfa), Needed::Enough);
        assert_eq!(
            needed(&mfa_essential, Pwd, Pwd, Pwd, Mfa),
            Needed::StepUp(Mfa)
        );
        // Voluntary phr nobody can reach: the lower level.
        let phr = AcrRequest {
            values: vec![Phr],
            essential: false,
        };
        assert_eq!(needed(&phr, Pwd, Pwd, Pwd, Mfa), Needed::Enough);
        assert_eq!(needed(&mfa_essential, Mfa, Mfa, Mfa, Mfa), Needed::Enough);
        assert_eq!(needed(&phr_essential, Mfa, Mfa, Mfa, Mfa), Needed::Unmet);
        // A required level nothing can reach.
        assert_eq!(needed(&none, Pwd, Phr, Mfa, Mfa), Needed::Unmet);
    }

    #[test]
    fn the_acr_claim_is_the_highest_requested_level_satisfied() {
        use Acr::*;
        let both = AcrRequest {
            values: vec![Pwd, Mfa],
            essential: false,
        };
        assert_eq!(acr_claim(&both, Phr), Mfa);
        assert_eq!(acr_claim(&both, Pwd), Pwd);
        assert_eq!(acr_claim(&AcrRequest::default(), Mfa), Mfa);
        let phr = AcrRequest {
            values: vec![Phr],
            essential: false,
        };
        assert_eq!(acr_claim(&phr, Mfa), Mfa);
    }

    #[test]
    fn a_grants_level_comes_from_what_the_user_did() {
        assert_eq!(level_of_amr(&["pwd".to_owned()]), Acr::Pwd);
        let two = ["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        assert_eq!(level_of_amr(&two), Acr::Mfa);
        assert_eq!(level_of_amr(&[]), Acr::Pwd);
        let passkey = ["swk".to_owned(), "user".to_owned(), "mfa".to_owned()];
        assert_eq!(level_of_amr(&passkey), Acr::Phr);
        assert_eq!(level_of_amr(&["swk".to_owned()]), Acr::Pwd);
    }

    #[test]
    fn a_second_factor_adds_its_method_and_mfa_once() {
        let (acr, amr) = with_second_factor(&["pwd".to_owned()], Amr::Otp);
        assert_eq!(acr, Acr::Mfa);
        assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
        let (_, again) = with_second_factor(&amr, Amr::Otp);
        assert_eq!(again, amr);
    }
}
