//! Outbound HTTP to URLs that clients supply (`jwks_uri`,
//! `backchannel_logout_uri`), guarded against server-side request forgery.
//!
//! Such a URL must use https; only a development issuer (http on a
//! loopback host) may reach loopback targets, over http too. Internal
//! addresses (loopback, link-local, private, shared CGNAT, multicast,
//! unspecified, reserved) are refused unless the operator lists the host or
//! a network in `outbound_allow`.
//!
//! The check that matters runs on every connection: the HTTP client's DNS
//! resolver drops internal addresses after resolution, so a name that
//! resolved to a public address when it was registered and resolves to
//! 127.0.0.1 later (DNS rebinding) still reaches nothing internal. A URL
//! whose host is an IP literal skips DNS and is checked before the request.
//! No proxy from the environment is used (a proxy would resolve the name
//! itself), redirects are not followed, every request has a timeout, and
//! bodies are read up to a cap.

mod policy;

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, RwLock},
    time::Duration,
};

pub use policy::{classify, Allowed, Cidr, Internal, OutboundPolicy};
use url::Url;

/// Addresses a name resolves to.
pub type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Name resolution behind the guard: the system resolver by default; a
/// deployment with its own DNS, or a test, may supply another.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> LookupFuture;
}

struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

type SharedLookup = Arc<RwLock<Arc<dyn Lookup>>>;

/// The HTTP client's resolver: resolves, then keeps only the addresses the
/// policy permits. Runs for every new connection.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
    lookup: SharedLookup,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        let lookup = match self.lookup.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Box::pin(async move {
            let ips = lookup.lookup(host.clone()).await?;
            let mut refused = None;
            let permitted: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| match policy.permits(Some(&host), *ip) {
                    Ok(()) => true,
                    Err(kind) => {
                        refused = Some(kind);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if permitted.is_empty() {
                let why = match refused {
                    Some(kind) => format!("{host} resolves only to {} addresses", kind.as_str()),
                    None => format!("{host} resolves to no address"),
                };
                return Err(Box::new(OutboundError::Refused(why)) as _);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why an outbound request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The policy refused the target.
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("answered with status {0}")]
    Status(u16),
    #[error("the answer exceeds {0} bytes")]
    TooLarge(usize),
}

impl From<reqwest::Error> for OutboundError {
    /// A refusal by the resolver arrives wrapped as a connection error.
    fn from(e: reqwest::Error) -> OutboundError {
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(OutboundError::Refused(why)) = s.downcast_ref::<OutboundError>() {
                return OutboundError::Refused(why.clone());
            }
            source = s.source();
        }
        OutboundError::Http(e)
    }
}

/// The guarded HTTP client. Cheap to share behind an `Arc`.
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    lookup: SharedLookup,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A request's whole time, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);

impl Outbound {
    pub fn new(policy: OutboundPolicy) -> Result<Outbound, reqwest::Error> {
        let policy = Arc::new(policy);
        let lookup: SharedLookup = Arc::new(RwLock::new(Arc::new(SystemLookup)));
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                lookup: lookup.clone(),
            }))
            .build()?;
        Ok(Outbound {
            client,
            policy,
            lookup,
        })
    }

    /// Replaces the name resolution behind the guard.
    pub fn set_lookup(&self, lookup: Arc<dyn Lookup>) {
        match self.lookup.write() {
            Ok(mut l) => *l = lookup,
            Err(p) => *p.into_inner() = lookup,
        }
    }

    fn target(&self, uri: &str) -> Result<Url, OutboundError> {
        self.policy
            .check_uri("the URL", uri)
            .map_err(OutboundError::Refused)
    }

    /// GETs `uri`; the body of a 2xx answer, at most `cap` bytes.
    pub async fn get(&self, uri: &str, cap: usize) -> Result<Vec<u8>, OutboundError> {
        let mut r = self.client.get(self.target(uri)?).send().await?;
        if !r.status().is_success() {
            return Err(OutboundError::Status(r.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > cap {
                return Err(OutboundError::TooLarge(cap));
            }
        }
        Ok(body)
    }

    /// POSTs a form to `uri`; the answer's status.
    pub async fn post_form(
        &self,
        uri: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::StatusCode, OutboundError> {
        let r = self
            .client
            .post(self.target(uri)?)
            .form(form)
            .send()
            .await?;
        Ok(r.status())
    }
}
