//! Client authentication at /token, /introspect and /revoke (RFC 6749
//! 2.3): a shared secret may travel in Basic or in the body whichever of
//! the two the client registered; the other families (client_secret_jwt,
//! private_key_jwt, none) stay separate; every refusal says why.

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::support::{TestApp, TestClient};

/// How a request presents the client.
#[derive(Clone, Copy)]
enum Present<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    IdOnly(&'a str),
    Nothing,
}

/// Sends `form` to `path`, presenting the client `how`.
async fn send(
    app: &TestApp,
    path: &str,
    how: Present<'_>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = app.http.post(app.url(path));
    match how {
        Present::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
        Present::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
        Present::IdOnly(id) => form.push(("client_id", id)),
        Present::Nothing => {}
    }
    req.form(&form).send().await.unwrap()
}

async fn post(app: &TestApp, path: &str, how: Present<'_>, form: &[(&str, &str)]) -> (u16, Value) {
    let r = send(app, path, how, form).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn secret_client(app: &TestApp, method: Option<&str>) -> (TestClient, String) {
    let c = app
        .create_client(ClientSpec {
            name: "secret client".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: method.map(str::to_owned),
            ..ClientSpec::default()
        })
        .await;
    let secret = c.secret.clone().unwrap();
    (c, secret)
}

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

/// A client made at the default (client_secret_basic) that sends its secret
/// in the body, as openid-client does by default, and the reverse.
async fn shared_secret_travels_in_basic_or_body(app: &TestApp) {
    for registered in [
        None,
        Some("client_secret_basic"),
        Some("client_secret_post"),
    ] {
        let (c, secret) = secret_client(app, registered).await;
        let what = registered.unwrap_or("default");
        for how in [
            Present::Basic(&c.id, &secret),
            Present::Post(&c.id, &secret),
        ] {
            let (status, body) = post(app, "/token", how, &CC).await;
            assert_eq!(status, 200, "{what}: {body}");
            let at = body["access_token"].as_str().unwrap().to_owned();
            let (status, i) = post(app, "/introspect", how, &[("token", &at)]).await;
            assert_eq!(status, 200, "{what}: {i}");
            assert_eq!(i["active"], true, "{what}");
            let (status, _) = post(app, "/revoke", how, &[("token", &at)]).await;
            assert_eq!(status, 200, "{what}");
            let (_, i) = post(app, "/introspect", how, &[("token", &at)]).await;
            assert_eq!(i["active"], false, "{what}: revoked");
        }
        // A wrong secret fails either way, and says so without more.
        for how in [
            Present::Basic(&c.id, "wrong"),
            Present::Post(&c.id, "wrong"),
        ] {
            let (status, body) = post(app, "/token", how, &CC).await;
            assert_eq!(status, 401, "{what}");
            assert_eq!(body["error"], "invalid_client");
            assert_eq!(body["error_description"], "client authentication failed");
        }
        // The id alone is not enough for a confidential client.
        let (status, body) = post(app, "/token", Present::IdOnly(&c.id), &CC).await;
        assert_eq!(status, 401);
        let registered = registered.unwrap_or("client_secret_basic");
        assert_eq!(
            body["error_description"],
            format!(
                "client is registered for {registered}; the request used no client credentials (none)"
            )
        );
    }
}

/// The other families stay apart, and each refusal names what was wrong.
async fn other_families_are_refused_with_a_reason(app: &TestApp) {
    // A client_secret_jwt client may not send its secret directly.
    let jwt = app
        .create_client(ClientSpec {
            name: "hmac".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("client_secret_jwt".into()),
            ..ClientSpec::default()
        })
        .await;
    let secret = jwt.secret.clone().unwrap();
    for (how, used) in [
        (Present::Basic(&jwt.id, &secret), "client_secret_basic"),
        (Present::Post(&jwt.id, &secret), "client_secret_post"),
    ] {
        for path in ["/token", "/introspect", "/revoke"] {
            let (status, body) = post(app, path, how, &[CC[0], ("token", "x")]).await;
            assert_eq!(status, 401, "{path} {used}");
            assert_eq!(body["error"], "invalid_client");
            assert_eq!(
                body["error_description"],
                format!("client is registered for client_secret_jwt; the request used {used}"),
                "{path}"
            );
            assert!(!body.to_string().contains(&secret), "never echo the secret");
        }
    }
    // A public client presenting a secret.
    let public = app
        .create_client(ClientSpec {
            name: "spa".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/cb".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let (status, body) = post(app, "/token", Present::Post(&public.id, "s"), &CC).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error_description"],
        "client is registered for none; the request used client_secret_post"
    );
    // Nothing at all; an unknown client.
    let (status, body) = post(app, "/token", Present::Nothing, &CC).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(
        body["error_description"],
        "no client authentication was sent"
    );
    let (status, body) = post(app, "/revoke", Present::Nothing, &[("token", "x")]).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error_description"],
        "no client authentication was sent"
    );
    let (status, body) = post(app, "/token", Present::Basic("nobody", "s"), &CC).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "client authentication failed");
}

/// Status, `WWW-Authenticate` and body of a request at `path`.
async fn answer(app: &TestApp, how: Present<'_>, path: &str) -> (u16, Option<String>, Value) {
    let r = send(app, path, how, &[CC[0], ("token", "x")]).await;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = r.status().as_u16();
    (status, challenge, r.json().await.unwrap())
}

/// An unknown client id and a known one with a wrong secret get the same
/// answer (status, challenge, body), in Basic and in the form, at every
/// endpoint that authenticates clients.
async fn unknown_id_and_wrong_secret_answer_alike(app: &TestApp) {
    for path in ["/token", "/introspect", "/revoke"] {
        // A client each: its two failures stay below the throttle.
        let (c, _) = secret_client(app, None).await;
        let id = c.id.as_str();
        let unknown = answer(app, Present::Basic("nobody-here", "wrong"), path).await;
        let wrong = answer(app, Present::Basic(id, "wrong"), path).await;
        assert_eq!(unknown, wrong, "{path}, Basic");
        assert_eq!(unknown.0, 401);
        assert_eq!(
            unknown.1.as_deref(),
            Some("Basic realm=\"gatehouse\", charset=\"UTF-8\"")
        );
        assert_eq!(unknown.2["error"], "invalid_client");
        assert_eq!(
            unknown.2["error_description"],
            "client authentication failed"
        );
        let unknown = answer(app, Present::Post("nobody-here", "wrong"), path).await;
        let wrong = answer(app, Present::Post(id, "wrong"), path).await;
        assert_eq!(unknown, wrong, "{path}, form");
        assert_eq!((unknown.0, unknown.1.as_deref()), (401, None));
        assert_eq!(
            unknown.2["error_description"],
            "client authentication failed"
        );
    }
}

crate::both_backends!(
    shared_secret_travels_in_basic_or_body,
    other_families_are_refused_with_a_reason,
    unknown_id_and_wrong_secret_answer_alike,
);
