//! The web app: the files `npm run build` leaves in `WEB_DIR`, served at
//! `/`. Hashed assets are cached for a year, `index.html` is revalidated
//! every time, and an app route a browser asks for (`/chat/...`) gets
//! `index.html` (the SPA fallback), never a path of the API. Answers carry
//! the app's own Content-Security-Policy, which the defaults (the API's
//! strict one) leave alone.

use std::path::{Path, PathBuf};

use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, header},
};

use crate::problem::{Code, Problem};

/// What the app needs, nothing more: its own scripts, styles, images and
/// API; no inline script or style (Vite's build has none), no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Paths that are never the app's, whatever they ask for.
const NOT_THE_APP: [&str; 7] = [
    "/api/",
    "/v1/",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/webhooks/",
];

/// The answer for a request no route took, if it is the app's: a file of
/// the build, or `index.html` for a page. `None` leaves it to the 404.
pub async fn serve(req: &HttpRequest, web_dir: &Path) -> Option<Result<HttpResponse, Problem>> {
    if req.method() != Method::GET {
        return None;
    }
    let path = req.path();
    if path == "/api"
        || path == "/v1"
        || path == "/webhooks"
        || NOT_THE_APP.iter().any(|p| path.starts_with(p))
    {
        return None;
    }
    let Ok(root) = tokio::fs::canonicalize(web_dir).await else {
        return wants_page(req).then(|| {
            Err(Problem::new(
                Code::Unavailable,
                format!(
                    "The web app is not built: run `npm ci && npm run build` in web/ (`make run` does), or point WEB_DIR at a build (now {}).",
                    web_dir.display()
                ),
            ))
        });
    };
    if path != "/"
        && let Some(file) = file_in(&root, path).await
        && let Ok(body) = tokio::fs::read(&file).await
    {
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return Some(Ok(respond(content_type(&file), cache, body)));
    }
    if path.starts_with("/assets/") || !wants_page(req) {
        return None;
    }
    match tokio::fs::read(root.join("index.html")).await {
        Ok(body) => Some(Ok(respond("text/html; charset=utf-8", "no-cache", body))),
        Err(error) => {
            tracing::warn!(%error, dir = %root.display(), "no index.html in WEB_DIR");
            Some(Err(Problem::new(
                Code::Unavailable,
                "The web app is not built: run `npm run build` in web/.",
            )))
        }
    }
}

/// The file `path` names inside `root` (canonical), if it is one: no
/// escaped or odd segment, and still inside `root` once symlinks are
/// resolved.
async fn file_in(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.strip_prefix('/')?;
    let plain = |segment: &str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~+@".contains(&b))
    };
    if !relative.split('/').all(plain) {
        return None;
    }
    let file = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
    let meta = tokio::fs::metadata(&file).await.ok()?;
    (file.starts_with(root) && meta.is_file()).then_some(file)
}

/// A browser navigating: it asks for HTML.
fn wants_page(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn respond(content_type: &'static str, cache: &'static str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .body(body)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_plain_paths_inside_the_root_name_a_file() {
        let root = std::env::temp_dir().join(format!("aichat-webapp-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(root.join("dist/assets")).unwrap();
        std::fs::write(root.join("dist/assets/a-1.js"), "x").unwrap();
        std::fs::write(root.join("secret"), "s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("secret"), root.join("dist/link")).unwrap();
        let dist = std::fs::canonicalize(root.join("dist")).unwrap();
        assert!(file_in(&dist, "/assets/a-1.js").await.is_some());
        for path in [
            "/../secret",
            "/assets/../../secret",
            "/assets/..%2f..%2fsecret",
            "/%2e%2e/secret",
            "/assets//a-1.js",
            "/assets/",
            "/assets",
            "/link",
            "/.hidden",
            "/..\\secret",
        ] {
            assert_eq!(file_in(&dist, path).await, None, "{path}");
        }
        std::fs::remove_dir_all(root).ok();
    }
}
