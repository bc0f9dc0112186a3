//! JWE access tokens are read back only from what Gatehouse can decrypt and
//! verify: a genuine protected header (with its sealed `gh_ref`) on a
//! made-up or spliced body is inactive at `/introspect` and refused at
//! `/userinfo`; revoking the key that signed a resource server's token ends
//! it at introspection; tokens of the previous release's format stay
//! readable, older formats are refused.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_keys::{Alg, PublicKey};
use gatehouse_server::clients::ClientSpec;
use josekit::jwe::{enc::A256GCM, JweContentEncryption, JweDecrypter, JweHeader};
use josekit::jwk::alg::ec::EcKeyPair;
use rand::RngCore;
use serde_json::{json, Map, Value};

use crate::support::{ecdh_api, introspect, userinfo_status, TestApp, TestClient};

const API: &str = "https://api.example/forged";

async fn service_client(app: &TestApp) -> TestClient {
    app.create_client(ClientSpec {
        name: "svc".into(),
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["read".into()],
        ..ClientSpec::default()
    })
    .await
}

/// A client_credentials access token for the API.
async fn api_token(app: &TestApp, c: &TestClient) -> String {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", API),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header_of(token: &str) -> Map<String, Value> {
    let first = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap()
}

/// What the API does with a token: unwrap the content-encryption key with
/// its private key (standard ECDH-ES+A256KW) and decrypt. Returns the CEK
/// and the nested JWS.
fn open_as_api(kp: &EcKeyPair, token: &str) -> (Vec<u8>, String) {
    let decrypter = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&kp.to_jwk_private_key())
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header = JweHeader::from_map(header_of(token)).unwrap();
    let wrapped = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let cek = decrypter
        .decrypt(Some(&wrapped), &A256GCM, &header)
        .unwrap()
        .into_owned();
    let (jws, _) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    (cek, String::from_utf8(jws).unwrap())
}

/// `payload` encrypted under `cek` behind `token`'s own protected header
/// and wrapped key: what an API that knows a token's CEK could make.
fn reencrypt(token: &str, cek: &[u8], payload: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut iv = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut iv);
    let (ct, tag) = A256GCM
        .encrypt(cek, Some(&iv), payload.as_bytes(), parts[0].as_bytes())
        .unwrap();
    format!(
        "{}.{}.{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ct),
        URL_SAFE_NO_PAD.encode(tag.unwrap())
    )
}

/// A resource server's token: its genuine header (and sealed `gh_ref`) on a
/// made-up body, on another token's body, or on a body re-encrypted by the
/// API itself (which knows the CEK) is inactive; the genuine token is active.
async fn a_genuine_header_on_a_made_up_body_is_inactive(app: &TestApp) {
    let kp = ecdh_api(app, API).await;
    let c = service_client(app).await;
    let at = api_token(app, &c).await;
    let other = api_token(app, &c).await;
    let i = introspect(app, &c, &at).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], API);
    assert_eq!(i["scope"], "read");
    assert_eq!(i["client_id"], c.id.as_str());

    // The API decrypts as usual (the derived CEK is wrapped like any other).
    let (cek, jws) = open_as_api(&kp, &at);
    let (_, other_jws) = open_as_api(&kp, &other);
    let inner = gatehouse_keys::peek_claims(&jws).unwrap();
    assert_eq!(inner.claims["jti"], i["jti"]);

    let parts: Vec<&str> = at.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let ct_len = URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len();
    let made_up = format!(
        "{}.{}.{}.{}.{}",
        parts[0],
        random_b64(40),
        random_b64(12),
        random_b64(ct_len),
        random_b64(16)
    );
    let spliced = format!("{}.{}", parts[0], other_parts[1..].join("."));
    // Under the right CEK: another genuine signed token (another jti), and
    // a token signed by someone else under Gatehouse's kid.
    let swapped_jws = reencrypt(&at, &cek, &other_jws);
    let mut forged_claims = inner.claims.clone();
    forged_claims.insert("scope".into(), "read admin".into());
    let forged_payload = URL_SAFE_NO_PAD.encode(Value::Object(forged_claims).to_string());
    let signing_input = format!("{}.{forged_payload}", jws.split('.').next().unwrap());
    let self_signed = reencrypt(
        &at,
        &cek,
        &format!("{signing_input}.{}", jws.split('.').nth(2).unwrap()),
    );
    for (what, token) in [
        ("random body", &made_up),
        ("another token's body", &spliced),
        ("another signed token under this CEK", &swapped_jws),
        ("forged claims under this CEK", &self_signed),
    ] {
        assert_eq!(
            introspect(app, &c, token).await,
            json!({ "active": false }),
            "{what}"
        );
        assert_eq!(userinfo_status(app, token).await, 401, "{what}");
    }
    // The genuine token is untouched by all this.
    assert_eq!(introspect(app, &c, &at).await["active"], true);
}

