//! Property-based fuzz target for client authentication (RFC 6749 2.3,
//! RFC 7523 client assertions): the `Authorization: Basic` decoder and the
//! whole [`authenticate`] path with a real state (SQLite database, key
//! ring, one private_key_jwt and one client_secret_jwt client).
//!
//! Properties: any Basic header decodes or is `invalid_client`; any
//! assertion (garbage, JWS-shaped garbage naming the real clients, kids and
//! algorithms) is `invalid_client`, `invalid_request` or throttled, never a
//! panic, an internal error or a success; a valid assertion with any one
//! character changed fails while the untouched one is accepted once.
//! Case counts are small enough for CI; `PROPTEST_CASES` runs them longer
//! (docs/operations.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, OnceLock,
};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_keys::{Kek, ManualClock, OpenSealed, PrivateKey};
use gatehouse_storage::Store;
use proptest::{prelude::*, sample::Index};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::{
    clients::{build, ClientSpec},
    config::{RawConfig, Settings},
    error::OAuthError,
};

const ISSUER: &str = "https://gatehouse.test";
const T0: i64 = 1_700_000_000;

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

/// The running state and the two assertion clients.
struct Fixture {
    rt: tokio::runtime::Runtime,
    state: AppState,
    /// private_key_jwt client: id and its ES256 signing key (kid `pkj-key`).
    pkj: (String, PrivateKey),
    /// client_secret_jwt client: id and secret.
    csj: (String, String),
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("gatehouse-fuzz-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("gatehouse.db").display());
        let kek = Kek::generate();
        let raw = RawConfig {
            issuer: Some(ISSUER.to_owned()),
            database_url: Some(url.clone()),
            ..RawConfig::default()
        };
        let settings = Settings::resolve(raw, Some(kek.to_base64url())).unwrap();
        let key = gatehouse_keys::generate(gatehouse_keys::Alg::ES256, "pkj-key", &kek).unwrap();
        let signer = PrivateKey::open(&key.kid, key.alg, &key.sealed_private_key, &kek).unwrap();
        let (state, pkj, csj) = rt.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            let clock = ManualClock::default();
            clock.set(T0);
            let state = crate::build_state(settings, store.clone(), kek, Arc::new(clock))
                .await
                .unwrap();
            let make = |method: &str, jwks: Option<String>| {
                let spec = ClientSpec {
                    name: method.to_owned(),
                    grant_types: vec!["client_credentials".to_owned()],
                    auth_method: Some(method.to_owned()),
                    jwks,
                    ..ClientSpec::default()
                };
                build(
                    spec,
                    &state.hasher,
                    &state.sealer,
                    T0,
                    &state.settings.outbound,
                )
                .unwrap()
            };
            let jwks = format!("{{\"keys\":[{}]}}", key.public_jwk);
            let (pkj, _) = make("private_key_jwt", Some(jwks));
            let (csj, secret) = make("client_secret_jwt", None);
            store.create_client(&pkj).await.unwrap();
            store.create_client(&csj).await.unwrap();
            (
                state,
                pkj.id.into_string(),
                (csj.id.into_string(), secret.unwrap()),
            )
        });
        Fixture {
            rt,
            state,
            pkj: (pkj, signer),
            csj,
        }
    })
}

impl Fixture {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<AuthenticatedClient, AppError> {
        self.rt.block_on(authenticate(&self.state, headers, params))
    }

    fn assertion_params(&self, assertion: &str, client_id: Option<&str>) -> Params {
        let mut p = Params::default();
        p.set("client_assertion_type", Some(JWT_BEARER.to_owned()));
        p.set("client_assertion", Some(assertion.to_owned()));
        p.set("client_id", client_id.map(str::to_owned));
        p
    }

    /// Forgets the failures a case caused, so the next case is not throttled.
    fn unthrottle(&self) {
        for id in [&self.pkj.0, &self.csj.0] {
            self.state
                .throttle
                .succeed(&[self.state.throttle.client(id)]);
        }
    }
}

/// Fresh, valid assertion claims for `client_id`.
fn claims(client_id: &str) -> Map<String, Value> {
    static JTI: AtomicU64 = AtomicU64::new(0);
    let jti = JTI.fetch_add(1, Ordering::Relaxed);
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "exp": T0 + 60,
        "jti": format!("fuzz-{jti}"),
    })
    .as_object()
    .unwrap()
    .clone()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HS256 over the compact serialization (RFC 7518 3.2, RFC 2104).
fn hs256(secret: &[u8], claims: &Map<String, Value>) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
        b64(Value::Object(claims.clone()).to_string())
    );
    let mut key = [0u8; 64];
    if secret.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(input.as_bytes())
        .finalize();
    let mac = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("{input}.{}", b64(mac))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Assertions an attacker would send: noise, and JWS-shaped tokens whose
