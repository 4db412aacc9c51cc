//! The headers every page this service renders for a browser carries (the
//! survey pages, the dashboard): its Content-Security-Policy, and no
//! sniffing, no framing, no referrer.

use poem::{
    http::{header, HeaderValue},
    Response,
};

pub fn secure(response: &mut Response, content_security_policy: &'static str) {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, content_security_policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