/// The `gh_ref` of a userinfo token moved into a header Gatehouse cannot
/// decrypt with its own keys, on a made-up body: refused at `/userinfo`
/// and inactive at `/introspect`.
async fn a_userinfo_reference_on_a_made_up_token_is_refused(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid email", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, at).await, 200);
    let header = header_of(at);
    let forged_header = json!({
        "alg": "RSA-OAEP-256",
        "enc": "A256GCM",
        "kid": "api",
        "cty": "JWT",
        "gh_ref": header["gh_ref"],
    });
    let forged = format!(
        "{}.{}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(forged_header.to_string()),
        random_b64(256),
        random_b64(12),
        random_b64(300),
        random_b64(16)
    );
    assert_eq!(userinfo_status(app, &forged).await, 401);
    assert_eq!(
        introspect(app, &c, &forged).await,
        json!({ "active": false })
    );
    assert_eq!(userinfo_status(app, at).await, 200);
}

/// Revoking the key that signed a resource server's token ends the token
/// at introspection, on every instance.
async fn revoking_the_signing_key_ends_resource_server_tokens(app: &TestApp) {
    let kp = ecdh_api(app, API).await;
    let c = service_client(app).await;
    let at = api_token(app, &c).await;
    let second = app.second_instance().await;
    assert_eq!(introspect(app, &c, &at).await["active"], true);
    assert_eq!(introspect(&second, &c, &at).await["active"], true);
    let (_, jws) = open_as_api(&kp, &at);
    let kid = gatehouse_keys::peek_header(&jws).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.state.keys.revoke(&kid).await.unwrap();
    second.state.keys.refresh().await.unwrap();
    assert_eq!(introspect(app, &c, &at).await, json!({ "active": false }));
    assert_eq!(
        introspect(&second, &c, &at).await,
        json!({ "active": false })
    );
    // Tokens signed from now on (by the replacement key) are active.
    let fresh = api_token(app, &c).await;
    assert_eq!(introspect(app, &c, &fresh).await["active"], true);
    second.stop().await;
}

/// The reference an earlier version sealed into `gh_ref`: the claims.
fn legacy_reference(claims: &Map<String, Value>) -> Value {
    json!({
        "jti": claims["jti"], "sub": claims["sub"], "cid": claims["client_id"],
        "aud": claims["aud"], "scp": claims["scope"], "iat": claims["iat"],
        "exp": claims["exp"],
    })
}

/// A token as releases before the previous one made it: random CEK, the
/// claims sealed in `gh_ref`.
fn legacy_token(app: &TestApp, to: &PublicKey, claims: &Map<String, Value>) -> String {
    let jws = app.state.keys.sign(Alg::ES256, "at+jwt", claims).unwrap();
    let mut header = Map::new();
    let sealed = app
        .state
        .keys
        .seal_reference(legacy_reference(claims).to_string().as_bytes())
        .unwrap();
    header.insert("gh_ref".into(), sealed.into());
    gatehouse_keys::encrypt(&jws, to, Some("JWT"), Some(&header)).unwrap()
}

fn api_public_key(kp: &EcKeyPair) -> PublicKey {
    let mut jwk: Value = serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
    jwk["alg"] = "ECDH-ES+A256KW".into();
    jwk["kid"] = "api".into();
    PublicKey::from_jwk_json(&jwk.to_string()).unwrap()
}

