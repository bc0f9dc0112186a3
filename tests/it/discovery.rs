//! Discovery and JWKS: complete, truthful, cacheable.

use serde_json::Value;

use crate::support::TestApp;

async fn discovery_document(app: &TestApp) {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        let d: Value = r.json().await.unwrap();
        assert_eq!(d["issuer"], app.base);
        assert_eq!(d["authorization_endpoint"], app.url("/authorize"));
        assert_eq!(d["token_endpoint"], app.url("/token"));
        assert_eq!(d["jwks_uri"], app.url("/jwks"));
        assert_eq!(d["userinfo_endpoint"], app.url("/userinfo"));
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        // Request objects by value (RFC 9101) and pushed requests (RFC 9126);
        // no request_uri of the client's own (never fetched).
        assert_eq!(d["request_parameter_supported"], true);
        assert_eq!(d["request_uri_parameter_supported"], false);
        assert_eq!(
            d["request_object_signing_alg_values_supported"],
            serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
        );
        assert_eq!(d["pushed_authorization_request_endpoint"], app.url("/par"));
        assert_eq!(d["require_pushed_authorization_requests"], false);
        assert!(d["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into()));
        // Every advertised endpoint answers something other than 404.
        for e in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "introspection_endpoint",
            "revocation_endpoint",
            "end_session_endpoint",
            "pushed_authorization_request_endpoint",
        ] {
            let url = d[e].as_str().unwrap();
            let s = app.http.get(url).send().await.unwrap().status();
            assert_ne!(s, 404, "{e} at {url}");
        }
        let r = app
            .http
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
    }
}

async fn jwks_publishes_public_keys_only(app: &TestApp) {
    let r = app.http.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let max_age: i64 = r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .trim_start_matches("public, max-age=")
        .parse()
        .unwrap();
    assert!(
        max_age > 0 && max_age < 3600,
        "max-age must be shorter than the pre-publication window"
    );
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    // Active and next for the two default signing algorithms (RS256,
    // ES256; signing_algs) and the own encryption key.
    assert_eq!(keys.len(), 6, "{jwks}");
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "JWKS leaks {private}");
        }
        assert!(k["kid"].is_string() && k["alg"].is_string() && k["use"].is_string());
    }
    let r = app
        .http
        .get(app.url("/jwks"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

crate::both_backends!(discovery_document, jwks_publishes_public_keys_only);
