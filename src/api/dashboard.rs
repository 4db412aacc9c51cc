//! The HR dashboard at `/app`: one HTML shell for every path under it (the
//! page routes in the browser) and its two assets, built from `dashboard/`
//! by `scripts/dashboard-build.sh` and compiled into the binary, so the
//! service serves it with nothing else installed.
//!
//! Everything it shows it reads from the public API, signed in with a
//! session cookie (see `sessions`). The page runs under a strict
//! Content-Security-Policy: only this service's own script and stylesheet,
//! no inline code, no other origin, no framing.

use std::{io::Write, sync::OnceLock};

use maud::{html, DOCTYPE};
use poem::{
    handler,
    http::{header, HeaderValue, StatusCode},
    web::Path,
    Request, Response, Route,
};
use sha2::{Digest, Sha256};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// The built assets (`scripts/dashboard-build.sh` writes them; CI checks
/// they match `dashboard/`'s sources).
static SCRIPT: Asset = Asset::new(
    "app.js",
    "text/javascript; charset=utf-8",
    include_bytes!("dashboard_assets/app.js"),
);
static STYLESHEET: Asset = Asset::new(
    "app.css",
    "text/css; charset=utf-8",
    include_bytes!("dashboard_assets/app.css"),
);

pub fn add_routes(route: Route) -> Route {
    route
        .at("/app", poem::get(shell))
        .at("/app/assets/:name", poem::get(asset))
        .at("/app/*rest", poem::get(shell))
}

/// One asset, with its content hash (its URLs carry it, so a browser may
/// keep it for a year) and its gzip, both made once.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    derived: OnceLock<(String, Vec<u8>)>,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        Asset {
            name,
            content_type,
            bytes,
            derived: OnceLock::new(),
        }
    }

    fn derived(&'static self) -> &'static (String, Vec<u8>) {
        self.derived.get_or_init(|| {
            let version = hex::encode(&Sha256::digest(self.bytes)[..8]);
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = gzip.write_all(self.bytes);
            (version, gzip.finish().unwrap_or_default())
        })
    }

    fn version(&'static self) -> &'static str {
        &self.derived().0
    }

    fn url(&'static self) -> String {
        format!("/app/assets/{}?v={}", self.name, self.version())
    }
}

#[handler]
fn shell() -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { "touchpoint-tracker" }
                link rel="stylesheet" href=(STYLESHEET.url());
                script type="module" src=(SCRIPT.url()) {}
            }
            body {
                div id="app" {}
                noscript {
                    p {
                        "The dashboard needs JavaScript. The same figures are in the API: see /docs. "
                        "Bảng điều khiển cần JavaScript. Các số liệu cũng có trong API: xem /docs."
                    }
                }
            }
        }
    };
    let mut response = Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(page.into_string());
    super::page_headers::secure(&mut response, CSP);
    response
}

#[handler]
fn asset(req: &Request, Path(name): Path<String>) -> Response {
    let Some(asset) = [&SCRIPT, &STYLESHEET]
        .into_iter()
        .find(|asset| asset.name == name)
    else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("no such asset");
    };
    // Versioned URLs never change content; any other is revalidated.
    let versioned = req
        .uri()
        .query()
        .and_then(|query| query.strip_prefix("v="))
        .is_some_and(|version| version == asset.version());
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let gzip = req
        .header(header::ACCEPT_ENCODING)
        .is_some_and(accepts_gzip);
    let mut builder = Response::builder()
        .content_type(asset.content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding")
        .header(header::ETAG, format!("\"{}\"", asset.version()));
    // Both are the static asset's own bytes: nothing is copied per request.
    let body: &'static [u8] = if gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        &asset.derived().1
    } else {
        asset.bytes
    };
    let mut response = builder.body(body);
    super::page_headers::secure(&mut response, CSP);
    if req
        .header(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.trim_matches('"') == asset.version())
    {
        response.set_status(StatusCode::NOT_MODIFIED);
        response.set_body(());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with
/// `q=0`).
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|param| {
            param
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("br"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }
}
