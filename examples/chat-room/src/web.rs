//! The page's web server: our `index.html` and `app.js`, the npm client bundle built in the
//! web directory, and `config.json` telling the page where the engine is.
//!
//! Files are read on every request, so editing the page needs no rebuild.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// What the web server serves.
#[derive(Clone)]
pub struct Site(Arc<SiteInner>);

struct SiteInner {
    dir: PathBuf,
    endpoint: String,
}

impl Site {
    /// The page in `dir`, talking to the engine at `endpoint`.
    pub fn new(dir: PathBuf, endpoint: String) -> Site {
        Site(Arc::new(SiteInner { dir, endpoint }))
    }

    /// Where `npm run build` writes the npm client bundle.
    pub fn bundle_path(&self) -> PathBuf {
        self.0.dir.join("dist").join("rivetkit-client.js")
    }

    /// How to build the bundle, for people (stdout) and for the page.
    pub fn missing_bundle_instructions(&self) -> String {
        format!(
            "The page needs npm rivetkit's browser client, which is not built yet ({} is \
             missing). Build it once with:\n  cd {} && npm ci --ignore-scripts && npm run build\n\
             then reload the page.",
            self.bundle_path().display(),
            self.0.dir.display()
        )
    }
}

/// Serves the page until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, site: Site) {
    let app = Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/rivetkit-client.js", get(bundle))
        .route("/config.json", get(config))
        // Browsers ask for it on their own; no icon, and no 404 in the page's console.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(site);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("web page server stopped: {e}");
    }
}

async fn index(State(site): State<Site>) -> Response {
    file(&site.0.dir.join("index.html"), "text/html; charset=utf-8").await
}

async fn app_js(State(site): State<Site>) -> Response {
    file(&site.0.dir.join("app.js"), "text/javascript; charset=utf-8").await
}

async fn bundle(State(site): State<Site>) -> Response {
    let path = site.bundle_path();
    if !path.is_file() {
        // The page shows this text instead of a bare 404.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            site.missing_bundle_instructions(),
        )
            .into_response();
    }
    file(&path, "text/javascript; charset=utf-8").await
}

async fn config(State(site): State<Site>) -> Response {
    Json(serde_json::json!({ "endpoint": site.0.endpoint })).into_response()
}

async fn file(path: &Path, content_type: &'static str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                // A page under development: never serve a stale copy.
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}: {e}", path.display()),
        )
            .into_response(),
    }
}
