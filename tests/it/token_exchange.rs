//! Token exchange (RFC 8693) over real HTTP: a user's token for API B
//! exchanged by B's client for API C, then by C's client for API D (the
//! chain in `act`, read as D reads it and at introspection); revoking the
//! grant, or a subject with no grant, reaches every hop; an opaque target
//! keeps the chain; ID-token subjects; DPoP-bound subjects. The refusals
//! are in `token_exchange_refused.rs`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_server::clients::ClientSpec;
use gatehouse_storage::model::ResourceServer;
use josekit::jwk::alg::ec::EcKeyPair;
use serde_json::{json, Value};

use crate::{
    dpop::{token_with, DpopKey},
    support::{ecdh_api, introspect, revoke, TestApp, TestClient},
};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const B: &str = "https://b.example";
pub const C: &str = "https://c.example";
pub const D: &str = "https://d.example";

/// Three APIs and their clients: B's client may exchange for C, C's for
/// D; each API's client is linked to it. `a` is the user's app (code flow
/// to B; it may also exchange its ID tokens for C).
pub struct World {
    pub a: TestClient,
    pub b: TestClient,
    pub c: TestClient,
    pub d: TestClient,
    pub kp_c: EcKeyPair,
    pub kp_d: EcKeyPair,
}

pub async fn service(app: &TestApp, name: &str, grants: &[&str]) -> TestClient {
    app.create_client(ClientSpec {
        name: name.into(),
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        scopes: vec!["read".into()],
        ..ClientSpec::default()
    })
    .await
}

/// Sets who is linked to `audience` and who may exchange for it.
pub async fn link(app: &TestApp, audience: &str, linked: &[&TestClient], from: &[&TestClient]) {
    let r = app.state.store.resource(audience).await.unwrap().unwrap();
    let ids = |cs: &[&TestClient]| cs.iter().map(|c| c.id.clone().into()).collect();
    app.state
        .store
        .update_resource(&ResourceServer {
            clients: ids(linked),
            allow_exchange_from: ids(from),
            ..r
        })
        .await
        .unwrap();
    app.state.registry.refresh().await.unwrap();
}

pub async fn world(app: &TestApp) -> World {
    ecdh_api(app, B).await;
    let kp_c = ecdh_api(app, C).await;
    let kp_d = ecdh_api(app, D).await;
    let a = app
        .create_client(ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                TOKEN_EXCHANGE.into(),
            ],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;
    let b = service(app, "B", &[TOKEN_EXCHANGE, "client_credentials"]).await;
    let c = service(app, "C", &[TOKEN_EXCHANGE]).await;
    let d = service(app, "D", &[TOKEN_EXCHANGE]).await;
    link(app, B, &[&b], &[]).await;
    link(app, C, &[&c], &[&b, &a]).await;
    link(app, D, &[&d], &[&c]).await;
    World {
        a,
        b,
        c,
        d,
        kp_c,
        kp_d,
    }
}

/// The user's tokens from the code flow with `resource` B: the access
/// token (for B), the refresh token and the ID token.
pub async fn user_tokens(app: &TestApp, w: &World) -> Value {
    let (code, verifier) = app
        .code(
            &w.a,
            "openid offline_access read",
            "&resource=https%3A%2F%2Fb.example",
        )
        .await;
    app.redeem(&w.a, &code, &verifier).await
}

