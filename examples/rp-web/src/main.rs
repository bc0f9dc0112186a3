//! `gatehouse-example-rp`: runs the example relying party configured by
//! `RP_ISSUER`, `RP_CLIENT_ID`, `RP_CLIENT_SECRET`, `RP_LISTEN` and
//! `RP_BASE_URL` until Ctrl-C.

use std::process::ExitCode;

use gatehouse_example_rp::{serve, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse-example-rp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "gatehouse-example-rp: cannot listen on {}: {e}",
                config.listen
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Example app on {} (issuer {}, redirect URI {}, post-logout URI {})",
        config.base_url,
        config.issuer,
        config.redirect_uri(),
        config.home_uri()
    );
    tokio::select! {
        r = serve(config, listener) => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gatehouse-example-rp: {e}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}
