//! The token status list (IETF draft-ietf-oauth-status-list): every JWE
//! access token points at a bit, `GET /statuslists/{id}` serves the signed,
//! compressed list, and every kind of revocation sets the bit.

use std::io::Read;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_server::clients::ClientSpec;
use josekit::jwk::alg::ec::EcKeyPair;
use serde_json::Value;

use crate::support::{ecdh_api, introspect, published_jwk, revoke, TestApp, TestClient};

/// The `status.status_list` of a token: (idx, uri).
fn status_of(claims: &Value) -> (u64, String) {
    let s = &claims["status"]["status_list"];
    (
        s["idx"]
            .as_u64()
            .unwrap_or_else(|| panic!("no status in {claims}")),
        s["uri"].as_str().unwrap().to_owned(),
    )
}

/// Fetches a status list, checks the response and the token per the draft
/// (typ, signature against the JWKS, sub, ttl), and returns the list's bytes.
/// `uri` names the list at the issuer; it is fetched from instance `app`.
async fn fetch_list(app: &TestApp, uri: &str) -> Vec<u8> {
    let at_app = uri.replace(&app.state.settings.issuer, &app.url(""));
    let r = app.http.get(at_app).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/statuslist+jwt");
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    let jwt = r.text().await.unwrap();
    let header = josekit::jwt::decode_header(&jwt).unwrap();
    assert_eq!(header.claim("typ").unwrap(), "statuslist+jwt");
    assert_eq!(header.claim("alg").unwrap(), "ES256");
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    let jwk = published_jwk(app, &kid).await;
    let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let (payload, _) = josekit::jwt::decode_with_verifier(&jwt, &verifier).unwrap();
    assert_eq!(payload.subject(), Some(uri));
    assert_eq!(payload.claim("ttl").unwrap(), 60);
    let iat = payload.claim("iat").unwrap().as_i64().unwrap();
    assert!(payload.claim("exp").unwrap().as_i64().unwrap() > iat);
    let list = payload.claim("status_list").unwrap();
    assert_eq!(list["bits"], 1);
    let z = URL_SAFE_NO_PAD
        .decode(list["lst"].as_str().unwrap())
        .unwrap();
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(&z[..])
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn revoked(bytes: &[u8], idx: u64) -> bool {
    bytes[(idx / 8) as usize] & (1 << (idx % 8)) != 0
}

/// A resource server whose key the test holds, and a client_credentials client.
async fn api(app: &TestApp) -> (EcKeyPair, TestClient) {
    let kp = ecdh_api(app, "https://api.example").await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;
    (kp, c)
}

/// A token for the API, and its claims as the API sees them after decrypting.
async fn api_token(app: &TestApp, kp: &EcKeyPair, c: &TestClient) -> (String, Value) {
    let t: Value = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example"),
                ("scope", "read"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let at = t["access_token"].as_str().unwrap().to_owned();
    let decrypter = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&kp.to_jwk_private_key())
        .unwrap();
    let (jws, _) = josekit::jwe::deserialize_compact(&at, &decrypter).unwrap();
    let payload = std::str::from_utf8(&jws)
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (at, claims)
}

/// A resource server's token carries a status claim; revoking the token at
/// /revoke sets its bit (and only its bit) in the signed list.
async fn revoking_a_token_sets_its_bit(app: &TestApp) {
    let (kp, c) = api(app).await;
    let (at1, claims1) = api_token(app, &kp, &c).await;
    let (_, claims2) = api_token(app, &kp, &c).await;
    let (idx1, uri1) = status_of(&claims1);
    let (idx2, uri2) = status_of(&claims2);
    assert_ne!(idx1, idx2, "indices are never shared");
    assert_eq!(uri1, uri2);
    assert_eq!(uri1, app.url("/statuslists/0"));
    // Introspection shows the same claim (from the sealed header reference).
    assert_eq!(
        status_of(&introspect(app, &c, &at1).await),
        (idx1, uri1.clone())
    );

    let before = fetch_list(app, &uri1).await;
    assert_eq!(before.len(), 1 << 17, "2^20 one-bit entries");
    assert!(!revoked(&before, idx1));
    revoke(app, &c, &at1).await;
    let after = fetch_list(app, &uri1).await;
    assert!(revoked(&after, idx1), "the revoked token's bit is set");
    assert!(!revoked(&after, idx2), "the other token's bit is not");
}

/// Revoking a grant (its refresh token) and forcing a logout set the bits of
/// the user's access tokens too: those carry no per-token revocation.
async fn grant_and_subject_revocations_set_bits(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t1 = app.redeem(&c, &code, &verifier).await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t2 = app.redeem(&c, &code, &verifier).await;
    let (idx1, uri) = status_of(&introspect(app, &c, t1["access_token"].as_str().unwrap()).await);
    let (idx2, _) = status_of(&introspect(app, &c, t2["access_token"].as_str().unwrap()).await);
    let list = fetch_list(app, &uri).await;
    assert!(!revoked(&list, idx1) && !revoked(&list, idx2));

    revoke(app, &c, t1["refresh_token"].as_str().unwrap()).await;
    let list = fetch_list(app, &uri).await;
    assert!(
        revoked(&list, idx1),
        "revoking the grant revoked its access token"
    );
    assert!(!revoked(&list, idx2), "another grant is untouched");

    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    let list = fetch_list(app, &uri).await;
    assert!(
        revoked(&list, idx2),
        "forced logout revoked the user's tokens"
    );
}

/// Bad requests get plain, standard answers.
async fn the_endpoint_refuses_what_it_does_not_serve(app: &TestApp) {
    let (kp, c) = api(app).await;
    api_token(app, &kp, &c).await;
    for (path, status) in [
        ("/statuslists/abc", 404),
        ("/statuslists/007", 404),
        ("/statuslists/-1", 404),
        ("/statuslists/1", 404), // no index of list 1 handed out yet
        ("/statuslists/99999999999999999999", 404),
        ("/statuslists/0", 200),
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    let r = app
        .http
        .post(app.url("/statuslists/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let get = |accept: &'static str| {
        app.http
            .get(app.url("/statuslists/0"))
            .header("accept", accept)
            .send()
    };
    assert_eq!(get("text/html").await.unwrap().status(), 406);
    assert_eq!(
        get("application/statuslist+cwt").await.unwrap().status(),
        406
    );
    assert_eq!(
        get("application/statuslist+jwt").await.unwrap().status(),
        200
    );
    assert_eq!(get("text/html, */*;q=0.1").await.unwrap().status(), 200);
    assert_eq!(get("*/*;q=0").await.unwrap().status(), 406);
}

/// Two instances on one database: a revocation at one shows in the other's
/// list, and the instances never hand out the same index.
async fn instances_share_the_lists(app: &TestApp) {
    let other = app.second_instance().await;
    let (kp, c) = api(app).await;
    let (at, claims_a) = api_token(app, &kp, &c).await;
    let (_, claims_b) = api_token(&other, &kp, &c).await;
    let (idx_a, uri) = status_of(&claims_a);
    let (idx_b, _) = status_of(&claims_b);
    assert_ne!(idx_a, idx_b);
    revoke(app, &c, &at).await;
    let list = fetch_list(&other, &uri).await;
    assert!(revoked(&list, idx_a));
    assert!(!revoked(&list, idx_b));
    other.stop().await;
}

/// Indices per list (gatehouse_server's LIST_BITS).
const LIST_BITS: i64 = 1 << 20;

/// Far beyond the high-water mark a list is answered 404 from memory: no
/// lock, no database (here: none left). The list just above the mark is
/// looked up, so it answers 503 while the database is away.
async fn far_ids_are_answered_without_the_database(app: &TestApp) {
    let (kp, c) = api(app).await;
    api_token(app, &kp, &c).await;
    let status = |path: &'static str| async move {
        app.http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("/statuslists/0").await, 200);
    app.state.store.clone().close().await.unwrap();
    for far in [
        "/statuslists/2",
        "/statuslists/5000",
        "/statuslists/9223372036854775807",
    ] {
        assert_eq!(status(far).await, 404, "{far}");
    }
    assert_eq!(
        status("/statuslists/1").await,
        503,
        "just above: asks the database"
    );
    assert_eq!(
        status("/statuslists/0").await,
        200,
        "list 0 is still cached"
    );
}

/// Another instance starts list 1 right after this instance looked for it
/// (within the mark's refresh interval): the list is found at once, never
/// 404. Lists beyond it stay 404.
async fn a_fresh_block_of_another_instance_is_found_at_once(app: &TestApp) {
    let other = app.second_instance().await;
    let (kp, c) = api(app).await;
    api_token(app, &kp, &c).await;
    let get = |path: &'static str| app.http.get(app.url(path)).send();
    assert_eq!(get("/statuslists/1").await.unwrap().status(), 404);
    // Everything up to list 1 reserved elsewhere (a block of half a list
    // starts at a multiple of its size, so it ends at list 1); the other
    // instance's next block lies in list 1.
    app.state
        .store
        .reserve_status_block(LIST_BITS / 2)
        .await
        .unwrap();
    let (_, claims) = api_token(&other, &kp, &c).await;
    let (_, uri) = status_of(&claims);
    assert_eq!(uri, format!("{}/statuslists/1", app.state.settings.issuer));
    assert_eq!(get("/statuslists/1").await.unwrap().status(), 200);
    fetch_list(app, &uri).await;
    assert_eq!(get("/statuslists/2").await.unwrap().status(), 404);
    assert_eq!(get("/statuslists/3").await.unwrap().status(), 404);
    other.stop().await;
}

/// A revocation rebuilds only the list it changed: the other list is
/// served byte for byte from the cache (a rebuild would carry a new ES256
/// signature).
async fn a_revocation_rebuilds_only_its_list(app: &TestApp) {
    let other = app.second_instance().await;
    let (kp, c) = api(app).await;
    let (at0, claims0) = api_token(app, &kp, &c).await;
    app.state
        .store
        .reserve_status_block(LIST_BITS / 2)
        .await
        .unwrap();
    let (_, claims1) = api_token(&other, &kp, &c).await;
    let (idx0, uri0) = status_of(&claims0);
    let (_, uri1) = status_of(&claims1);
    assert_ne!(uri0, uri1);
    let raw = |uri: &str| {
        let at_app = uri.replace(&app.state.settings.issuer, &app.url(""));
        async move {
            let r = app.http.get(at_app).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let list0 = raw(&uri0).await;
    let list1 = raw(&uri1).await;
    assert_eq!(raw(&uri1).await, list1, "cached");
    revoke(app, &c, &at0).await;
    assert!(revoked(&fetch_list(app, &uri0).await, idx0));
    assert_ne!(raw(&uri0).await, list0, "the changed list was rebuilt");
    assert_eq!(raw(&uri1).await, list1, "the other list was not");
    other.stop().await;
}

crate::both_backends!(
    revoking_a_token_sets_its_bit,
    grant_and_subject_revocations_set_bits,
    the_endpoint_refuses_what_it_does_not_serve,
    instances_share_the_lists,
    far_ids_are_answered_without_the_database,
    a_fresh_block_of_another_instance_is_found_at_once,
    a_revocation_rebuilds_only_its_list,
);