/// The `gh_ref` of the release before the compact one (JSON, the jti
/// alone) is still read: tokens issued before an upgrade, or by an older
/// instance during a rolling one, stay introspectable and revocable. The
/// formats before it (the claims sealed in `gh_ref` with a random CEK;
/// userinfo tokens encrypted to the own ECDH key) are no longer read: such
/// tokens expired long ago, and a token in one now is refused.
async fn only_the_previous_reference_format_is_still_read(app: &TestApp) {
    let kp = ecdh_api(app, API).await;
    let c = service_client(app).await;
    let to_api = api_public_key(&kp);
    let now = app.state.now();
    let claims = |aud: &str, sub: &str, scope: &str| {
        let v = json!({
            "iss": app.base, "sub": sub, "aud": aud, "exp": now + 900, "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(), "client_id": c.id,
            "scope": scope,
        });
        v.as_object().unwrap().clone()
    };

    // The previous release: the JSON reference, CEK derived from the jti.
    let old = claims(API, &c.id, "read");
    let jti = old["jti"].as_str().unwrap();
    let jws = app.state.keys.sign(Alg::ES256, "at+jwt", &old).unwrap();
    let mut header = Map::new();
    let sealed = app
        .state
        .keys
        .seal_reference(json!({ "jti": jti }).to_string().as_bytes())
        .unwrap();
    header.insert("gh_ref".into(), sealed.into());
    let token = app
        .state
        .keys
        .encrypt_access_token(&jws, &to_api, jti, Some("JWT"), Some(&header))
        .unwrap();
    let (_, opened) = open_as_api(&kp, &token);
    assert_eq!(gatehouse_keys::peek_claims(&opened).unwrap().claims, old);
    let i = introspect(app, &c, &token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(
        (&i["jti"], &i["aud"], &i["scope"]),
        (&old["jti"], &json!(API), &json!("read"))
    );
    crate::support::revoke(app, &c, &token).await;
    assert_eq!(
        introspect(app, &c, &token).await,
        json!({ "active": false })
    );

    // Older: the claims in `gh_ref` and a random CEK. Not read any more.
    let older = legacy_token(app, &to_api, &claims(API, &c.id, "read"));
    assert_eq!(
        introspect(app, &c, &older).await,
        json!({ "active": false })
    );

    // Older: a userinfo token encrypted to the own ECDH key. Not read.
    let user = app.create_user("erin", "pw-erin-123456").await;
    let own = claims(&app.url("/userinfo"), &user.id, "openid");
    let jws = app.state.keys.sign(Alg::ES256, "at+jwt", &own).unwrap();
    let mut header = Map::new();
    let sealed = app
        .state
        .keys
        .seal_reference(legacy_reference(&own).to_string().as_bytes())
        .unwrap();
    header.insert("gh_ref".into(), sealed.into());
    let old_own = app
        .state
        .keys
        .encrypt_to_self(&jws, Some("JWT"), Some(&header))
        .unwrap();
    assert_eq!(userinfo_status(app, &old_own).await, 401);
    assert_eq!(
        introspect(app, &c, &old_own).await,
        json!({ "active": false })
    );
}

/// `gh_ref` holds the token id (and grant and status index), not the
/// claims: the header shrinks against the earlier format of the same token.
async fn the_reference_no_longer_carries_the_claims(app: &TestApp) {
    let kp = ecdh_api(app, API).await;
    let c = service_client(app).await;
    let at = api_token(app, &c).await;
    let (_, jws) = open_as_api(&kp, &at);
    let claims = gatehouse_keys::peek_claims(&jws).unwrap().claims;
    let header = header_of(&at);
    let gh_ref = header["gh_ref"].as_str().unwrap();
    // The earlier format also carried the status index (list 0 here).
    let mut earlier = legacy_reference(&claims);
    earlier["sli"] = claims["status"]["status_list"]["idx"].clone();
    let legacy = app
        .state
        .keys
        .seal_reference(earlier.to_string().as_bytes())
        .unwrap();
    let mut legacy_header = header.clone();
    legacy_header.insert("gh_ref".into(), legacy.clone().into());
    let header_len = at.split('.').next().unwrap().len();
    let legacy_header_len = URL_SAFE_NO_PAD
        .encode(Value::Object(legacy_header).to_string())
        .len();
    eprintln!(
        "gh_ref {} bytes (earlier format {}); protected header {} (earlier {}); token {} (earlier {})",
        gh_ref.len(),
        legacy.len(),
        header_len,
        legacy_header_len,
        at.len(),
        at.len() + legacy_header_len - header_len
    );
    assert!(gh_ref.len() <= 160, "gh_ref is {} bytes", gh_ref.len());
    assert!(legacy.len() > gh_ref.len() + 150);
}

crate::both_backends!(
    a_genuine_header_on_a_made_up_body_is_inactive,
    a_userinfo_reference_on_a_made_up_token_is_refused,
    revoking_the_signing_key_ends_resource_server_tokens,
    only_the_previous_reference_format_is_still_read,
    the_reference_no_longer_carries_the_claims
);
