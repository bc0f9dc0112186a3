//! DPoP (RFC 9449) at an API: a small local issuer serves its JWKS, tokens
//! and proofs are made with josekit (independently of the crate), and an
//! axum API using the `BearerClaims` extractor is called over real HTTP,
//! on both cryptography backends. The attacks next to the happy path:
//! replay, another key, wrong method or URL (and a spoofed Host header),
//! stale proofs, `ath`, `typ`, `none`/HMAC, a private key in the proof,
//! scheme downgrades, missing and doubled proofs, oversized proofs and a
//! flood against the bounded replay cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use gatehouse_verifier::{Backend, Verifier, VerifierConfig, VerifierError, MAX_DPOP_PROOF_LEN};
use josekit::{jwe::ECDH_ES_A256KW, jwk::alg::ec::EcCurve};
use serde_json::Value;
use support::*;

const BACKENDS: [Backend; 2] = [Backend::OpenSsl, Backend::RustCrypto];

#[tokio::test]
async fn a_right_proof_passes_once_for_each_alg_on_both_backends() {
    let iss = issuer().await;
    let keys: Vec<ClientKey> = ["ES256", "EdDSA", "RS256", "PS256"]
        .into_iter()
        .map(ClientKey::new)
        .collect();
    for backend in BACKENDS {
        let api = api(|url| iss.config(backend).dpop_base_url(url)).await;
        for key in &keys {
            let what = format!("{backend:?} {}", key.public["kty"]);
            let token = iss.token(Some(&key.jkt()));
            let proof = key.proof(&iss.clock, "GET", &api.orders(), &token);
            ok(api.dpop_get(&token, &[&proof]).await, &what).await;
            // Replayed: refused, however soon.
            let r = api.dpop_get(&token, &[&proof]).await;
            let c = refused(&r, "invalid_dpop_proof", &what);
            assert!(c.contains("already used"), "{c}");
            // POST, and a nested route (its full path is the htu).
            let proof = key.proof(&iss.clock, "POST", &api.orders(), &token);
            let r = api
                .http
                .post(api.orders())
                .header("authorization", format!("dpop {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            ok(r, &what).await;
            let items = format!("{}/v1/items", api.url);
            let proof = key.proof(&iss.clock, "GET", &items, &token);
            let r = api
                .http
                .get(format!("{items}?page=2"))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            ok(r, &what).await;
        }
        // Without an axum router: the same checks.
        let key = &keys[0];
        let token = iss.token(Some(&key.jkt()));
        let proof = key.proof(&iss.clock, "DELETE", &format!("{}/x", api.url), &token);
        let claims = api
            .verifier
            .verify_dpop(&token, &proof, "DELETE", "/x")
            .await
            .unwrap();
        assert_eq!(claims.cnf.unwrap().jkt, key.jkt());
        assert_eq!(
            api.verifier
                .verify_dpop(&token, &proof, "DELETE", "/x")
                .await,
            Err(VerifierError::DpopReplay)
        );
    }
}

#[tokio::test]
async fn proofs_that_do_not_fit_the_request_or_token_are_refused() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let other = ClientKey::new("ES256");
    for backend in BACKENDS {
        let api = api(|url| iss.config(backend).dpop_base_url(url)).await;
        let token = iss.token(Some(&key.jkt()));
        let url = api.orders();
        let clock = &iss.clock;
        let now = clock.now();
        let proof = |edit: &dyn Fn(&mut Value, &mut Value)| {
            key.proof_with(clock, "GET", &url, &token, |h, c| edit(h, c))
        };
        let mut private_jwk: Value = serde_json::from_str(&key.private.to_string()).unwrap();
        private_jwk.as_object_mut().unwrap().remove("kid");
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "wrong method",
                proof(&|_, c| c["htm"] = "POST".into()),
                "htm",
            ),
            (
                "another host",
                proof(&|_, c| c["htu"] = "http://evil.example/orders".into()),
                "htu",
            ),
            (
                "another path",
                proof(&|_, c| c["htu"] = format!("{}/admin", api.url).into()),
                "htu",
            ),
            ("stale", proof(&|_, c| c["iat"] = (now - 120).into()), "iat"),
            (
                "future",
                proof(&|_, c| c["iat"] = (now + 120).into()),
                "iat",
            ),
            ("no iat", proof(&|_, c| c["iat"] = Value::Null), "iat"),
            (
                "no ath",
                proof(&|_, c| {
                    c.as_object_mut().unwrap().remove("ath");
                }),
                "ath",
            ),
            (
                "ath of another token",
                proof(&|_, c| c["ath"] = ath(&iss.token(Some(&key.jkt()))).into()),
                "ath",
            ),
            ("no jti", proof(&|_, c| c["jti"] = Value::Null), "jti"),
            ("typ JWT", proof(&|h, _| h["typ"] = "JWT".into()), "typ"),
            ("no typ", proof(&|h, _| h["typ"] = Value::Null), "typ"),
            (
                "private key in jwk",
                proof(&|h, _| h["jwk"] = private_jwk.clone()),
                "private",
            ),
            ("no jwk", proof(&|h, _| h["jwk"] = Value::Null), "jwk"),
            (
                "another key in the header",
                proof(&|h, _| h["jwk"] = other.public.clone()),
                "signature",
            ),
            (
                "jku instead of jwk",
                proof(&|h, _| h["jku"] = "http://evil.example/jwks".into()),
                "point to a key",
            ),
            ("alg none", unsigned(&key, &url, &token, "none"), "alg"),
            ("alg HS256", hmac_signed(&key, &url, &token), "alg"),
            (
                "oversized",
                proof(&|_, c| c["pad"] = "x".repeat(MAX_DPOP_PROOF_LEN).into()),
                "8 KiB",
            ),
            ("not a JWS", "not.a.jws".to_owned(), "compact JWS"),
        ];
        for (what, p, needle) in cases {
            let r = api.dpop_get(&token, &[&p]).await;
            let c = refused(&r, "invalid_dpop_proof", what);
            assert!(c.contains(needle), "{backend:?} {what}: {c}");
        }

        // A valid proof made with another key than the token's binding.
        let p = other.proof(clock, "GET", &url, &token);
        let c = refused(
            &api.dpop_get(&token, &[&p]).await,
            "invalid_token",
            "another key",
        );
        assert!(c.contains("not the key the token is bound to"), "{c}");

        // The Host header is the attacker's: it changes nothing. A proof
        // for the spoofed host is refused, the real one still passes.
        let spoofed = key.proof(clock, "GET", "http://evil.example/orders", &token);
        let r = api
            .http
            .get(&url)
            .header("host", "evil.example")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", spoofed)
            .send()
            .await
            .unwrap();
        let c = refused(&r, "invalid_dpop_proof", "spoofed host");
        assert!(c.contains("htu"), "{c}");
        let r = api
            .http
            .get(&url)
            .header("host", "evil.example")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof(clock, "GET", &url, &token))
            .send()
            .await
            .unwrap();
        ok(r, "real htu, spoofed host").await;
    }
}

