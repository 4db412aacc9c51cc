//! One tracing span per request, named by a request id, so that every log
//! line a request causes (its handler's, the encounter writer's for its
//! write, its streamed body's) can be found by that id; and the request's
//! count and latency in [`Metrics`].
//!
//! The id is the caller's `X-Request-Id` when it is sane (1 to 128
//! characters of `A-Z a-z 0-9 . _ : -`, so it cannot forge or break a log
//! line), otherwise 128 random bits in hex. Either way it is echoed in the
//! answer's `X-Request-Id`, whatever the answer. A bad id is never refused:
//! a tracing header must not make a request fail.
//!
//! The span's fields: `request_id`; `organization_id` once the caller is
//! authenticated (see `security.rs`); `operation`, the OpenAPI operation id,
//! once the answer names it. Nothing personal, no header, no query string.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http_body_util::combinators::BoxBody;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use poem::{http::HeaderValue, Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use rand::Rng;
use tracing::{field::Empty, Instrument, Span};

use crate::metrics::{Metrics, NO_OPERATION};

/// The header a request id comes in and goes out in.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id taken from a caller.
const MAX_LEN: usize = 128;

/// The caller's id if it is sane, otherwise a fresh one.
pub fn request_id(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(generate, str::to_owned)
}

fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 128 random bits, as 32 hex digits.
fn generate() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// The middleware: the span around the request and its answer's body, the
/// request's log line and metrics, and the `X-Request-Id` answer header.
pub async fn trace<E: Endpoint>(
    next: E,
    req: Request,
    metrics: Arc<Metrics>,
) -> poem::Result<Response> {
    let id = request_id(req.headers().get(REQUEST_ID));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        operation = Empty,
        organization_id = Empty,
    );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into_response(),
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let operation = response
        .data::<OperationId>()
        .map_or(NO_OPERATION, |operation| operation.0);
    metrics.record_request(operation, status, elapsed);
    span.record("operation", operation);
    // One line per request: never headers (they carry tokens), never the
    // query string.
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        tracing::info!(%method, %path, status, latency_ms = format_args!("{latency_ms:.2}"), "request");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(in_span(response, span))
}

/// A streamed body (an export) is read from the database after the
/// handler returned: its reads and its log lines stay in the request's
/// span. A body of known size is left as it is.
fn in_span(mut response: Response, span: Span) -> Response {
    let body: BoxBody<Bytes, io::Error> = response.take_body().into();
    let body = if body.size_hint().exact().is_some() {
        body
    } else {
        BoxBody::new(InSpan { inner: body, span })
    };
    response.set_body(poem::Body::from(body));
    response
}

struct InSpan {
    inner: BoxBody<Bytes, io::Error>,
    span: Span,
}

impl HttpBody for InSpan {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_id_is_kept_and_any_other_replaced() {
        for sane in [
            "a",
            "req-1",
            "0af7651916cd43dd8448eb211c80319c",
            "trace:span.1_x",
        ] {
            let given = HeaderValue::from_static(sane);
            assert_eq!(request_id(Some(&given)), sane);
        }
        let long = "x".repeat(MAX_LEN + 1);
        for insane in ["", "has space", "quote\"", "new\\nline", "é", long.as_str()] {
            let given = HeaderValue::from_bytes(insane.as_bytes()).unwrap();
            let id = request_id(Some(&given));
            assert_ne!(id, insane);
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(request_id(None), request_id(None), "fresh ids differ");
        assert!(is_sane(&"y".repeat(MAX_LEN)));
    }
}
