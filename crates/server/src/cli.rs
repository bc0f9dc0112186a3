//! The `gatehouse` command line: parsing with clap, then dispatch. The
//! command and flag names are a public interface; docs/cli.md lists them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::RawConfig;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: an OAuth 2.0 / OpenID Connect identity provider"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares, so admin commands see the same database
/// and keys as `serve`.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (lowest precedence, below environment and flags).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Issuer URL [default: http://127.0.0.1:8080].
    #[arg(long, global = true, env = "GATEHOUSE_ISSUER")]
    pub issuer: Option<String>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://gatehouse.db].
    #[arg(long, global = true, env = "GATEHOUSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File holding the key-encryption key (base64url, 32 bytes). Or set GATEHOUSE_KEY_ENCRYPTION_KEY.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_KEY_ENCRYPTION_KEY_FILE",
        value_name = "FILE"
    )]
    pub key_encryption_key_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "GATEHOUSE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Published signing algorithms, comma-separated [default: RS256,ES256; add PS256 or EdDSA explicitly].
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_SIGNING_ALGS",
        value_name = "ALGS",
        value_delimiter = ','
    )]
    pub signing_algs: Option<Vec<String>>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "GATEHOUSE_LISTEN")]
        listen: Option<String>,
        /// If the database cannot be reached at start, keep trying for up
        /// to SECS seconds (serving /healthz, with /readyz at 503) instead
        /// of exiting at once [default: 0, exit at once].
        #[arg(long, env = "GATEHOUSE_WAIT_FOR_DATABASE", value_name = "SECS")]
        wait_for_database: Option<u64>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Manage client applications.
    #[command(subcommand)]
    Clients(ClientsCmd),
    /// Manage resource servers (APIs that accept access tokens).
    #[command(subcommand)]
    Resources(ResourcesCmd),
    /// Manage signing and encryption keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Inspect and end login sessions.
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// Initial access tokens for dynamic client registration.
    #[command(subcommand, name = "registration-token")]
    RegistrationToken(RegistrationTokenCmd),
    /// Measure token sizes and the cost of each way to check a token, on
    /// this machine and the configured database.
    Bench {
        /// Roughly how long to measure, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCmd {
    /// Create an initial access token; prints it alone on stdout.
    Create {
        /// Lifetime in seconds (default: no expiry).
        #[arg(long, value_name = "SECS")]
        expires_in: Option<i64>,
        /// How many registrations it allows (default: unlimited).
        #[arg(long, value_name = "N")]
        uses: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// List a user's login sessions.
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Forced logout: end every session of the user, revoke her refresh and
    /// access tokens, and send back-channel logout to her clients.
    Revoke {
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a user; reads the password from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: no new logins, refresh tokens stop working.
    Disable { username: String },
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum ClientsCmd {
    /// Register a client; prints its id and (once) its secret as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials [default: authorization_code refresh_token].
        #[arg(long = "grant-type", value_name = "T")]
        grant_types: Vec<String>,
        /// client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none [default: client_secret_basic].
        #[arg(long = "auth-method", value_name = "METHOD")]
        auth_method: Option<String>,
        /// Extra scopes (of registered resource servers) the client may request.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// ID token signing algorithm: RS256 (default), ES256, PS256 or EdDSA.
        #[arg(long)]
        id_token_signing_alg: Option<String>,
        /// Public JWK Set (JSON) for private_key_jwt.
        #[arg(long, value_name = "JSON")]
        jwks: Option<String>,
        #[arg(long, value_name = "URI")]
        jwks_uri: Option<String>,
        #[arg(long, value_name = "URI")]
        backchannel_logout_uri: Option<String>,
        /// Access-token lifetime in seconds for this client.
        #[arg(long, value_name = "SECS")]
        access_token_ttl: Option<i64>,
        /// The only algorithm accepted on the client's JWT assertions:
        /// HS256, HS384 or HS512 for client_secret_jwt; RS256, PS256, ES256
        /// or EdDSA for private_key_jwt [default: any of those].
        #[arg(long, value_name = "ALG")]
        auth_signing_alg: Option<String>,
        /// private_key_jwt and client_secret_jwt: also accept the token
        /// endpoint URL as the assertion's aud (weaker than the issuer
        /// alone; for libraries such as Spring Security that send it).
        #[arg(long)]
        legacy_assertion_audience: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client as JSON.
    Show { id: String },
    /// Delete a client.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCmd {
    /// Register a resource server and the public JWK its tokens are encrypted to.
    Create {
        #[arg(long)]
        audience: String,
        #[arg(long, value_name = "FILE")]
        jwk_file: PathBuf,
        /// RS256, ES256 (default), PS256 or EdDSA.
        #[arg(long)]
        signing_alg: Option<String>,
        /// jwe (default) or opaque.
        #[arg(long)]
        format: Option<String>,
        /// Scopes this API defines.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// Access-token lifetime in seconds for this API.
        #[arg(long, value_name = "SECS")]
        access_token_ttl: Option<i64>,
    },
    /// List resource servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a resource server.
    Delete { audience: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List keys with their state and times.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rotate: next → active, active → retired, a new next generated.
    Rotate {
        #[arg(long = "use", value_name = "sig|enc")]
        key_use: Option<String>,
        #[arg(long)]
        alg: Option<String>,
    },
    /// Withdraw a key at once (compromise).
    Revoke { kid: String },
    /// Add a next key for an algorithm.
    Generate {
        #[arg(long)]
        alg: String,
    },
}

impl GlobalArgs {
    /// The flag/environment layer of the configuration, with the options
    /// only `serve` takes.
    pub fn raw(&self, listen: Option<String>, wait_for_database: Option<u64>) -> RawConfig {
        RawConfig {
            issuer: self.issuer.clone(),
            listen,
            wait_for_database: wait_for_database.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            database_url: self.database_url.clone(),
            key_encryption_key_file: self.key_encryption_key_file.clone(),
            log_format: self.log_format.clone(),
            signing_algs: self.signing_algs.clone(),
            ..RawConfig::default()
        }
    }
}