#[tokio::test]
async fn schemes_and_headers_are_checked() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let api = api(|url| iss.config(Backend::default()).dpop_base_url(url)).await;
    let bound = iss.token(Some(&key.jkt()));
    let unbound = iss.token(None);
    let url = api.orders();
    let clock = &iss.clock;

    // No credentials: both challenges, no error.
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenges(&r),
        vec![
            format!("Bearer realm=\"{AUDIENCE}\""),
            "DPoP algs=\"ES256 EdDSA RS256 PS256\"".to_owned()
        ]
    );

    // A bound token sent as a bearer token (RFC 9449 7.2).
    let r = api.http.get(&url).bearer_auth(&bound).send().await.unwrap();
    let c = refused(&r, "invalid_token", "bound token as Bearer");
    assert!(c.contains("DPoP-bound"), "{c}");
    // An unbound token: fine as Bearer, refused with the DPoP scheme even
    // with a proof that is right in every other way.
    let r = api
        .http
        .get(&url)
        .bearer_auth(&unbound)
        .send()
        .await
        .unwrap();
    ok(r, "unbound as Bearer").await;
    let p = key.proof(clock, "GET", &url, &unbound);
    let c = refused(
        &api.dpop_get(&unbound, &[&p]).await,
        "invalid_token",
        "unbound as DPoP",
    );
    assert!(c.contains("not DPoP-bound"), "{c}");

    // No proof; two proofs (each good on its own).
    let c = refused(
        &api.dpop_get(&bound, &[]).await,
        "invalid_dpop_proof",
        "no proof",
    );
    assert!(c.contains("no DPoP proof"), "{c}");
    let p1 = key.proof(clock, "GET", &url, &bound);
    let p2 = key.proof(clock, "GET", &url, &bound);
    let c = refused(
        &api.dpop_get(&bound, &[&p1, &p2]).await,
        "invalid_dpop_proof",
        "two proofs",
    );
    assert!(c.contains("more than one"), "{c}");
    // A proof with the Bearer scheme, bound or not.
    for token in [&bound, &unbound] {
        let p = key.proof(clock, "GET", &url, token);
        let r = api
            .http
            .get(&url)
            .bearer_auth(token)
            .header("dpop", p)
            .send()
            .await
            .unwrap();
        let c = refused(&r, "invalid_dpop_proof", "proof with Bearer");
        assert!(c.contains("Bearer scheme"), "{c}");
    }
    // The token itself is checked under the DPoP scheme too.
    let mut parts: Vec<String> = bound.split('.').map(str::to_owned).collect();
    parts[3] = b64(vec![0u8; 32]);
    let tampered = parts.join(".");
    let p = key.proof(clock, "GET", &url, &tampered);
    let c = refused(
        &api.dpop_get(&tampered, &[&p]).await,
        "invalid_token",
        "tampered token",
    );
    assert!(c.contains("decrypt"), "{c}");
    // And the right request still passes after all that.
    let p = key.proof(clock, "GET", &url, &bound);
    ok(api.dpop_get(&bound, &[&p]).await, "right").await;
}

