//! The one place where failures become HTTP responses. Every error, whether
//! raised by a handler or by the framework (bad query parameter, wrong
//! content type, unknown route), leaves as an [`ErrorBody`].

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{payload::Json, ApiResponse, Enum, Object};

use super::nullable::Nullable;

use crate::domain::DomainError;

/// What went wrong, as a stable machine-readable code.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not well-formed JSON.
    MalformedJson,
    /// A value breaks a rule (type, enum, range, length, required field).
    ValidationFailed,
    /// The body names a candidate or touchpoint that does not exist.
    UnknownReference,
    /// Items of a batch were refused; `items` says which and why.
    InvalidItems,
    /// Missing, malformed, unknown, revoked or expired API key.
    Unauthorized,
    /// The key's role does not allow this operation.
    Forbidden,
    /// A request that changes something, made with the dashboard's session
    /// cookie, did not come from the dashboard's own origin (its `Origin`
    /// header is missing or names another site).
    CrossSiteRequest,
    /// No such resource in the key's organization.
    NotFound,
    /// The HTTP method is not supported on this path.
    MethodNotAllowed,
    /// A unique value (touchpoint name, candidate external_ref) is taken.
    AlreadyExists,
    /// The touchpoint is archived and takes no new encounters.
    TouchpointArchived,
    /// The candidate's personal data was erased: it takes no changes and no
    /// new encounters.
    CandidateErased,
    /// The API key cannot be revoked: it is the caller's own key, or the
    /// organization's last active admin key.
    KeyStillNeeded,
    /// The candidate was invited to a survey within the organization's
    /// `survey_cooldown_days`; the message names the earlier invitation.
    SurveyCooldown,
    /// The survey invitation is answered and can no longer change.
    InvitationClosed,
    /// The alert is resolved and its status can no longer change.
    AlertResolved,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The client stopped sending the request body (nothing for
    /// `BODY_READ_TIMEOUT_SECONDS`); the connection is closed.
    RequestTimeout,
    /// The request body is not `application/json`.
    UnsupportedMediaType,
    /// The key sent more requests than its rate limit allows; retry after
    /// the number of seconds in the `Retry-After` header.
    RateLimited,
    /// A fault on the server; details are in its log.
    Internal,
    /// The database cannot be reached.
    Unavailable,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed | ErrorCode::UnknownReference | ErrorCode::InvalidItems => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::CrossSiteRequest => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::AlreadyExists
            | ErrorCode::TouchpointArchived
            | ErrorCode::CandidateErased
            | ErrorCode::KeyStillNeeded
            | ErrorCode::SurveyCooldown
            | ErrorCode::InvitationClosed
            | ErrorCode::AlertResolved => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The body of every error response.
#[derive(Object, Debug, Clone)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Only with `invalid_items`: each refused item of a batch or import,
    /// by index.
    #[oai(skip_serializing_if_is_none)]
    pub items: Option<Vec<ItemError>>,
    /// Only with the NDJSON import, on every error of it: the lines, from
    /// the start of the stream, that are recorded (0 when none); send the
    /// rest from here, or the whole stream with the same `Idempotency-Key`.
    #[oai(skip_serializing_if_is_none)]
    pub lines_committed: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                field: field.into(),
            },
            items: None,
            lines_committed: None,
        }
    }
}

/// Why one item of a batch or import was refused.
#[derive(Object, Debug, Clone)]
pub struct ItemError {
    /// The item's position: from 0 in a batch; the line, from 0, in an
    /// NDJSON import.
    pub index: u64,
    pub error: ErrorDetail,
}

/// One error.
#[derive(Object, Debug, Clone)]
pub struct ErrorDetail {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The request field, query parameter or path parameter at fault, when
    /// there is one (`score`, `limit`, `cursor`, ...).
    pub field: Nullable<String>,
}