/// A client_credentials token of `c` for API B (scope `read`): a
/// subject with no grant, whose `sub` is the client itself.
pub async fn own_token(app: &TestApp, c: &TestClient) -> String {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", B),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

/// Exchanges an access token as `c`; the status and JSON answer.
pub async fn exchange(
    app: &TestApp,
    c: &TestClient,
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    let r = app.token(c, &form).await;
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

/// The claims of a JWE access token as the API holding `kp` reads them.
pub fn api_claims(kp: &EcKeyPair, token: &str) -> Value {
    let decrypter = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&kp.to_jwk_private_key())
        .unwrap();
    let (jws, _) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    let jws = std::str::from_utf8(&jws).unwrap();
    let payload = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// B's client exchanges the user's token for C, C's client that for D.
async fn two_hops(app: &TestApp, w: &World, subject: &str) -> (String, String) {
    let (s, hop1) = exchange(app, &w.b, subject, &[("resource", C)]).await;
    assert_eq!(s, 200, "{hop1}");
    let hop1 = hop1["access_token"].as_str().unwrap().to_owned();
    let (s, hop2) = exchange(app, &w.c, &hop1, &[("audience", D)]).await;
    assert_eq!(s, 200, "{hop2}");
    (hop1, hop2["access_token"].as_str().unwrap().to_owned())
}

async fn the_chain_carries_the_user_and_every_actor(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    let subject = t["access_token"].as_str().unwrap();

    let (s, hop1) = exchange(app, &w.b, subject, &[("resource", C), ("audience", C)]).await;
    assert_eq!(s, 200, "{hop1}");
    assert_eq!(hop1["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(hop1["token_type"], "Bearer");
    assert_eq!(hop1["scope"], "read");
    assert!(hop1.get("refresh_token").is_none() && hop1.get("id_token").is_none());
    assert!(hop1["expires_in"].as_i64().unwrap() <= t["expires_in"].as_i64().unwrap());
    let c1 = api_claims(&w.kp_c, hop1["access_token"].as_str().unwrap());
    assert_eq!(c1["sub"], user.id.as_str());
    assert_eq!(c1["client_id"], w.b.id);
    assert_eq!(c1["aud"], C);
    assert_eq!(c1["act"], json!({"sub": w.b.id}));

    let hop1 = hop1["access_token"].as_str().unwrap();
    let (s, hop2) = exchange(app, &w.c, hop1, &[("audience", D), ("scope", "read")]).await;
    assert_eq!(s, 200, "{hop2}");
    let hop2 = hop2["access_token"].as_str().unwrap();
    let c2 = api_claims(&w.kp_d, hop2);
    assert_eq!(c2["sub"], user.id.as_str());
    assert_eq!(c2["client_id"], w.c.id);
    assert_eq!(c2["aud"], D);
    assert_eq!(c2["scope"], "read");
    assert_eq!(c2["act"], json!({"sub": w.c.id, "act": {"sub": w.b.id}}));
    assert!(c2["exp"].as_i64() <= c1["exp"].as_i64());

    // D's client (linked to D) and the token's own client see the chain.
    for caller in [&w.d, &w.c] {
        let i = introspect(app, caller, hop2).await;
        assert_eq!(i["active"], true, "{i}");
        assert_eq!(i["sub"], user.id.as_str());
        assert_eq!(i["act"], json!({"sub": w.c.id, "act": {"sub": w.b.id}}));
    }
    // B's client is neither: the unknown-token answer.
    assert_eq!(introspect(app, &w.b, hop2).await, json!({"active": false}));
}

async fn revoking_the_grant_revokes_every_hop(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let (hop1, hop2) = two_hops(app, &w, t["access_token"].as_str().unwrap()).await;
    assert_eq!(introspect(app, &w.c, &hop1).await["active"], true);
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], true);

    revoke(app, &w.a, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(introspect(app, &w.c, &hop1).await["active"], false);
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], false);
    // And nothing more is exchanged from the dead grant.
    let (s, e) = exchange(app, &w.c, &hop1, &[("audience", D)]).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")));
}

/// Deleting the user's app (what `clients delete` and RFC 7592 DELETE
/// do) revokes its grants, and so what other clients exchanged from them.
async fn deleting_the_subjects_client_revokes_every_hop(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let (hop1, hop2) = two_hops(app, &w, t["access_token"].as_str().unwrap()).await;
    app.state
        .tokens
        .revoke_client_tokens(&w.a.id)
        .await
        .unwrap();
    app.state.store.delete_client(&w.a.id).await.unwrap();
    assert_eq!(introspect(app, &w.c, &hop1).await["active"], false);
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], false);
}

/// A client_credentials token has no grant: what is exchanged from it
/// carries its jti as the grant, so revoking it reaches every hop.
async fn revoking_a_grantless_subject_revokes_every_hop(app: &TestApp) {
    let w = world(app).await;
    let x = service(app, "X", &["client_credentials"]).await;
    let subject = &own_token(app, &x).await;
    let (hop1, hop2) = two_hops(app, &w, subject).await;
    let claims = api_claims(&w.kp_d, &hop2);
    assert_eq!(claims["sub"], x.id, "the subject is the client X");
    assert_eq!(claims["client_id"], w.c.id);

    revoke(app, &x, subject).await;
    assert_eq!(introspect(app, &w.c, &hop1).await["active"], false);
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], false);
}

