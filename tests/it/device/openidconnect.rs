//! The device authorization grant (RFC 8628) driven by the `openidconnect`
//! crate at its defaults: the device authorization request, then its
//! polling loop (authorization_pending handled by the library, the
//! interval waited with the movable clock), the ID token validated by
//! the library, and userinfo with the access token. The user approves in
//! a browser of her own while the device polls.

use std::time::Duration;

use gatehouse_server::clients::ClientSpec;
use openidconnect::{
    core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata, CoreUserInfoClaims},
    ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope, TokenResponse,
};

use super::{approve_over_http, tess, PASSWORD, USER};
use crate::support::TestApp;

async fn openidconnect_runs_the_device_flow(app: &TestApp) {
    tess(app).await;
    let c = app
        .create_client(ClientSpec {
            name: "Acme CLI".into(),
            grant_types: vec![
                "urn:ietf:params:oauth:grant-type:device_code".into(),
                "refresh_token".into(),
            ],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    // The crate's core metadata does not carry RFC 8628's field: read it
    // from the document as any client would.
    let doc: serde_json::Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = doc["device_authorization_endpoint"].as_str().unwrap();
    let rp = CoreClient::from_provider_metadata(meta, ClientId::new(c.id.clone()), None)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint.to_owned()).unwrap());
    let details: CoreDeviceAuthorizationResponse = rp
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    let user_code = details.user_code().secret().clone();
    assert_eq!(
        details.verification_uri_complete().unwrap().secret(),
        &format!("{}/device?user_code={user_code}", app.base)
    );

    // She approves in her own browser while the device polls; each wait
    // moves the server's clock by what the library asked for.
    let approval = approve_over_http(app, &user_code, USER, PASSWORD, "allow");
    let clock = app.clock.clone();
    let polling = rp
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(
            &http,
            move |wait: Duration| {
                clock.advance(i64::try_from(wait.as_secs()).unwrap());
                tokio::time::sleep(Duration::from_millis(100))
            },
            None,
        );
    let (page, tokens) = tokio::join!(approval, polling);
    assert!(page.contains("id=\"device-approved\""), "{page}");
    let tokens = tokens.unwrap();
    let id_token = tokens.id_token().expect("an ID token for openid");
    // No nonce in the device flow: the verifier is told to expect none.
    let claims = id_token
        .claims(&rp.id_token_verifier(), |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("unexpected nonce".to_owned()),
        })
        .unwrap();
    assert_eq!(
        claims.email().unwrap().as_str(),
        format!("{USER}@example.com")
    );
    assert!(tokens.refresh_token().is_some(), "offline_access");
    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
}

crate::both_backends!(openidconnect_runs_the_device_flow);
