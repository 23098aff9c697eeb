//! A harness-owned HTTP server on loopback that a candidate calls: a dependency whose health the
//! scenario flips (GoFr's registered HTTP services), and later a remote log-level endpoint or a
//! JWKS server. Each path answers what the scenario last set; every request is recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};

type Routes = Arc<Mutex<HashMap<String, (u16, String)>>>;

/// A loopback HTTP server with scenario-controlled answers. Dropping it stops it.
#[derive(Debug)]
pub struct HttpStub {
    addr: SocketAddr,
    routes: Routes,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpStub {
    /// Start on `127.0.0.1:0`; every path answers 404 until [`HttpStub::set`].
    pub async fn start() -> std::io::Result<HttpStub> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let routes: Routes = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: Uri| {
            let (routes, hits) = (r.clone(), h.clone());
            async move {
                hits.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{method} {uri}"));
                let answer = routes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(uri.path())
                    .cloned();
                match answer {
                    Some((status, body)) => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        body,
                    ),
                    None => (StatusCode::NOT_FOUND, String::new()),
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(HttpStub {
            addr,
            routes,
            hits,
            task,
        })
    }

    /// The stub's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Make `path` answer `status` with `body` from now on.
    pub fn set(&self, path: &str, status: u16, body: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_string(), (status, body.to_string()));
    }

    /// Every request received so far, as `METHOD /path?query`.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
