//! The `gatehouse` command line: parsing with clap, then dispatch. The
//! command and flag names are a public interface; docs/cli.md lists them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gatehouse_protocol::Acr;

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
    /// Internal host or network (CIDR) Gatehouse may contact at a client's
    /// jwks_uri or backchannel_logout_uri; repeat, or separate with commas.
    #[arg(
        long = "outbound-allow",
        global = true,
        env = "GATEHOUSE_OUTBOUND_ALLOW",
        value_name = "HOST|CIDR",
        value_delimiter = ','
    )]
    pub outbound_allow: Vec<String>,
    /// Proxies whose X-Forwarded-For names the client: CIDRs, comma-separated [default: none].
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Published signing algorithms, comma-separated [default: RS256,ES256; add PS256 or EdDSA explicitly].
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_SIGNING_ALGS",
        value_name = "ALGS",
        value_delimiter = ','
    )]
    pub signing_algs: Option<Vec<String>>,
    /// Milliseconds between probes of a database that is down; meanwhile
    /// requests that need it fail at once [default: 250].
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DB_PROBE_INTERVAL_MS",
        value_name = "MS"
    )]
    pub db_probe_interval_ms: Option<u64>,
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
        /// Also serve /metrics, without a token, on this address (for
        /// example 127.0.0.1:9090) [default: off].
        #[arg(long, env = "GATEHOUSE_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<String>,
        #[command(flatten)]
        branding: BrandingArgs,
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

