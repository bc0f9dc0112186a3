//! /userinfo with DPoP-bound tokens (RFC 9449 7): the DPoP scheme with a
//! proof carrying `ath`, and the challenges of every refusal.

use super::*;

/// Userinfo takes a bound token only as `Authorization: DPoP` with a
/// proof of its key carrying `ath` (RFC 9449 7); anything else is 401
/// with a DPoP challenge.
async fn userinfo_wants_the_proof_of_a_bound_token(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let t = bound_tokens(app, &c, "openid profile", "", &key).await;
    let at = t["access_token"].as_str().unwrap();
    let get = |auth: String, proof: Option<String>| {
        let mut req = app
            .http
            .get(app.url("/userinfo"))
            .header("Authorization", auth);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let r = get(
        format!("DPoP {at}"),
        Some(key.userinfo_proof(app, "GET", at)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["preferred_username"], "dave");

    let challenge = |r: &reqwest::Response| {
        r.headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let cases = [
        (format!("Bearer {at}"), None, "invalid_token"),
        (format!("DPoP {at}"), None, "invalid_dpop_proof"),
        (
            format!("DPoP {at}"),
            Some(DpopKey::new().userinfo_proof(app, "GET", at)),
            "invalid_token",
        ),
        // No ath, and a proof for another method.
        (
            format!("DPoP {at}"),
            Some(key.proof(app, "GET", &app.url("/userinfo"))),
            "invalid_dpop_proof",
        ),
        (
            format!("DPoP {at}"),
            Some(key.userinfo_proof(app, "POST", at)),
            "invalid_dpop_proof",
        ),
    ];
    for (auth, proof, error) in cases {
        let r = get(auth.clone(), proof).await.unwrap();
        assert_eq!(r.status(), 401, "{auth:.10}");
        let ch = challenge(&r);
        assert!(ch.starts_with(&format!("DPoP error=\"{error}\"")), "{ch}");
        assert!(ch.contains("algs=\"ES256 EdDSA RS256 PS256\""), "{ch}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    // A replayed proof.
    let proof = key.userinfo_proof(app, "GET", at);
    assert_eq!(
        get(format!("DPoP {at}"), Some(proof.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = get(format!("DPoP {at}"), Some(proof)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("used before"));

    // An unbound token under the DPoP scheme; no credentials at all.
    let (code, verifier) = app.code(&c, "openid", "").await;
    let plain = app.redeem(&c, &code, &verifier).await;
    let plain = plain["access_token"].as_str().unwrap();
    let r = get(
        format!("DPoP {plain}"),
        Some(key.userinfo_proof(app, "GET", plain)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        challenge(&r).contains("not DPoP-bound"),
        "{}",
        challenge(&r)
    );
    let r = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let ch = challenge(&r);
    assert!(
        ch.starts_with("Bearer realm=\"gatehouse\"") && ch.contains("DPoP algs="),
        "{ch}"
    );
}

/// Challenges stay valid headers whatever a proof carried, and follow the
/// scheme the token came with.
async fn challenges_are_always_well_formed(app: &TestApp) {
    let key = DpopKey::new();
    let mut jwk: Value = serde_json::from_str(&key.public.to_string()).unwrap();
    jwk["kty"] = "é\u{7f}\"".into();
    let claims = json!({"htm": "GET", "htu": app.url("/userinfo"), "iat": app.clock.now(), "jti": "j",
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(b"x"))});
    let header =
        URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string());
    let proof = format!(
        "{header}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", "DPoP x")
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let ch = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(ch.starts_with("DPoP error=\"invalid_dpop_proof\""), "{ch}");

    // A bound token without openid: insufficient_scope in the DPoP scheme.
    let c = app.web_client().await;
    let t = bound_tokens(app, &c, "profile", "", &key).await;
    let at = t["access_token"].as_str().unwrap();
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", key.userinfo_proof(app, "GET", at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let ch = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(ch.starts_with("DPoP error=\"insufficient_scope\""), "{ch}");
}

crate::both_backends!(
    userinfo_wants_the_proof_of_a_bound_token,
    challenges_are_always_well_formed,
);
