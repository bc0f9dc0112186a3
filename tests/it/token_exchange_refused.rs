//! Token exchange (RFC 8693) refused, each for its reason and with its
//! standard error: someone else's API, a widened scope, a client the
//! target does not list, an unknown or ambiguous target, unknown token
//! types, a revoked, expired, tampered or oversized subject, a public
//! client, a client without the grant type, an actor token of another
//! client, a chain grown past eight actors.

use gatehouse_server::{clients::ClientSpec, oauth::GrantType};
use serde_json::Value;

use crate::{
    support::{revoke, TestApp},
    token_exchange::{
        exchange, own_token, service, user_tokens, world, ACCESS_TOKEN, B, C, D, ID_TOKEN,
    },
};

/// The answer is a 400 with `error` and a description containing `says`.
fn refused(answer: &(u16, Value), error: &str, says: &str) {
    assert_eq!(answer.0, 400, "{answer:?}");
    assert_eq!(answer.1["error"], error, "{answer:?}");
    let d = answer.1["error_description"].as_str().unwrap();
    assert!(d.contains(says), "{d:?} does not say {says:?}");
}

async fn each_refusal_has_its_error(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let subject = t["access_token"].as_str().unwrap();

    // C's client is allowed for D, but the token is for B, not its API.
    refused(
        &exchange(app, &w.c, subject, &[("resource", D)]).await,
        "invalid_request",
        "not issued for an API this client is linked to",
    );
    // Wider than the subject.
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[("resource", C), ("scope", "read admin")],
        )
        .await,
        "invalid_scope",
        "only narrow",
    );
    // D does not list B's client.
    refused(
        &exchange(app, &w.b, subject, &[("resource", D)]).await,
        "invalid_target",
        "does not allow this client",
    );
    // Targets: unknown, none, two that disagree.
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[("resource", "https://nowhere.example")],
        )
        .await,
        "invalid_target",
        "resource is not a registered resource server",
    );
    refused(
        &exchange(app, &w.b, subject, &[("audience", "urn:nowhere")]).await,
        "invalid_target",
        "audience is not",
    );
    refused(
        &exchange(app, &w.b, subject, &[]).await,
        "invalid_target",
        "resource or audience",
    );
    refused(
        &exchange(app, &w.b, subject, &[("resource", C), ("audience", D)]).await,
        "invalid_target",
        "different resource servers",
    );
    // Token types.
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[("resource", C), ("requested_token_type", ID_TOKEN)],
        )
        .await,
        "invalid_request",
        "requested_token_type",
    );
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[
                ("resource", C),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        )
        .await,
        "invalid_request",
        "unsupported requested_token_type",
    );
    let r = app
        .token(
            &w.b,
            &[
                ("grant_type", crate::token_exchange::TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("resource", C),
            ],
        )
        .await;
    let answer = (r.status().as_u16(), r.json().await.unwrap());
    refused(&answer, "invalid_request", "unsupported subject_token_type");
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[("resource", C), ("actor_token", subject)],
        )
        .await,
        "invalid_request",
        "actor_token requires actor_token_type",
    );
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[("resource", C), ("actor_token_type", ACCESS_TOKEN)],
        )
        .await,
        "invalid_request",
        "must not be sent without actor_token",
    );

    // Tampered, garbage, oversized.
    let mut tampered = subject.to_owned().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let huge = "a".repeat(20 * 1024);
    for bad in [tampered.as_str(), "not-a-token", "a.b.c.d.e", huge.as_str()] {
        refused(
            &exchange(app, &w.b, bad, &[("resource", C)]).await,
            "invalid_request",
            "not an active access token",
        );
    }

    // An actor token must be the caller's own.
    let x = service(app, "X", &["client_credentials"]).await;
    let xs = &own_token(app, &x).await;
    refused(
        &exchange(
            app,
            &w.b,
            subject,
            &[
                ("resource", C),
                ("actor_token", xs),
                ("actor_token_type", ACCESS_TOKEN),
            ],
        )
        .await,
        "invalid_request",
        "actor_token was not issued to this client",
    );
    // B's own token as the actor: `act.sub` is its subject (B itself).
    let bs = &own_token(app, &w.b).await;
    let (s, ok) = exchange(
        app,
        &w.b,
        subject,
        &[
            ("resource", C),
            ("actor_token", bs),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(s, 200, "{ok}");

    // Revoked by its own client, then refused.
    revoke(app, &w.a, subject).await;
    refused(
        &exchange(app, &w.b, subject, &[("resource", C)]).await,
        "invalid_request",
        "not an active access token",
    );
}

async fn an_expired_subject_is_refused(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let subject = t["access_token"].as_str().unwrap();
    app.clock.advance(t["expires_in"].as_i64().unwrap() + 1);
    refused(
        &exchange(app, &w.b, subject, &[("resource", C)]).await,
        "invalid_request",
        "not an active access token",
    );
}

/// A public client may not exchange: refused at registration, at the
/// grant-type check, and by the grant itself for a stored client that
/// somehow has the grant type.
async fn public_clients_may_not_exchange(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let subject = t["access_token"].as_str().unwrap();
    let spec = ClientSpec {
        name: "Public".into(),
        redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
        grant_types: vec![
            "authorization_code".into(),
            GrantType::TokenExchange.to_string(),
        ],
        auth_method: Some("none".into()),
        ..ClientSpec::default()
    };
    let e = gatehouse_server::clients::build(
        spec.clone(),
        &app.state.hasher,
        &app.state.sealer,
        0,
        &app.state.settings.outbound,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("cannot use"), "{e}");

    let public = app
        .create_client(ClientSpec {
            grant_types: vec!["authorization_code".into()],
            ..spec
        })
        .await;
    crate::token_exchange::link(app, C, &[], &[&w.b, &public]).await;
    let with_id = |extra: &'static [(&'static str, &'static str)]| {
        let mut f = vec![("client_id", public.id.as_str())];
        f.extend_from_slice(extra);
        f
    };
    refused(
        &exchange(app, &public, subject, &with_id(&[("resource", C)])).await,
        "unauthorized_client",
        "may not use this grant type",
    );
    let mut stored = app.state.store.client(&public.id).await.unwrap().unwrap();
    stored.grant_types.push(GrantType::TokenExchange);
    app.state.store.update_client(&stored).await.unwrap();
    app.state.registry.refresh().await.unwrap();
    refused(
        &exchange(app, &public, subject, &with_id(&[("resource", C)])).await,
        "unauthorized_client",
        "public clients may not use token exchange",
    );

    // A confidential client without the grant type.
    let x = service(app, "X", &["client_credentials"]).await;
    crate::token_exchange::link(app, C, &[&x], &[&x]).await;
    refused(
        &exchange(app, &x, subject, &[("resource", C)]).await,
        "unauthorized_client",
        "may not use this grant type",
    );
}

