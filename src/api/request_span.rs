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
    // Survey paths carry a secret token: logged without it.
    let path = super::survey_page::loggable_path(req.uri().path()).to_owned();
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

    /// The span current at each event, by name.
    #[derive(Clone, Default)]
    struct CurrentSpans(Arc<std::sync::Mutex<Vec<Option<String>>>>);

    impl<S> tracing_subscriber::Layer<S> for CurrentSpans
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_event(
            &self,
            _event: &tracing::Event<'_>,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let current = ctx.lookup_current().map(|span| span.name().to_owned());
            self.0.lock().unwrap().push(current);
        }
    }

    #[tokio::test]
    async fn a_streamed_body_is_read_in_the_request_span() {
        use futures_util::StreamExt;
        use http_body_util::BodyExt;
        use tracing_subscriber::layer::SubscriberExt;

        let seen = CurrentSpans::default();
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(seen.clone()));
        let span = tracing::info_span!("request", request_id = "r-1");
        // A body read after the handler returned, as an export's is: it
        // logs while it is polled.
        let chunks = futures_util::stream::iter([1usize, 2]).map(|n| {
            tracing::info!(n, "chunk read");
            Ok::<_, io::Error>(Bytes::from(vec![b'x'; n]))
        });
        let streamed = Response::builder().body(poem::Body::from_bytes_stream(chunks));
        let sized = Response::builder().body("known size");
        let streamed = in_span(streamed, span.clone());
        let sized = in_span(sized, span);

        let body: BoxBody<Bytes, io::Error> = streamed.into_body().into();
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 3);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![Some("request".to_owned()), Some("request".to_owned())]
        );
        let body: BoxBody<Bytes, io::Error> = sized.into_body().into();
        assert_eq!(body.size_hint().exact(), Some(10));
    }
}
