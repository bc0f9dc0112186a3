//! Property-based fuzz target for request objects (RFC 9101): the header
//! checks made before any key is looked up, and the claims turned into
//! request parameters.
//!
//! Properties: arbitrary text and arbitrary headers never panic; a header
//! passes only with an `alg` of [`ALGS`] (never `none`, never HMAC), an
//! accepted `typ` or none, and a string `kid`; any claims give parameters
//! that are non-empty strings, without null. Case counts are small enough
//! for CI; `PROPTEST_CASES` runs them longer (docs/operations.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use proptest::prelude::*;

use super::*;

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A header value: a known name (good or hostile) or anything.
fn member(names: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        prop::sample::select(names).prop_map(|n| Some(Value::from(n))),
        json_value().prop_map(Some),
    ]
}

const ALG_NAMES: &[&str] = &[
    "RS256",
    "PS256",
    "ES256",
    "EdDSA",
    "none",
    "None",
    "HS256",
    "HS512",
    "RS384",
    "ES512",
    "dir",
    "RSA-OAEP-256",
    "",
];
const TYP_NAMES: &[&str] = &[
    "oauth-authz-req+jwt",
    "application/oauth-authz-req+jwt",
    "JWT",
    "jwt",
    "at+jwt",
    "dpop+jwt",
    "logout+jwt",
    "JOSE",
    "",
];

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary text: refused with a reason, never a panic.
    #[test]
    fn arbitrary_text_never_panics(jwt in ".{0,300}") {
        let _ = check_header(&jwt);
    }

    /// Structured headers: accepted exactly when alg, typ and kid are.
    #[test]
    fn only_allowed_headers_pass(
        alg in member(ALG_NAMES),
        typ in member(TYP_NAMES),
        kid in member(&["k1", ""]),
        extra in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
        body in ".{0,40}",
    ) {
        let mut h = serde_json::Map::new();
        for (k, v) in extra {
            h.insert(k, v);
        }
        for (name, v) in [("alg", &alg), ("typ", &typ), ("kid", &kid)] {
            match v {
                Some(v) => { h.insert(name.to_owned(), v.clone()); }
                None => { h.remove(name); }
            }
        }
        let jwt = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(Value::Object(h.clone()).to_string()),
            URL_SAFE_NO_PAD.encode(body),
        );
        let alg_ok = h
            .get("alg")
            .and_then(Value::as_str)
            .is_some_and(|a| ALGS.iter().any(|x| x.as_str() == a));
        let typ_accepted = match h.get("typ") {
            None => true,
            Some(Value::String(t)) => typ_ok(t),
            Some(_) => false,
        };
        let kid_ok = h.get("kid").is_some_and(Value::is_string);
        // What JOSE's structural checks refuse on top (crit, jwk, ...).
        let structural = gatehouse_keys::peek_header(&jwt).is_ok();
        match check_header(&jwt) {
            Ok(k) => {
                prop_assert!(alg_ok && typ_accepted && kid_ok && structural, "{h:?}");
                prop_assert_eq!(Some(k.as_str()), h.get("kid").and_then(Value::as_str));
            }
            Err(reason) => {
                prop_assert!(!(alg_ok && typ_accepted && kid_ok && structural), "{h:?}: {reason}");
                if h.get("alg").and_then(Value::as_str) == Some("none") && structural {
                    prop_assert!(reason.contains("alg none"), "{reason}");
                }
            }
        }
    }

    /// Any claims: parameters are non-empty strings; strings unchanged.
    #[test]
    fn claims_become_string_parameters(
        claims in prop::collection::btree_map(".{0,10}", json_value(), 0..8),
    ) {
        let claims: Map<String, Value> = claims.into_iter().collect();
        let params = params_of(&claims);
        for (k, v) in &params {
            prop_assert!(!v.is_empty());
            match &claims[k] {
                Value::String(s) => prop_assert_eq!(s, v),
                Value::Null => prop_assert!(false, "null kept for {k}"),
                other => prop_assert_eq!(&other.to_string(), v),
            }
        }
    }
}

#[test]
fn typ_is_the_registered_media_type_or_jwt() {
    for t in [
        "oauth-authz-req+jwt",
        "application/oauth-authz-req+jwt",
        "JWT",
        "jwt",
        "application/jwt",
    ] {
        assert!(typ_ok(t), "{t}");
    }
    for t in ["at+jwt", "dpop+jwt", "JOSE", "", "application/", "jwt "] {
        assert!(!typ_ok(t), "{t}");
    }
}