/// The error responses every operation may return.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request body is not well-formed JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, malformed, unknown, revoked or expired API key (or
    /// dashboard session).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The key's role does not allow this operation, or a dashboard
    /// session's change came from another site (`cross_site_request`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource in the key's organization.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state (duplicate name or
    /// external_ref, archived touchpoint, erased candidate, survey
    /// cool-down, answered invitation).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The client stopped sending the request body; the connection is closed.
    #[oai(status = 408)]
    RequestTimeout(Json<ErrorBody>),
    /// The request body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The request body is not JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// A value in the body, query or path breaks a rule; `field` names it.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The key's rate limit, or its address's allowance of failed
    /// authentications, is exhausted; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds until a request will be accepted again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A fault on the server.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        let body = Json(ErrorBody::new(code, message, field));
        match code.status().as_u16() {
            400 => ApiError::BadRequest(body),
            401 => ApiError::Unauthorized(body),
            403 => ApiError::Forbidden(body),
            404 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            408 => ApiError::RequestTimeout(body),
            413 => ApiError::PayloadTooLarge(body),
            415 => ApiError::UnsupportedMediaType(body),
            422 => ApiError::Unprocessable(body),
            429 => ApiError::TooManyRequests(body, 1),
            503 => ApiError::Unavailable(body),
            _ => ApiError::Internal(body),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message, Some(field.into()))
    }

    /// The rejection of a request over its key's rate limit.
    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        let body = ErrorBody::new(
            ErrorCode::RateLimited,
            "too many requests for this API key; slow down",
            None,
        );
        ApiError::TooManyRequests(Json(body), retry_after_seconds)
    }

    /// The rejection of a request from a client address whose recent
    /// authentications failed too often; its token was not looked at.
    pub fn auth_rate_limited(retry_after_seconds: u64) -> Self {
        let body = ErrorBody::new(
            ErrorCode::RateLimited,
            "too many failed authentications from this address; retry later",
            None,
        );
        ApiError::TooManyRequests(Json(body), retry_after_seconds)
    }

    /// The error body, whatever the status.
    pub fn into_body(mut self) -> ErrorBody {
        std::mem::replace(
            self.body_mut(),
            ErrorBody::new(ErrorCode::Internal, "", None),
        )
    }

    /// The error body, to add to it, whatever the status.
    pub fn body_mut(&mut self) -> &mut ErrorBody {
        match self {
            ApiError::BadRequest(body)
            | ApiError::Unauthorized(body)
            | ApiError::Forbidden(body)
            | ApiError::NotFound(body)
            | ApiError::Conflict(body)
            | ApiError::RequestTimeout(body)
            | ApiError::PayloadTooLarge(body)
            | ApiError::UnsupportedMediaType(body)
            | ApiError::Unprocessable(body)
            | ApiError::TooManyRequests(body, _)
            | ApiError::Internal(body)
            | ApiError::Unavailable(body) => &mut body.0,
        }
    }

    /// The error itself, for reporting it as one item among others.
    pub fn into_detail(self) -> ErrorDetail {
        self.into_body().error
    }

    fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
            None,
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid { field, message } => ApiError::validation(field, message),
            DomainError::UnknownReference { field, resource } => ApiError::new(
                ErrorCode::UnknownReference,
                format!("no such {resource} in your organization"),
                Some(field.to_owned()),
            ),
            DomainError::InvalidItems(refused) => {
                let count = refused.len();
                let items = refused
                    .into_iter()
                    .map(|item| ItemError {
                        index: item.index as u64,
                        error: ApiError::from(item.error).into_detail(),
                    })
                    .collect();
                let mut body = ErrorBody::new(
                    ErrorCode::InvalidItems,
                    format!("{count} items were refused and nothing was recorded; see items"),
                    None,
                );
                body.items = Some(items);
                ApiError::Unprocessable(Json(body))
            }
            DomainError::NotFound { resource } => {
                ApiError::new(ErrorCode::NotFound, format!("{resource} not found"), None)
            }
            DomainError::AlreadyExists { field, message } => {
                ApiError::new(ErrorCode::AlreadyExists, message, Some(field.to_owned()))
            }
            DomainError::Archived { field, message } => ApiError::new(
                ErrorCode::TouchpointArchived,
                message,
                Some(field.to_owned()),
            ),
            DomainError::Erased { field, message } => {
                ApiError::new(ErrorCode::CandidateErased, message, Some(field.to_owned()))
            }
            DomainError::KeyStillNeeded(message) => {
                ApiError::new(ErrorCode::KeyStillNeeded, message, Some("id".to_owned()))
            }
            DomainError::SurveyCooldown { field, message } => {
                ApiError::new(ErrorCode::SurveyCooldown, message, Some(field.to_owned()))
            }
            DomainError::InvitationClosed(message) => {
                ApiError::new(ErrorCode::InvitationClosed, message, Some("id".to_owned()))
            }
            DomainError::AlertResolved(message) => {
                ApiError::new(ErrorCode::AlertResolved, message, Some("id".to_owned()))
            }
            DomainError::Unauthenticated => ApiError::new(
                ErrorCode::Unauthorized,
                "missing, malformed, unknown, revoked or expired API key or session",
                None,
            ),
            DomainError::Forbidden(message) => ApiError::new(ErrorCode::Forbidden, message, None),
            DomainError::Behind(message) => {
                tracing::warn!(error = %message, "a report waited for the projector in vain");
                ApiError::new(ErrorCode::Unavailable, message, None)
            }
            DomainError::Unavailable(message) => {
                tracing::error!(error = %message, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the database cannot be reached",
                    None,
                )
            }
            DomainError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::internal()
            }
        }
    }
}

/// Renders an error raised outside the handlers (by poem or poem-openapi)
/// in the [`ErrorBody`] shape. Errors that already carry one pass through.
pub async fn render_error(err: poem::Error) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };

    if err.is_from_response() {
        return err.into_response();
    }
    let api_error = if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::validation(e.name, e.reason.clone())
    } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no such resource: invalid id ({})", e.reason),
            None,
        )
    } else if err.is::<AuthorizationError>() {
        DomainError::Unauthenticated.into()
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("{e}; send application/json"),
            None,
        )
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::new(ErrorCode::MalformedJson, e.reason.clone(), None)
    } else {
        match err.status() {
            StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "no such route", None),
            StatusCode::METHOD_NOT_ALLOWED => {
                return method_not_allowed();
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body too large", None)
            }
            status if status.is_client_error() => {
                ApiError::new(ErrorCode::ValidationFailed, err.to_string(), None)
            }
            _ => {
                tracing::error!(error = %err, "unhandled error");
                ApiError::internal()
            }
        }
    };
    api_error.into_response()
}

fn method_not_allowed() -> Response {
    let body = ErrorBody::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this path",
        None,
    );
    Json(body)
        .into_response()
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .into_response()
}
