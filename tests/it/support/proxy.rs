//! One origin in front of two Gatehouse instances, as a load balancer
//! would be: the start of each WebAuthn ceremony (`.../begin`) goes to one
//! instance, everything else to the other, so every ceremony is finished
//! by an instance that did not begin it. It records which instance served
//! which path.

use std::sync::{Arc, Mutex};

use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::StatusCode,
    response::Response,
    Router,
};

/// Which instance served a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    Begins,
    Rest,
}

type Seen = Arc<Mutex<Vec<(Upstream, String)>>>;

#[derive(Clone)]
struct Routes {
    begins: String,
    rest: String,
    http: reqwest::Client,
    seen: Seen,
}

/// A running proxy.
pub struct SplitProxy {
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl SplitProxy {
    /// A port for the proxy, bound first: the instances' issuer names it.
    pub async fn bind() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    /// Serves on `listener`: ceremony starts to `begins`, the rest to
    /// `rest` (both base URLs).
    pub fn start(listener: tokio::net::TcpListener, begins: &str, rest: &str) -> SplitProxy {
        let seen: Seen = Arc::default();
        let routes = Routes {
            begins: begins.to_owned(),
            rest: rest.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            seen: seen.clone(),
        };
        let app = Router::new().fallback(forward).with_state(routes);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        SplitProxy { seen, task }
    }

    /// The paths each instance served, in order.
    pub fn seen(&self) -> Vec<(Upstream, String)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn forward(State(r): State<Routes>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let which = if path.ends_with("/begin") {
        Upstream::Begins
    } else {
        Upstream::Rest
    };
    r.seen.lock().unwrap().push((which, path));
    let base = match which {
        Upstream::Begins => &r.begins,
        Upstream::Rest => &r.rest,
    };
    let target = format!(
        "{base}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let body = to_bytes(body, 4 << 20).await.unwrap();
    let mut out = r.http.request(parts.method, target).body(body);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let Ok(answer) = out.send().await else {
        return Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .unwrap();
    };
    let mut resp = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if k != "content-length" && k != "transfer-encoding" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}