#[tokio::test]
async fn a_flood_fills_the_cache_but_never_lets_a_replay_through() {
    let iss = issuer().await;
    let api = api(|url| {
        iss.config(Backend::default())
            .dpop_base_url(url)
            .dpop_replay_cache_capacity(16)
    })
    .await;
    let url = api.orders();
    let clock = &iss.clock;
    // One key holds at most an eighth of the cache (2 of 16): a client
    // flooding with its own key is refused alone.
    let flooder = ClientKey::new("ES256");
    let flood_token = iss.token(Some(&flooder.jkt()));
    for i in 0..2 {
        let p = flooder.proof(clock, "GET", &url, &flood_token);
        ok(
            api.dpop_get(&flood_token, &[&p]).await,
            &format!("flood {i}"),
        )
        .await;
    }
    let r = api
        .dpop_get(
            &flood_token,
            &[&flooder.proof(clock, "GET", &url, &flood_token)],
        )
        .await;
    assert_eq!(r.status(), 503, "the flooding key is held off");
    // Seven more clients fill the cache (2 + 7 * 2 = 16).
    let mut clients = Vec::new();
    for _ in 0..7 {
        let key = ClientKey::new("ES256");
        let token = iss.token(Some(&key.jkt()));
        clients.push((key, token));
    }
    let mut first = None;
    for (i, (key, token)) in clients.iter().enumerate() {
        for j in 0..2 {
            let p = key.proof(clock, "GET", &url, token);
            ok(
                api.dpop_get(token, &[&p]).await,
                &format!("client {i} proof {j}"),
            )
            .await;
            first.get_or_insert((p, token.clone()));
        }
    }
    let (first, first_token) = first.unwrap();
    // Full of live proofs: a new one (any key) waits, a replay stays a replay.
    let key = ClientKey::new("ES256");
    let token = iss.token(Some(&key.jkt()));
    let r = api
        .dpop_get(&token, &[&key.proof(clock, "GET", &url, &token)])
        .await;
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let c = refused(
        &api.dpop_get(&first_token, &[&first]).await,
        "invalid_dpop_proof",
        "replay while full",
    );
    assert!(c.contains("already used"), "{c}");
    // Once the window has passed, the old proofs are forgotten (and stale),
    // new ones pass again.
    clock.advance(62);
    let c = refused(
        &api.dpop_get(&first_token, &[&first]).await,
        "invalid_dpop_proof",
        "replay after the window",
    );
    assert!(c.contains("iat"), "{c}");
    for i in 0..2 {
        let p = key.proof(clock, "GET", &url, &token);
        ok(api.dpop_get(&token, &[&p]).await, &format!("after {i}")).await;
    }
}

