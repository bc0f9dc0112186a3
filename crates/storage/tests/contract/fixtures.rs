//! Fixtures: one valid record of each kind, and small look-ups the tests share.

use gatehouse_storage::{
    model::{
        AuthCode, Client, KeyRecord, KeyState, OpaqueToken, RefreshToken, ResourceServer, Session,
        User,
    },
    Store,
};

use crate::NOW;

pub fn user(id: &str, username: &str) -> User {
    User {
        id: id.into(),
        username: username.to_owned(),
        email: Some(format!("{username}@example.org")),
        email_verified: true,
        name: Some(format!("Ms. {username} O'Brien")),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}"),
        disabled: false,
        created_at: NOW,
        updated_at: NOW,
        mfa_required: false,
    }
}

pub fn client(id: &str, created_at: i64) -> Client {
    Client {
        id: id.into(),
        secret_hash: Some(format!("hash-of-{id}")),
        name: format!("Client {id}"),
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "https://app.example/cb?q=\"quoted\"&x=1".to_owned(),
            "https://例え.jp/コールバック".to_owned(),
        ],
        post_logout_redirect_uris: vec![],
        grant_types: vec![
            "authorization_code".parse().unwrap(),
            "refresh_token".parse().unwrap(),
        ],
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: "client_secret_basic".parse().unwrap(),
        scopes: vec!["api:read".to_owned(), "api:write".to_owned()],
        jwks: None,
        jwks_uri: Some("https://app.example/jwks.json".to_owned()),
        id_token_signed_response_alg: "RS256".parse().unwrap(),
        access_token_lifetime: Some(300),
        refresh_token_lifetime: None,
        backchannel_logout_uri: None,
        registration_token_hash: Some(format!("reg-{id}")),
        created_at,
        updated_at: created_at,
        client_secret_sealed: None,
        token_endpoint_auth_signing_alg: None,
        require_pkce: false,
        registration_policy: None,
        legacy_assertion_audience: false,
        require_acr: None,
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
    }
}

pub fn resource(audience: &str) -> ResourceServer {
    ResourceServer {
        audience: audience.to_owned(),
        encryption_jwk: r#"{"kty":"RSA","n":"abc","e":"AQAB"}"#.to_owned(),
        signing_alg: "RS256".parse().unwrap(),
        token_format: "jwe".parse().unwrap(),
        access_token_lifetime: Some(600),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        created_at: NOW,
        clients: vec!["c1".into()],
        allow_exchange_from: vec![],
    }
}

/// A key candidate. The store does not interpret the sealed bytes or the JWK.
pub fn key(kid: &str, key_use: &str, alg: &str) -> KeyRecord {
    let mut sealed = vec![0u8, 1, 2, 255, 254];
    sealed.extend_from_slice(kid.as_bytes());
    KeyRecord {
        kid: kid.into(),
        key_use: key_use.parse().unwrap(),
        alg: alg.parse().unwrap(),
        state: KeyState::Next,
        sealed_private_key: sealed,
        public_jwk: "{}".to_owned(),
        created_at: NOW,
        activated_at: None,
        retired_at: None,
        revoked_at: None,
    }
}

pub fn session(
    id_hash: &str,
    sid: &str,
    user_id: &str,
    created_at: i64,
    expires_at: i64,
) -> Session {
    Session {
        id_hash: id_hash.to_owned(),
        sid: sid.to_owned(),
        user_id: user_id.into(),
        auth_time: created_at,
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
        acr: Some("urn:gatehouse:acr:mfa".to_owned()),
        created_at,
        last_seen_at: created_at,
        expires_at,
        ip: None,
        user_agent: None,
    }
}

pub fn code(code_hash: &str, family_id: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        code_hash: code_hash.to_owned(),
        client_id: "client-1".into(),
        user_id: "user-1".into(),
        redirect_uri: "https://app.example/cb".to_owned(),
        scope: "openid profile".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        resource: Some("https://api.example".to_owned()),
        auth_time: NOW - 5,
        sid: Some("sid-1".to_owned()),
        acr: None,
        amr: vec!["pwd".to_owned()],
        family_id: family_id.to_owned(),
        created_at: NOW,
        expires_at,
        dpop_jkt: None,
    }
}

pub fn refresh(token_hash: &str, family_id: &str, user_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash.to_owned(),
        family_id: family_id.to_owned(),
        client_id: "client-1".into(),
        user_id: user_id.into(),
        scope: "openid offline_access".to_owned(),
        resource: None,
        auth_time: NOW - 5,
        sid: Some("sid-1".to_owned()),
        acr: Some("1".to_owned()),
        amr: vec!["pwd".to_owned()],
        successor_hash: None,
        created_at: NOW,
        expires_at,
        used_at: None,
        revoked_at: None,
        dpop_jkt: None,
    }
}

/// The `make_successor` closure callers of `use_refresh_token` pass.
pub fn successor(
    hash: &str,
    now: i64,
) -> impl FnOnce(&RefreshToken) -> RefreshToken + Send + 'static {
    let hash = hash.to_owned();
    move |old: &RefreshToken| RefreshToken {
        token_hash: hash,
        successor_hash: None,
        created_at: now,
        used_at: None,
        revoked_at: None,
        ..old.clone()
    }
}

pub async fn key_state(store: &Store, kid: &str) -> Option<KeyRecord> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
}

pub async fn kids_in(store: &Store, key_use: &str, alg: &str, state: KeyState) -> Vec<String> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.key_use.as_str() == key_use && k.alg.as_str() == alg && k.state == state)
        .map(|k| k.kid.into_string())
        .collect()
}

pub fn opaque(hash: &str, client_id: &str, family: Option<&str>) -> OpaqueToken {
    OpaqueToken {
        token_hash: hash.to_owned(),
        jti: format!("jti-{hash}"),
        client_id: client_id.into(),
        user_id: family.map(|_| "user-1".into()),
        scope: "api:read".to_owned(),
        audience: "https://api.example".to_owned(),
        auth_time: family.map(|_| NOW - 5),
        created_at: NOW,
        expires_at: NOW + 300,
        revoked_at: None,
        family_id: family.map(str::to_owned),
        dpop_jkt: None,
        act: None,
    }
}