/// header names real algorithms and the real kid, whose claims name the
/// real clients (with good or bad other claims), and whose signature is
/// arbitrary bytes of the sizes the algorithms use.
fn assertion() -> impl Strategy<Value = String> {
    let f = fixture();
    let ids = vec![f.pkj.0.clone(), f.csj.0.clone(), "unknown".to_owned()];
    let header = (
        prop::sample::select(vec![
            "ES256", "RS256", "EdDSA", "HS256", "HS512", "none", "dir",
        ]),
        prop::option::of(prop_oneof![Just("pkj-key".to_owned()), ".{0,8}"]),
        prop::option::of(json_value()),
    )
        .prop_map(|(alg, kid, extra)| {
            let mut h = json!({"alg": alg});
            if let Some(k) = kid {
                h["kid"] = k.into();
            }
            if let Some(e) = extra {
                h["jku"] = e;
            }
            h
        });
    let body = (
        prop::sample::select(ids),
        prop::option::of(prop_oneof![
            Just(json!(format!("{ISSUER}/token"))),
            json_value()
        ]),
        prop::option::of(prop_oneof![
            (T0 - 100..T0 + 1000).prop_map(Value::from),
            json_value()
        ]),
        prop::option::of(prop_oneof![".{0,300}".prop_map(Value::from), json_value()]),
        any::<bool>(),
    )
        .prop_map(|(id, aud, exp, jti, same_sub)| {
            let mut c = json!({"iss": id});
            if same_sub {
                c["sub"] = c["iss"].clone();
            }
            for (k, v) in [("aud", aud), ("exp", exp), ("jti", jti)] {
                if let Some(v) = v {
                    c[k] = v;
                }
            }
            c
        });
    let signature = prop::sample::select(vec![0usize, 32, 64, 256])
        .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n..=n));
    prop_oneof![
        1 => ".{0,100}",
        1 => "[A-Za-z0-9_.-]{0,300}",
        6 => (header, body, signature).prop_map(|(h, c, s)| {
            format!("{}.{}.{}", b64(h.to_string()), b64(c.to_string()), b64(s))
        }),
    ]
}

/// `token` with the character at `at` replaced by a different one.
fn mutate(token: &str, at: Index, with: Index) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let mut bytes = token.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let mut j = with.index(ALPHABET.len());
    if ALPHABET[j] == bytes[i] {
        j = (j + 1) % ALPHABET.len();
    }
    bytes[i] = ALPHABET[j];
    String::from_utf8(bytes).unwrap()
}

fn is_refusal(r: &Result<AuthenticatedClient, AppError>) -> bool {
    matches!(
        r,
        Err(AppError::OAuth(
            OAuthError::InvalidClient { .. } | OAuthError::InvalidRequest(_)
        )) | Err(AppError::Throttled(_))
    )
}

proptest! {
    #![proptest_config(config(512))]

    /// Any `Authorization` value: decoded credentials or `invalid_client`
    /// with `WWW-Authenticate: Basic`, never a panic.
    #[test]
    fn basic_header_never_panics(
        raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            (".{0,30}", ".{0,30}").prop_map(|(a, b)| {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{a}:{b}")))
                    .into_bytes()
            }),
            "[Bb]asic [A-Za-z0-9+/=% ]{0,60}".prop_map(String::into_bytes),
        ]
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&raw) {
            headers.insert(header::AUTHORIZATION, v);
        }
        match basic_credentials(&headers) {
            Ok(c) => prop_assert_eq!(c.is_some(), headers.contains_key(header::AUTHORIZATION)),
            Err(e) => prop_assert!(
                matches!(e, AppError::OAuth(OAuthError::InvalidClient { basic: true, .. })),
                "{e:?}"
            ),
        }
    }

    /// RFC 6749 2.3.1: id and secret are form-encoded before Basic; any
    /// pair comes back exactly.
    #[test]
    fn basic_credentials_round_trip(id in ".{0,30}", secret in ".{0,30}") {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let value = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret)))
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        prop_assert_eq!(
            basic_credentials(&headers).unwrap().map(|(i, s)| (i, s.to_string())),
            Some((id, secret))
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any assertion, with or without a matching `client_id`: refused as
    /// `invalid_client` / `invalid_request` (or throttled), never accepted,
    /// never an internal error or a panic.
    #[test]
    fn forged_assertions_are_refused(
        a in assertion(),
        client_id in prop::option::of(prop::sample::select(vec![0usize, 1])),
        assertion_type in prop::option::weighted(0.1, ".{0,20}"),
    ) {
        let f = fixture();
        let id = client_id.map(|i| if i == 0 { f.pkj.0.as_str() } else { f.csj.0.as_str() });
        let mut params = f.assertion_params(&a, id);
        if let Some(t) = assertion_type {
            params.set("client_assertion_type", Some(t));
        }
        let r = f.authenticate(&HeaderMap::new(), &params);
        f.unthrottle();
        prop_assert!(is_refusal(&r), "{r:?}");
    }
}

proptest! {
    // Each case signs, verifies twice and records a jti: fewer cases.
    #![proptest_config(config(96))]

    /// A valid assertion (private_key_jwt ES256 or client_secret_jwt
    /// HS256) with any one character changed is refused; the untouched
    /// one is then accepted, once.
    #[test]
    fn assertion_with_one_changed_character_is_refused(
        secret_jwt in any::<bool>(),
        at in any::<Index>(),
        with in any::<Index>(),
    ) {
        let f = fixture();
        let (id, token) = if secret_jwt {
            let (id, secret) = &f.csj;
            (id.clone(), hs256(secret.as_bytes(), &claims(id)))
        } else {
            let (id, key) = &f.pkj;
            (id.clone(), gatehouse_keys::sign(key, "JWT", &claims(id)).unwrap())
        };
        let r = f.authenticate(&HeaderMap::new(), &f.assertion_params(&mutate(&token, at, with), None));
        f.unthrottle();
        prop_assert!(is_refusal(&r), "{r:?}");
        let ok = f.authenticate(&HeaderMap::new(), &f.assertion_params(&token, Some(&id))).unwrap();
        prop_assert_eq!(&ok.client.id, &id);
        let replay = f.authenticate(&HeaderMap::new(), &f.assertion_params(&token, Some(&id)));
        prop_assert!(is_refusal(&replay), "{replay:?}");
    }
}
