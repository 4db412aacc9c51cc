//! The HR dashboard's server side: the sign-in that exchanges an API key
//! for a session cookie (its flags, its expiry, its end by sign-out or by
//! revoking the key, the refusal of cross-site changes, tenancy), and the
//! `/app` shell and assets with their Content-Security-Policy. The pages
//! themselves are checked in a browser by `scripts/dashboard-e2e.sh`.

use std::{io::Read, time::Duration};

use chrono::{DateTime, Utc};
use reqwest::{header, Method, RequestBuilder};
use serde_json::{json, Value};

use super::helpers::{spawn_app, spawn_app_with_dashboard, Reply, TestApp};

/// A signed-in browser: the session cookie's value, and the `Set-Cookie`
/// the sign-in answered with.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
    set_cookie: String,
    session: Value,
}

impl<'a> Browser<'a> {
    /// Signs in with `key`, as the dashboard's sign-in form does.
    async fn sign_in(app: &'a TestApp, key: &str) -> Browser<'a> {
        let response = app
            .client
            .post(app.url("/api/v1/session"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "no-store",
            "a session is not cached"
        );
        let set_cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = cookie_value(&set_cookie).expect("tt_session is set");
        let session = response.json().await.unwrap();
        Browser {
            app,
            cookie,
            set_cookie,
            session,
        }
    }

    /// A request with the cookie, and the `Origin` a browser's fetch sends
    /// from the dashboard's own pages (`None`: no `Origin`).
    fn request(&self, method: Method, path: &str, origin: Option<&str>) -> RequestBuilder {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .header(header::COOKIE, format!("tt_session={}", self.cookie));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request
    }

    async fn get(&self, path: &str) -> Reply {
        TestApp::reply(self.request(Method::GET, path, None).send().await.unwrap()).await
    }

    /// A change from the dashboard's own page.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let own = self.app.base_url.clone();
        self.send_from(method, path, body, Some(&own)).await
    }

    async fn send_from(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        origin: Option<&str>,
    ) -> Reply {
        let mut request = self.request(method, path, origin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        TestApp::reply(request.send().await.unwrap()).await
    }
}

fn cookie_value(set_cookie: &str) -> Option<String> {
    set_cookie
        .split(';')
        .next()?
        .trim()
        .strip_prefix("tt_session=")
        .map(str::to_owned)
}

/// The attributes of a `Set-Cookie`, lower-cased, without the value.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|attribute| attribute.trim().to_ascii_lowercase())
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie_that_acts_as_the_key() {
    let app = spawn_app().await;
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let signed_in_at = Utc::now();

    let browser = Browser::sign_in(&app, &app.reporter).await;

    let attributes = attributes(&browser.set_cookie);
    for expected in ["httponly", "samesite=strict", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing: {}",
            browser.set_cookie
        );
    }
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "not Secure over plain HTTP (the browser would drop it): {}",
        browser.set_cookie
    );
    let max_age: i64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("max-age="))
        .expect("Max-Age")
        .parse()
        .unwrap();
    assert!(
        (8 * 3600 - 5..=8 * 3600).contains(&max_age),
        "eight hours by default: {max_age}"
    );
    assert!(browser.cookie.starts_with("tts_") && browser.cookie.len() == 47);
    assert_ne!(browser.cookie, app.reporter, "the key is not the cookie");

    let session = &browser.session;
    assert_eq!(session["organization"]["slug"], "acme");
    assert_eq!(session["organization"]["min_group_size"], 0);
    assert_eq!(session["key"]["role"], "reporter");
    let expires_at = time(&session["expires_at"]);
    let lifetime = expires_at - signed_in_at;
    assert!(
        (chrono::Duration::hours(8) - chrono::Duration::seconds(5)
            ..=chrono::Duration::hours(8) + chrono::Duration::seconds(1))
            .contains(&lifetime),
        "{lifetime}"
    );

    // The cookie alone is the reporter's key: it reads, and it reads the
    // same session back.
    let read = browser
        .get(&format!("/api/v1/touchpoints/{touchpoint}"))
        .await;
    assert_eq!(read.assert_status(200)["name"], "Careers site");
    let again = browser.get("/api/v1/session").await;
    assert_eq!(again.assert_status(200), session);
    // ... with the reporter's role, from the dashboard's own page too.
    browser
        .send(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "mine", "role": "admin"})),
        )
        .await
        .assert_error(403, "forbidden", None);
    browser
        .send(
            Method::POST,
            "/api/v1/touchpoints",
            Some(json!({"name": "x", "kind": "true", "channel": "review_site", "stage": "awareness"})),
        )
        .await
        .assert_error(403, "forbidden", None);
    assert_eq!(app.count("api_keys").await, 4, "nothing was created");
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_service_is_reached_over_https() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/session"))
        .bearer_auth(&app.admin)
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        attributes(set_cookie).iter().any(|a| a == "secure"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn changes_made_with_the_cookie_must_come_from_the_service_s_own_origin() {
    let app = spawn_app().await;
    let browser = Browser::sign_in(&app, &app.admin).await;
    let touchpoint = json!({"name": "Onsite interview", "kind": "employer_created",
                            "channel": "interview", "stage": "interview"});

    for origin in [
        None,
        Some("https://evil.example"),
        Some("null"),
        Some("http://127.0.0.1.evil.example"),
        Some("not a url"),
    ] {
        browser
            .send_from(
                Method::POST,
                "/api/v1/touchpoints",
                Some(touchpoint.clone()),
                origin,
            )
            .await
            .assert_error(403, "cross_site_request", None);
        browser
            .send_from(Method::DELETE, "/api/v1/session", None, origin)
            .await
            .assert_error(403, "cross_site_request", None);
    }
    assert_eq!(app.count("touchpoints").await, 0, "nothing was written");
    browser.get("/api/v1/session").await.assert_status(200);

    // Reads need no Origin; changes from the service's own page go through.
    browser.get("/api/v1/touchpoints").await.assert_status(200);
    let created = browser
        .send(Method::POST, "/api/v1/touchpoints", Some(touchpoint))
        .await;
    assert_eq!(created.assert_status(201)["name"], "Onsite interview");
    // A key in the header needs no Origin: it is no browser's ambient
    // credential.
    app.post(
        "/api/v1/touchpoints",
        &app.admin,
        json!({"name": "Job ad", "kind": "employer_created", "channel": "job_board",
               "stage": "awareness"}),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let browser = Browser::sign_in(&app, &app.recruiter).await;
    let other = Browser::sign_in(&app, &app.recruiter).await;

    let response = browser
        .request(Method::DELETE, "/api/v1/session", Some(&app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert_eq!(cookie_value(cleared).as_deref(), Some(""), "{cleared}");
    assert!(
        attributes(cleared).iter().any(|a| a == "max-age=0"),
        "{cleared}"
    );

    browser
        .get("/api/v1/candidates")
        .await
        .assert_error(401, "unauthorized", None);
    browser
        .get("/api/v1/session")
        .await
        .assert_error(401, "unauthorized", None);
    // Another sign-in of the same key is its own session.
    other.get("/api/v1/candidates").await.assert_status(200);
    assert_eq!(app.count("dashboard_sessions").await, 1);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_at_once() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Agency recruiter", "role": "recruiter"}),
        )
        .await;
    let key_id = created.assert_status(201)["key"]["id"].as_i64().unwrap();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let browser = Browser::sign_in(&app, &token).await;
    let admin = Browser::sign_in(&app, &app.admin).await;
    browser.get("/api/v1/candidates").await.assert_status(200);

    // Revoked from the admin's own dashboard session.
    admin
        .send(Method::DELETE, &format!("/api/v1/keys/{key_id}"), None)
        .await
        .assert_status(200);

    browser
        .get("/api/v1/candidates")
        .await
        .assert_error(401, "unauthorized", None);
    assert_eq!(
        app.count("dashboard_sessions").await,
        1,
        "the revoked key's session is deleted; the admin's stays"
    );
    // Signing in again with the revoked key is refused.
    app.request(Method::POST, "/api/v1/session", Some(&token), None)
        .await
        .assert_error(401, "unauthorized", None);
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime_or_with_its_key() {
    let app = spawn_app_with_dashboard(touchpoint_tracker::config::DashboardSettings {
        session_lifetime: Duration::from_secs(2),
    })
    .await;
    let browser = Browser::sign_in(&app, &app.reporter).await;
    let expires_at = time(&browser.session["expires_at"]);
    browser.get("/api/v1/candidates").await.assert_status(200);
    let wait = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    browser
        .get("/api/v1/candidates")
        .await
        .assert_error(401, "unauthorized", None);
    // The key itself still works; a new sign-in starts a new session and
    // clears the expired one away.
    app.get("/api/v1/candidates", &app.reporter)
        .await
        .assert_status(200);
    Browser::sign_in(&app, &app.reporter).await;
    assert_eq!(app.count("dashboard_sessions").await, 1);

    // A key that expires sooner ends its session when it expires.
    let app = spawn_app().await;
    let key_expires_at = Utc::now() + chrono::Duration::seconds(30);
    let created = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Until soon", "role": "reporter",
                   "expires_at": key_expires_at.to_rfc3339()}),
        )
        .await;
    let token = created.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = Browser::sign_in(&app, &token).await;
    assert_eq!(
        time(&browser.session["expires_at"]).timestamp_millis(),
        key_expires_at.timestamp_millis(),
        "the session ends with its key"
    );
}

#[tokio::test]
async fn a_session_stays_in_its_organization() {
    let app = spawn_app().await;
    let theirs = app
        .post(
            "/api/v1/touchpoints",
            &app.other_admin,
            json!({"name": "Globex careers", "kind": "employer_created", "channel": "careers_site",
                   "stage": "awareness"}),
        )
        .await
        .id();
    let ours = app
        .touchpoint(
            "Acme careers",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let browser = Browser::sign_in(&app, &app.admin).await;

    browser
        .get(&format!("/api/v1/touchpoints/{theirs}"))
        .await
        .assert_error(404, "not_found", None);
    browser
        .send(
            Method::PATCH,
            &format!("/api/v1/touchpoints/{theirs}"),
            Some(json!({"name": "Taken over"})),
        )
        .await
        .assert_error(404, "not_found", None);
    let listed = browser.get("/api/v1/touchpoints").await;
    let ids: Vec<i64> = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![ours]);

    // A key in the header wins over the cookie: this request is Globex's.
    let response = browser
        .request(Method::GET, &format!("/api/v1/touchpoints/{theirs}"), None)
        .bearer_auth(&app.other_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_bad_cookie_or_key_gets_401_in_the_error_shape() {
    let app = spawn_app().await;
    let browser = Browser::sign_in(&app, &app.admin).await;
    for cookie in [
        "tt_session=".to_owned(),
        "tt_session=tts_nothing".to_owned(),
        format!("tt_session={}", app.admin),
        format!("tt_session={}x", browser.cookie),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/candidates"))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap();
        TestApp::reply(response)
            .await
            .assert_error(401, "unauthorized", None);
    }
    // A bad key in the header is not rescued by a good cookie.
    let response = browser
        .request(Method::GET, "/api/v1/candidates", None)
        .bearer_auth("tpt_not_a_key")
        .send()
        .await
        .unwrap();
    TestApp::reply(response)
        .await
        .assert_error(401, "unauthorized", None);
    // Signing in takes a key, not a session.
    let response = browser
        .request(Method::POST, "/api/v1/session", Some(&app.base_url))
        .send()
        .await
        .unwrap();
    TestApp::reply(response)
        .await
        .assert_error(401, "unauthorized", None);
    app.request(Method::POST, "/api/v1/session", Some("tpt_wrong"), None)
        .await
        .assert_error(401, "unauthorized", None);
    // The session's own operations take the cookie only.
    app.get("/api/v1/session", &app.admin)
        .await
        .assert_error(401, "unauthorized", None);
}

#[tokio::test]
async fn the_dashboard_is_served_under_a_strict_content_security_policy() {
    let app = spawn_app().await;
    for path in ["/app", "/app/", "/app/candidates/12", "/app/touchpoints"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        let html = response.text().await.unwrap();
        // Every script is a file of this service: nothing inline.
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 1, "{html}");
        assert!(
            scripts[0].starts_with(" type=\"module\" src=\"/app/assets/app.js?v=")
                && scripts[0].contains("></script>"),
            "{html}"
        );
        assert!(!html.contains("style="), "no inline style: {html}");
        assert!(html.contains("<div id=\"app\"></div>"));
    }

    let html = app
        .client
        .get(app.url("/app"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
    ] {
        let start = html
            .find(&format!("/app/assets/{name}?v="))
            .expect("the asset is linked");
        let url = &html[start..html[start..].find('"').unwrap() + start];
        let plain = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "a versioned URL never changes"
        );
        let etag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
        let bytes = plain.bytes().await.unwrap();
        assert!(!bytes.is_empty());

        // Compressed when the browser takes gzip: the same bytes.
        let zipped = app
            .client
            .get(app.url(url))
            .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let compressed = zipped.bytes().await.unwrap();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, bytes);

        // Revalidated by its tag; unversioned URLs are revalidated.
        let revalidated = app
            .client
            .get(app.url(url))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304);
        let unversioned = app
            .client
            .get(app.url(&format!("/app/assets/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(unversioned.headers()[header::CACHE_CONTROL], "no-cache");
    }
    let missing = app
        .client
        .get(app.url("/app/assets/other.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
