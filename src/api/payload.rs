//! `JsonBody<T>`: a JSON request body documented like poem-openapi's `Json<T>`
//! but parsed with serde, so a rejected body names the field at fault
//! (`{"field": "score"}`) instead of a Rust type.

use poem::{Request, RequestBody};
use poem_openapi::{
    impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = body
            .take()?
            .into_bytes_limit(MAX_BODY_BYTES)
            .await
            .map_err(|err| match err {
                poem::error::ReadBodyError::PayloadTooLarge => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                    None,
                ),
                other => ApiError::new(ErrorCode::MalformedJson, other.to_string(), None),
            })?;
        parse_json(&bytes).map(JsonBody).map_err(Into::into)
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// Parses a JSON document into `T`: syntax errors are 400 `malformed_json`;
/// well-formed JSON that is not an object, or an object of the wrong shape,
/// is 422 `validation_failed` with the path of the offending field.
///
/// The body goes through `serde_json::Value` first: deserializing straight
/// from the bytes would let a derived struct accept a JSON array (fields by
/// position) and reports a non-string enum value as a syntax error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("request body is not valid JSON: {err}"),
            None,
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        ApiError::validation(field_of(&path, &message), message)
    })
}

/// serde reports a missing field at its parent's path; take the field name
/// from the message then.
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(field)) => field.to_owned(),
        (_, Some(field)) => format!("{path}.{field}"),
        (".", None) => "body".to_owned(),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        score: Option<i32>,
    }

    fn field(result: Result<Sample, ApiError>) -> Option<String> {
        match result.unwrap_err() {
            ApiError::Unprocessable(body) | ApiError::BadRequest(body) => body.0.error.field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field(parse_json(br#"{"score": 1}"#)).as_deref(),
            Some("name")
        );
        assert_eq!(
            field(parse_json(br#"{"name": "a", "score": "x"}"#)).as_deref(),
            Some("score")
        );
        assert_eq!(
            field(parse_json(br#"{"name": 1}"#)).as_deref(),
            Some("name")
        );
        assert_eq!(field(parse_json(br#"[]"#)).as_deref(), Some("body"));
        assert_eq!(field(parse_json(br#"["a", 1]"#)).as_deref(), Some("body"));
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse_json::<Sample>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(b""),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"name": "a"} trailing"#),
            Err(ApiError::BadRequest(_))
        ));
    }
}