#[tokio::test]
async fn without_a_base_url_dpop_is_off_and_bound_tokens_are_refused() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let api = api(|_| iss.config(Backend::default())).await;
    let bound = iss.token(Some(&key.jkt()));
    let url = api.orders();
    // No credentials: the Bearer challenge alone, as before.
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(challenges(&r), vec![format!("Bearer realm=\"{AUDIENCE}\"")]);
    let p = key.proof(&iss.clock, "GET", &url, &bound);
    let r = api.dpop_get(&bound, &[&p]).await;
    assert_eq!(r.status(), 401);
    let c = challenges(&r);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].starts_with("Bearer error=\"invalid_token\"") && c[0].contains("DPoP scheme"),
        "{c:?}"
    );
    let r = api.http.get(&url).bearer_auth(&bound).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        challenges(&r)[0].contains("DPoP-bound"),
        "{:?}",
        challenges(&r)
    );
    assert_eq!(
        api.verifier.verify(&bound).await,
        Err(VerifierError::DpopBound)
    );
    assert_eq!(
        api.verifier.verify_dpop(&bound, &p, "GET", "/orders").await,
        Err(VerifierError::DpopDisabled)
    );
    ok(
        api.http
            .get(&url)
            .bearer_auth(iss.token(None))
            .send()
            .await
            .unwrap(),
        "unbound bearer",
    )
    .await;
}

#[test]
fn the_dpop_configuration_is_validated() {
    let api = ECDH_ES_A256KW
        .generate_ec_key_pair(EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair()
        .to_string();
    let c = VerifierConfig::new("https://i", AUDIENCE, api).dpop_base_url("https://api.example");
    Verifier::new(c.clone()).unwrap();
    let cases = [
        c.clone().dpop_base_url("api.example"),
        c.clone().dpop_base_url("https://api.example/?q"),
        c.clone().dpop_proof_window(Duration::ZERO),
        c.clone().dpop_proof_window(Duration::from_secs(3600)),
        c.clone().dpop_algs(["HS256"]),
        c.clone().dpop_algs(["none"]),
        c.clone().dpop_algs(Vec::<String>::new()),
        c.clone().dpop_algs(["ES384"]).backend(Backend::RustCrypto),
        c.clone().dpop_replay_cache_capacity(0),
    ];
    for bad in cases {
        let what = format!("{bad:?}");
        assert!(
            matches!(Verifier::new(bad), Err(VerifierError::Config(_))),
            "{what}"
        );
    }
    let v = Verifier::new(c.dpop_algs(["ES256", "PS256"])).unwrap();
    assert_eq!(v.dpop_algs(), Some("ES256 PS256"));
}