/// The operator's look of the pages (`serve` only: no other command
/// renders a page); docs/branding.md.
#[derive(Debug, Default, Clone, Args)]
pub struct BrandingArgs {
    /// Directory of templates and a stylesheet replacing the built-in ones
    /// of the same file name, checked at start-up [default: none].
    #[arg(long, env = "GATEHOUSE_TEMPLATES_DIR", value_name = "DIR")]
    pub templates_dir: Option<PathBuf>,
    /// Directory served at /assets/ (a logo, fonts) [default: none].
    #[arg(long, env = "GATEHOUSE_ASSETS_DIR", value_name = "DIR")]
    pub assets_dir: Option<PathBuf>,
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
        /// An API scope registered clients may be given; repeat for several
        /// (default: none, only the OIDC scopes).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// A grant type registered clients may use; repeat for several
        /// [default: authorization_code refresh_token].
        #[arg(long = "grant-type", value_name = "T")]
        grant_types: Vec<String>,
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
    /// Create a user; reads the password from standard input (it must meet
    /// the password policy: docs/configuration.md, password_min_length).
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
    /// Set a user's password, read from standard input (one line; it must
    /// meet the password policy). Ends every session of the user, as
    /// `sessions revoke` does.
    SetPassword {
        /// The username.
        #[arg(long)]
        user: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Second factors: require one, list them, reset them.
    #[command(subcommand)]
    Mfa(MfaCmd),
}

#[derive(Debug, Subcommand)]
pub enum MfaCmd {
    /// Require a second factor at every sign-in of the user; one who has
    /// none enrols at her next sign-in.
    Require {
        /// The username.
        #[arg(long)]
        user: String,
    },
    /// Lift `mfa require`. A user who has a second factor still uses it at
    /// every sign-in; one who has none signs in with her password, unless
    /// a client or an authorization request requires more.
    Optional {
        /// The username.
        #[arg(long)]
        user: String,
    },
    /// Show whether the user must use a second factor, her TOTP factor
    /// (enrolled, pending or none), her recovery codes and passkeys, and
    /// her wrong codes in a row (and until when they hold her off).
    List {
        /// The username.
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Lost authenticator: remove the user's TOTP factor, recovery codes
    /// and passkeys, forget her wrong codes, end every session of the user,
    /// revoke her tokens and send back-channel logout (as `sessions
    /// revoke`). She is left with her password alone: when someone else
    /// may know it, set a new one too (`users set-password`).
    Reset {
        /// The username.
        #[arg(long)]
        user: String,
    },
    /// Forget the user's wrong second-factor codes, which past 100 in a
    /// row hold her codes off for a day; her factors stay.
    Unlock {
        /// The username.
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum ClientsCmd {
    /// Register a client; prints its id and (once) its secret as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        settings: ClientArgs,
    },
    /// Change a client's settings: only the flags given change; a list
    /// flag replaces the whole list (give it once with an empty value, e.g.
    /// --scope '', to empty it). The id and secret stay; the auth method
    /// cannot change.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: ClientArgs,
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

/// The settings of a client, shared by `clients create` and `clients update`.
/// A list flag given (repeated) sets the whole list; not given, create uses
/// the default and update keeps what the client has.
#[derive(Debug, Default, Args)]
pub struct ClientArgs {
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Option<Vec<String>>,
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange [default: authorization_code refresh_token].
    #[arg(long = "grant-type", value_name = "T")]
    pub grant_types: Option<Vec<String>>,
    /// client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none [default: client_secret_basic].
    #[arg(long = "auth-method", value_name = "METHOD")]
    pub auth_method: Option<String>,
    /// An API scope (defined by a resource server) the client may request;
    /// repeat for several. The OIDC scopes (openid, profile, email,
    /// offline_access) need no flag. Without any --scope the client may
    /// request no API scope at all.
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Option<Vec<String>>,
    /// ID token signing algorithm: RS256 (default), ES256, PS256 or EdDSA.
    #[arg(long)]
    pub id_token_signing_alg: Option<String>,
    /// Public JWK Set (JSON) for private_key_jwt.
    #[arg(long, value_name = "JSON")]
    pub jwks: Option<String>,
    #[arg(long, value_name = "URI")]
    pub jwks_uri: Option<String>,
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Access-token lifetime in seconds for this client.
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<i64>,
    /// The only algorithm accepted on the client's JWT assertions:
    /// HS256, HS384 or HS512 for client_secret_jwt; RS256, PS256, ES256
    /// or EdDSA for private_key_jwt [default: any of those].
    #[arg(long, value_name = "ALG")]
    pub auth_signing_alg: Option<String>,
    /// Whether every authorization request of this client must carry a
    /// PKCE challenge, even an OpenID request with a nonce from a
    /// confidential client [default: false].
    #[arg(long, value_name = "true|false")]
    pub require_pkce: Option<bool>,
    /// private_key_jwt and client_secret_jwt: also accept the token
    /// endpoint URL as the assertion's aud (weaker than the issuer alone;
    /// for libraries such as Spring Security that send it). The flag alone
    /// means true [default: false].
    #[arg(
        long,
        value_name = "true|false",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub legacy_assertion_audience: Option<bool>,
    /// Whether the client may start an authorization only with a pushed
    /// request (POST /par, RFC 9126): /authorize without request_uri is
    /// refused. The flag alone means true [default: false].
    #[arg(
        long = "require-par",
        value_name = "true|false",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub require_par: Option<bool>,
    /// The authentication level every sign-in to this client must reach:
    /// urn:gatehouse:acr:pwd, urn:gatehouse:acr:mfa or urn:gatehouse:acr:phr;
    /// `none` removes the requirement [default: none].
    #[arg(long, value_name = "LEVEL", value_parser = parse_require_acr)]
    pub require_acr: Option<RequireAcr>,
    /// Every access token of this client must be DPoP-bound (RFC 9449):
    /// a token request without a DPoP proof is refused. The flag alone
    /// means true [default: false].
    #[arg(
        long,
        value_name = "true|false",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub dpop_bound: Option<bool>,
}

/// The value of `--require-acr`: a level, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireAcr {
    Level(Acr),
    None,
}

impl RequireAcr {
    /// The level required, if any.
    pub fn level(self) -> Option<Acr> {
        match self {
            RequireAcr::Level(a) => Some(a),
            RequireAcr::None => None,
        }
    }
}

fn parse_require_acr(s: &str) -> Result<RequireAcr, String> {
    if s == "none" {
        return Ok(RequireAcr::None);
    }
    s.parse()
        .map(RequireAcr::Level)
        .map_err(|e: gatehouse_protocol::UnknownName| {
            format!("{e} (or none, to remove the requirement)")
        })
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCmd {
    /// Register a resource server and the public JWK its tokens are encrypted to.
    Create {
        #[arg(long)]
        audience: String,
        #[command(flatten)]
        settings: ResourceArgs,
    },
    /// Change a resource server's settings: only the flags given change; a
    /// list flag replaces the whole list (give it once with an empty value,
    /// e.g. --client '', to empty it).
    Update {
        audience: String,
        #[command(flatten)]
        settings: ResourceArgs,
    },
    /// List resource servers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a resource server.
    Delete { audience: String },
}

/// The settings of a resource server, shared by `resources create` and
/// `resources update`.
#[derive(Debug, Default, Args)]
pub struct ResourceArgs {
    /// The API's public encryption JWK (required on create).
    #[arg(long, value_name = "FILE")]
    pub jwk_file: Option<PathBuf>,
    /// RS256, ES256 (default), PS256 or EdDSA.
    #[arg(long)]
    pub signing_alg: Option<String>,
    /// jwe (default) or opaque.
    #[arg(long)]
    pub format: Option<String>,
    /// Scopes this API defines; repeat for several.
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Option<Vec<String>>,
    /// Access-token lifetime in seconds for this API.
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<i64>,
    /// A client linked to this API (the API's own client id): it may
    /// introspect tokens issued for this audience. Repeat for several.
    #[arg(long = "client", value_name = "CLIENT_ID")]
    pub clients: Option<Vec<String>>,
    /// A client that may exchange tokens (RFC 8693) for tokens to this
    /// API. Repeat for several.
    #[arg(long = "allow-exchange-from", value_name = "CLIENT_ID")]
    pub allow_exchange_from: Option<Vec<String>>,
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
    Revoke {
        /// The key id (may begin with `-`: ids of older keys are not drawn to avoid it).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
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
            outbound_allow: (!self.outbound_allow.is_empty()).then(|| self.outbound_allow.clone()),
            trusted_proxies: (!self.trusted_proxies.is_empty())
                .then(|| self.trusted_proxies.clone()),
            signing_algs: self.signing_algs.clone(),
            db_probe_interval_ms: self
                .db_probe_interval_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            ..RawConfig::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::{Cli, ClientsCmd, Command, KeysCmd, MfaCmd, RequireAcr, UsersCmd};

    /// A key id beginning with `-` (possible for keys made before ids
    /// avoided it) is a value, not flags: `keys revoke` must work in an
    /// incident without knowing about `--`.
    #[test]
    fn keys_revoke_takes_a_kid_beginning_with_a_dash() {
        let cli = Cli::try_parse_from(["gatehouse", "keys", "revoke", "-AbCdEfG"]);
        assert!(
            matches!(
                cli.as_ref().map(|c| &c.command),
                Ok(Command::Keys(KeysCmd::Revoke { kid })) if kid == "-AbCdEfG"
            ),
            "{cli:?}"
        );
    }

    fn require_acr(args: &[&str]) -> Result<Option<RequireAcr>, String> {
        let mut argv = vec!["gatehouse", "clients", "update", "c1"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Clients(ClientsCmd::Update { settings, .. }),
                ..
            }) => Ok(settings.require_acr),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `--require-acr` takes the three levels by their URNs, or `none`;
    /// anything else is refused with the three listed.
    #[test]
    fn require_acr_takes_the_three_levels_or_none() {
        use gatehouse_protocol::Acr;
        assert_eq!(require_acr(&[]), Ok(None));
        for a in Acr::ALL {
            assert_eq!(
                require_acr(&["--require-acr", a.as_str()]),
                Ok(Some(RequireAcr::Level(*a)))
            );
        }
        assert_eq!(
            require_acr(&["--require-acr", "none"]),
            Ok(Some(RequireAcr::None))
        );
        for bad in ["mfa", "urn:gatehouse:acr:MFA", "", "urn:gatehouse:acr:otp"] {
            let e = require_acr(&["--require-acr", bad]).unwrap_err();
            for level in Acr::ALL {
                assert!(e.contains(level.as_str()), "{bad:?}: {e}");
            }
            assert!(e.contains("--require-acr"), "{e}");
        }
    }

    /// The users commands' names and flags, as docs/cli.md gives them.
    #[test]
    fn users_mfa_and_set_password_parse() {
        let parse = |argv: &[&str]| {
            let mut all = vec!["gatehouse", "users"];
            all.extend_from_slice(argv);
            Cli::try_parse_from(all).map(|c| c.command)
        };
        assert!(matches!(
            parse(&["mfa", "require", "--user", "alice"]),
            Ok(Command::Users(UsersCmd::Mfa(MfaCmd::Require { user }))) if user == "alice"
        ));
        assert!(matches!(
            parse(&["mfa", "optional", "--user", "alice"]),
            Ok(Command::Users(UsersCmd::Mfa(MfaCmd::Optional { .. })))
        ));
        assert!(matches!(
            parse(&["mfa", "list", "--user", "alice", "--json"]),
            Ok(Command::Users(UsersCmd::Mfa(MfaCmd::List {
                json: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["mfa", "reset", "--user", "alice"]),
            Ok(Command::Users(UsersCmd::Mfa(MfaCmd::Reset { .. })))
        ));
        assert!(matches!(
            parse(&["set-password", "--user", "alice", "--password-stdin"]),
            Ok(Command::Users(UsersCmd::SetPassword { user, password_stdin: true })) if user == "alice"
        ));
        assert!(parse(&["set-password", "--user", "alice"]).is_err());
        assert!(parse(&["mfa", "reset"]).is_err(), "--user is required");
    }
}
