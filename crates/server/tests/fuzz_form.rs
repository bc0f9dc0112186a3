//! Property-based fuzz target for the form and query parser every endpoint
//! uses (`http::form`): arbitrary bytes never panic and are refused only
//! with `invalid_request`; well-formed forms round-trip exactly; a repeated
//! name is caught however it is percent-encoded; more than 64 parameters
//! are refused; the lenient parse (authorization endpoint) agrees with the
//! strict one.
//!
//! Case counts are small enough for CI; `PROPTEST_CASES=100000 cargo test
//! -p gatehouse-server --test fuzz_form` runs them longer. A failing case is
//! saved under `crates/server/proptest-regressions/` and replayed first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap, HeaderValue};
use gatehouse_server::{
    error::OAuthError,
    http::{
        error::AppError,
        form::{require_form, Params},
    },
};
use proptest::prelude::*;

/// `cases` unless `PROPTEST_CASES` asks for another number.
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

fn is_invalid_request(e: &AppError) -> bool {
    matches!(e, AppError::OAuth(OAuthError::InvalidRequest(_)))
}

fn as_map(p: &Params) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Percent-encodes every byte of `s`, so `a` becomes `%61`: the same name
/// spelled differently on the wire.
fn percent_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Bytes a form body could hold: anything, and form-like text with the
/// characters the parser treats specially.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        "[a-z_=&%+0-9A-F;. \u{0}\u{ff}\u{1F600}]{0,600}".prop_map(String::into_bytes),
        prop::collection::vec("[a-z%=+]{0,6}=[^&]{0,10}", 0..100)
            .prop_map(|v| v.join("&").into_bytes()),
    ]
}

/// Distinct names with non-empty values (any Unicode, including `&`, `=`,
/// `%` and `+`).
fn form() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(".{1,12}", ".{1,24}", 0..20)
}

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any body: parsed or refused with `invalid_request`, never a panic;
    /// the lenient parse agrees with the strict one where that succeeds.
    #[test]
    fn arbitrary_bodies_never_panic(bytes in body()) {
        let strict = Params::parse(&bytes);
        let (lenient, dup, too_many) = Params::parse_lenient(&bytes);
        match strict {
            Ok(p) => {
                prop_assert_eq!(as_map(&p), as_map(&lenient));
                prop_assert!(dup.is_none() && !too_many);
                prop_assert!(p.iter().all(|(_, v)| !v.is_empty()));
                // What the authorization endpoint re-serializes parses back the same.
                prop_assert_eq!(as_map(&Params::parse(p.to_query().as_bytes()).unwrap()), as_map(&p));
            }
            Err(e) => {
                prop_assert!(is_invalid_request(&e), "{e:?}");
                prop_assert!(dup.is_some() || too_many);
            }
        }
    }

    /// A well-formed form round-trips exactly.
    #[test]
    fn forms_round_trip(f in form()) {
        let pairs: Vec<(String, String)> = f.clone().into_iter().collect();
        let p = Params::parse(encode(&pairs).as_bytes()).unwrap();
        prop_assert_eq!(as_map(&p), f);
    }

    /// A name given twice (the second time percent-encoded differently) is
    /// `invalid_request` for the strict parse; the lenient one keeps the
    /// first value and names the repeat.
    #[test]
    fn repeated_names_are_caught_however_encoded(
        f in form().prop_filter("needs a parameter", |f| !f.is_empty()),
        pick in any::<prop::sample::Index>(),
        second in ".{0,24}",
    ) {
        let pairs: Vec<(String, String)> = f.clone().into_iter().collect();
        let (name, first) = pairs[pick.index(pairs.len())].clone();
        let body = format!(
            "{}&{}={}",
            encode(&pairs),
            percent_all(&name),
            percent_all(&second)
        );
        let e = Params::parse(body.as_bytes()).unwrap_err();
        prop_assert!(is_invalid_request(&e), "{e:?}");
        let (p, dup, too_many) = Params::parse_lenient(body.as_bytes());
        prop_assert_eq!(dup, Some(name.clone()));
        prop_assert!(!too_many);
        prop_assert_eq!(p.get(&name), Some(first.as_str()));
    }

    /// More than 64 parameters are refused, whatever they are.
    #[test]
    fn too_many_parameters_are_refused(extra in 1usize..40, f in form()) {
        let mut pairs: Vec<(String, String)> = (0..64 + extra)
            .map(|i| (format!("p{i}"), "v".to_owned()))
            .collect();
        pairs.extend(f);
        let e = Params::parse(encode(&pairs).as_bytes()).unwrap_err();
        prop_assert!(is_invalid_request(&e), "{e:?}");
        prop_assert!(Params::parse_lenient(encode(&pairs).as_bytes()).2);
    }

    /// Any Content-Type value: accepted only when its media type is the
    /// form type, refused with `invalid_request` otherwise.
    #[test]
    fn content_type_check_never_panics(value in prop::collection::vec(any::<u8>(), 0..80)) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        // A header value is text only when it is visible ASCII (or tabs).
        let visible = value.iter().all(|&b| b == b'\t' || (32..127).contains(&b));
        let expected = visible && std::str::from_utf8(&value).is_ok_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        }) && headers.contains_key(header::CONTENT_TYPE);
        match require_form(&headers) {
            Ok(()) => prop_assert!(expected),
            Err(e) => prop_assert!(!expected && is_invalid_request(&e), "{e:?}"),
        }
    }
}