/// B and C exchanging back and forth: the chain grows by one actor a hop,
/// never past eight, and no hop outlives the user's token.
async fn a_chain_stops_at_eight_actors(app: &TestApp) {
    let w = world(app).await;
    crate::token_exchange::link(app, B, &[&w.b], &[&w.c]).await;
    let t = user_tokens(app, &w).await;
    let first_exp = app.state.now() + t["expires_in"].as_i64().unwrap();
    let mut token = t["access_token"].as_str().unwrap().to_owned();
    for hop in 1..=9 {
        let (caller, target) = if hop % 2 == 1 { (&w.b, C) } else { (&w.c, B) };
        let answer = exchange(app, caller, &token, &[("resource", target)]).await;
        if hop == 9 {
            refused(&answer, "invalid_request", "8 actors");
            return;
        }
        assert_eq!(answer.0, 200, "hop {hop}: {:?}", answer.1);
        assert!(app.state.now() + answer.1["expires_in"].as_i64().unwrap() <= first_exp);
        token = answer.1["access_token"].as_str().unwrap().to_owned();
        app.clock.advance(30);
    }
}

/// An ID token has no grant: a forced logout of its user since it was
/// issued ends it as a subject too.
async fn an_id_token_dies_with_a_forced_logout(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let id_token = t["id_token"].as_str().unwrap();
    let form = [
        ("grant_type", crate::token_exchange::TOKEN_EXCHANGE),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN),
        ("resource", C),
    ];
    let r = app.token(&w.a, &form).await;
    assert_eq!(r.status(), 200);
    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    app.state
        .tokens
        .revoke_subject_tokens(&user.id)
        .await
        .unwrap();
    let r = app.token(&w.a, &form).await;
    let answer = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    refused(&answer, "invalid_request", "signed out everywhere");
}

/// A client's own token (client_credentials) is not exchanged for an
/// opaque API's token, whose row could not keep the client as subject.
async fn a_clients_token_is_not_exchanged_for_an_opaque_target(app: &TestApp) {
    let w = world(app).await;
    let c = app.state.store.resource(C).await.unwrap().unwrap();
    app.state
        .store
        .update_resource(&gatehouse_storage::model::ResourceServer {
            token_format: "opaque".parse().unwrap(),
            ..c
        })
        .await
        .unwrap();
    app.state.registry.refresh().await.unwrap();
    let own = &own_token(app, &w.b).await;
    let answer = exchange(app, &w.b, own, &[("resource", C)]).await;
    refused(&answer, "invalid_target", "opaque");
}

/// A scope name the target defines does not carry over by name alone: the
/// caller must be allowed it (its `--scope` list), as for any of its tokens.
async fn scopes_stay_within_the_callers_list(app: &TestApp) {
    let w = world(app).await;
    let t = user_tokens(app, &w).await;
    let bare = service(app, "bare", &[crate::token_exchange::TOKEN_EXCHANGE]).await;
    let mut stored = app.state.store.client(&bare.id).await.unwrap().unwrap();
    stored.scopes.clear();
    app.state.store.update_client(&stored).await.unwrap();
    crate::token_exchange::link(app, B, &[&bare], &[]).await;
    crate::token_exchange::link(app, C, &[&w.c], &[&bare]).await;
    app.state.registry.refresh().await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    let answer = exchange(app, &bare, at, &[("resource", C), ("scope", "read")]).await;
    refused(&answer, "invalid_scope", "this client may have");
    let (status, ok) = exchange(app, &bare, at, &[("resource", C)]).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["scope"], "", "{ok}");
}

crate::both_backends!(
    an_id_token_dies_with_a_forced_logout,
    a_clients_token_is_not_exchanged_for_an_opaque_target,
    scopes_stay_within_the_callers_list,
    a_chain_stops_at_eight_actors,
    each_refusal_has_its_error,
    an_expired_subject_is_refused,
    public_clients_may_not_exchange,
);
