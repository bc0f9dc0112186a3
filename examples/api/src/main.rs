//! Runs the example API. Configuration (environment):
//! `API_ISSUER` (Gatehouse's issuer URL), `API_AUDIENCE` (this API's
//! registered audience), `API_JWK_FILE` (the API's private JWK),
//! `API_LISTEN` (default `127.0.0.1:8081`).

use std::sync::Arc;

use gatehouse_verifier::{Verifier, VerifierConfig};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn run() -> Result<(), String> {
    let issuer = env("API_ISSUER")?;
    let audience = env("API_AUDIENCE")?;
    let jwk_file = env("API_JWK_FILE")?;
    let listen = std::env::var("API_LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let jwk = std::fs::read_to_string(&jwk_file).map_err(|e| format!("{jwk_file}: {e}"))?;
    let mut config = VerifierConfig::new(issuer, audience, jwk);
    if let Ok(public_url) = std::env::var("API_PUBLIC_URL") {
        config = config.dpop_base_url(public_url);
    }
    let verifier = Verifier::new(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    tracing::info!("example API listening on {listen}");
    axum::serve(listener, gatehouse_example_api::router(Arc::new(verifier)))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-example-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