/// Deleting the client of a client_credentials subject ends what was
/// exchanged from its tokens (they carry it as `sub`, not as `client_id`).
async fn deleting_a_grantless_subjects_client_revokes_every_hop(app: &TestApp) {
    let w = world(app).await;
    let x = service(app, "X", &["client_credentials"]).await;
    let subject = &own_token(app, &x).await;
    let (hop1, hop2) = two_hops(app, &w, subject).await;
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], true);
    app.state.tokens.revoke_client_tokens(&x.id).await.unwrap();
    app.state.store.delete_client(&x.id).await.unwrap();
    assert_eq!(introspect(app, &w.c, &hop1).await["active"], false);
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], false);
}

/// An opaque target stores the chain; introspection shows it, and the
/// grant's revocation reaches it.
async fn an_opaque_target_keeps_the_chain(app: &TestApp) {
    let w = world(app).await;
    let d = app.state.store.resource(D).await.unwrap().unwrap();
    app.state
        .store
        .update_resource(&ResourceServer {
            token_format: "opaque".parse().unwrap(),
            ..d
        })
        .await
        .unwrap();
    app.state.registry.refresh().await.unwrap();
    let t = user_tokens(app, &w).await;
    let (_, hop2) = two_hops(app, &w, t["access_token"].as_str().unwrap()).await;
    assert!(!hop2.contains('.'), "an opaque token");
    let i = introspect(app, &w.d, &hop2).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["act"], json!({"sub": w.c.id, "act": {"sub": w.b.id}}));
    revoke(app, &w.a, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(introspect(app, &w.d, &hop2).await["active"], false);
}

/// An ID token issued to the caller is a subject: the new token says who
/// the user is and carries no API scope; issued to another client, no.
async fn id_token_subjects_belong_to_their_audience(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let id_token = t["id_token"].as_str().unwrap();
    let send = |c: TestClient, scope: Option<&'static str>| async move {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN),
            ("resource", C),
        ];
        form.extend(scope.map(|s| ("scope", s)));
        let r = app.token(&c, &form).await;
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (s, ok) = send(w.a.clone(), None).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["scope"], "");
    let claims = api_claims(&w.kp_c, ok["access_token"].as_str().unwrap());
    assert_eq!(claims["act"], json!({"sub": w.a.id}));
    assert_eq!(claims["client_id"], w.a.id);
    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], user.id.as_str());

    // B may exchange for C, but this ID token is A's.
    let (s, e) = send(w.b.clone(), None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    assert!(e["error_description"]
        .as_str()
        .unwrap()
        .contains("not issued to this client"));

    // Asking an API scope of an ID token widens it.
    let (s, e) = send(w.a.clone(), Some("read")).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );

    // Expired: refused.
    app.clock.advance(app.state.settings.lifetimes.id_token + 1);
    let (s, e) = send(w.a.clone(), None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    assert!(e["error_description"].as_str().unwrap().contains("expired"));
}

/// A DPoP-bound subject needs a proof of its key; the new token is bound
/// to it too.
async fn a_bound_subject_needs_a_proof_of_its_key(app: &TestApp) {
    let w = world(app).await;
    let x = service(app, "X", &["client_credentials"]).await;
    let key = DpopKey::new();
    let cc = [
        ("grant_type", "client_credentials"),
        ("resource", B),
        ("scope", "read"),
    ];
    let r = token_with(app, &x, &cc, &[&key.token_proof(app)]).await;
    let bound: Value = r.json().await.unwrap();
    assert_eq!(bound["token_type"], "DPoP");
    let subject = bound["access_token"].as_str().unwrap();
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("resource", C),
    ];
    for (proofs, says) in [
        (vec![], "send a DPoP proof of that key"),
        (
            vec![DpopKey::new().proof(app, "POST", &app.url("/token"))],
            "bound to another DPoP key",
        ),
    ] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = token_with(app, &w.b, &form, &proofs).await;
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_request", "{e}");
        assert!(
            e["error_description"].as_str().unwrap().contains(says),
            "{e}"
        );
    }
    let r = token_with(app, &w.b, &form, &[&key.token_proof(app)]).await;
    assert_eq!(r.status(), 200);
    let ok: Value = r.json().await.unwrap();
    assert_eq!(ok["token_type"], "DPoP");
    let claims = api_claims(&w.kp_c, ok["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({"jkt": key.jkt}));
}

crate::both_backends!(
    the_chain_carries_the_user_and_every_actor,
    revoking_the_grant_revokes_every_hop,
    deleting_the_subjects_client_revokes_every_hop,
    revoking_a_grantless_subject_revokes_every_hop,
    deleting_a_grantless_subjects_client_revokes_every_hop,
    an_opaque_target_keeps_the_chain,
    id_token_subjects_belong_to_their_audience,
    a_bound_subject_needs_a_proof_of_its_key,
);
