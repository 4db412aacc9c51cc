//! Request bodies, documented like poem-openapi's `Json<T>` but parsed with
//! serde, so a rejected body names the field at fault (`{"field": "score"}`)
//! instead of a Rust type:
//!
//! - [`JsonBody<T>`]: one JSON object;
//! - [`JsonItems<T>`]: a JSON array whose items are parsed one by one, so
//!   every bad item is reported, by index;
//! - [`NdjsonBody<T>`]: newline-delimited JSON (`application/x-ndjson`, or
//!   the same bytes as `application/octet-stream`), read line by line by
//!   the handler, however long the stream.
//!
//! Each reads at most the size set in [`BodyLimits`] and answers 413 beyond.

use poem::{Body, Request, RequestBody};
use poem_openapi::{
    impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{
    error::{ApiError, ErrorCode, ErrorDetail},
    flat_json::{self, FlatObject},
    strict_json,
};
use crate::{config::BodyLimits, domain::idempotency};

fn limits(request: &Request) -> BodyLimits {
    request.data::<BodyLimits>().copied().unwrap_or_default()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {limit} bytes"),
        None,
    )
}

/// The length the request declares for its body (`Content-Length`); hyper
/// has already refused a malformed or conflicting one.
fn declared_length(request: &Request) -> Option<u64> {
    let value = request.headers().get(poem::http::header::CONTENT_LENGTH)?;
    value.to_str().ok()?.trim().parse().ok()
}

async fn read_json(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> poem::Result<serde_json::Value> {
    Ok(parse_value(&read_bytes(request, body, limit).await?)?)
}

/// The body's bytes: 413 beyond `limit`.
async fn read_bytes(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> poem::Result<bytes::Bytes> {
    // Refused before reading a byte: a client declaring 10 GB gets its 413
    // at once instead of waiting to send it, and hyper closes the
    // connection instead of reading the body it no longer needs.
    if declared_length(request).is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit).into());
    }
    let bytes = body
        .take()?
        .into_bytes_limit(limit)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(limit),
            poem::error::ReadBodyError::Io(err) => body_not_read(&err),
            other => ApiError::new(ErrorCode::MalformedJson, other.to_string(), None),
        })?;
    Ok(bytes)
}

/// Why a body could not be read: the client stopped sending it (the
/// server's body-read timeout, 408), or the connection broke (400).
fn body_not_read(err: &std::io::Error) -> ApiError {
    let code = match err.kind() {
        std::io::ErrorKind::TimedOut => ErrorCode::RequestTimeout,
        _ => ErrorCode::MalformedJson,
    };
    ApiError::new(code, format!("reading the body: {err}"), None)
}

/// The digest of a body's JSON value, which a retry with an idempotency key
/// must repeat: whitespace and the order of object keys do not count.
fn digest_of(request: &Request, value: &serde_json::Value) -> Result<Option<[u8; 32]>, ApiError> {
    // Only requests that can be replayed need it.
    let Some(key) = request.headers().get(idempotency::HEADER) else {
        return Ok(None);
    };
    // A header value that is not text would reach the operation as no key
    // at all, and the request would run unprotected: refuse it here.
    if key.to_str().is_err() {
        return Err(ApiError::validation(
            idempotency::HEADER,
            "must be visible ASCII characters",
        ));
    }
    let canonical = serde_json::to_vec(value).unwrap_or_default();
    Ok(Some(Sha256::digest(&canonical).into()))
}

pub struct JsonBody<T>(pub T, Option<[u8; 32]>);

impl<T> JsonBody<T> {
    /// The body's digest; empty unless the request has an `Idempotency-Key`.
    pub fn digest(&self) -> &[u8] {
        self.1.as_ref().map(|d| d.as_slice()).unwrap_or_default()
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

fn is_json(content_type: &str) -> bool {
    matches!(content_type.parse::<mime::Mime>(), Ok(mime)
        if mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let value = read_json(request, body, limits(request).json_bytes).await?;
        let digest = digest_of(request, &value)?;
        Ok(JsonBody(from_value(value)?, digest))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// A JSON array of items, each parsed on its own: one bad item does not hide
/// the others. At most `MAX` items.
pub struct JsonItems<T, const MAX: usize>(pub Vec<Result<T, ErrorDetail>>, Option<[u8; 32]>);

impl<T, const MAX: usize> JsonItems<T, MAX> {
    /// The body's digest; empty unless the request has an `Idempotency-Key`.
    pub fn digest(&self) -> &[u8] {
        self.1.as_ref().map(|d| d.as_slice()).unwrap_or_default()
    }
}

impl<T: Type, const MAX: usize> Payload for JsonItems<T, MAX> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    /// An array of 1 to `MAX` items: the bounds [`ParsePayload`] enforces.
    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(T::schema_ref())),
            min_items: Some(1),
            max_items: Some(MAX),
            ..MetaSchema::new("array")
        }))
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: FlatObject, const MAX: usize> ParsePayload for JsonItems<T, MAX> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_bytes(request, body, limits(request).batch_bytes).await?;
        // A keyed request is read through the value: its key stores the
        // value's digest.
        if request.headers().get(idempotency::HEADER).is_none() {
            if let Some(items) = flat_json::read_items(&bytes, MAX) {
                return Ok(JsonItems(items.into_iter().map(Ok).collect(), None));
            }
        }
        let value = parse_value(&bytes)?;
        let digest = digest_of(request, &value)?;
        Ok(JsonItems(items_of(value, MAX)?, digest))
    }
}

/// The items of a JSON array of 1 to `max` objects, each read into `T` on
/// its own: one bad item does not hide the others.
fn items_of<T: Type + DeserializeOwned>(
    value: serde_json::Value,
    max: usize,
) -> Result<Vec<Result<T, ErrorDetail>>, ApiError> {
    let serde_json::Value::Array(items) = value else {
        return Err(ApiError::validation("body", "must be a JSON array"));
    };
    if items.is_empty() || items.len() > max {
        return Err(ApiError::validation(
            "body",
            format!("must hold 1 to {max} items, not {}", items.len()),
        ));
    }
    Ok(items
        .into_iter()
        .map(|item| from_value(item).map_err(ApiError::into_detail))
        .collect())
}

/// Reads a JSON array of items as [`JsonItems`] does with a keyed request
/// or a refused item: through a `serde_json::Value`.
pub fn parse_items<T: Type + DeserializeOwned>(
    bytes: &[u8],
    max: usize,
) -> Result<Vec<Result<T, ErrorDetail>>, ApiError> {
    items_of(parse_value(bytes)?, max)
}

impl_apirequest_for_payload!(JsonItems<T, MAX>, T: FlatObject, const MAX: usize);

/// A media type an NDJSON stream is read from.
pub trait NdjsonMedia: Send + Sync + 'static {
    const CONTENT_TYPE: &'static str;
    /// Documented as bytes (`format: binary`), not as the item's schema.
    const BINARY: bool = false;
}

/// `application/x-ndjson`, the stream's own media type.
pub struct XNdjson;

impl NdjsonMedia for XNdjson {
    const CONTENT_TYPE: &'static str = "application/x-ndjson";
}

/// `application/octet-stream`: the same stream, for clients (and client
/// generators) that know no NDJSON media type.
pub struct OctetStream;

impl NdjsonMedia for OctetStream {
    const CONTENT_TYPE: &'static str = "application/octet-stream";
    // Generators read an octet stream as a file to send, whatever its schema.
    const BINARY: bool = true;
}

/// A stream of newline-delimited JSON items, sent as `M`; the handler reads
/// it with [`NdjsonBody::lines`]. Documented as one item.
pub struct NdjsonBody<T, M = XNdjson> {
    body: Body,
    line_limit: usize,
    _item: std::marker::PhantomData<fn() -> (T, M)>,
}

impl<T: Type, M: NdjsonMedia> Payload for NdjsonBody<T, M> {
    const CONTENT_TYPE: &'static str = M::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.essence_str() == M::CONTENT_TYPE)
    }

    fn schema_ref() -> MetaSchemaRef {
        if M::BINARY {
            MetaSchemaRef::Inline(Box::new(MetaSchema {
                format: Some("binary"),
                ..MetaSchema::new("string")
            }))
        } else {
            T::schema_ref()
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: FlatObject, M: NdjsonMedia> ParsePayload for NdjsonBody<T, M> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(NdjsonBody {
            body: body.take()?,
            line_limit: limits(request).import_line_bytes,
            _item: std::marker::PhantomData,
        })
    }
}

impl_apirequest_for_payload!(NdjsonBody<T, M>, T: FlatObject, M: NdjsonMedia);

/// One line of an NDJSON stream: its item, or why it was refused.
pub type NdjsonLine<T> = Result<T, ErrorDetail>;

impl<T: FlatObject, M> NdjsonBody<T, M> {
    /// Reads the stream line by line. Lines are numbered from 0, blank lines
    /// counted; a line longer than the limit is refused as an item.
    pub fn lines(self) -> NdjsonReader<T> {
        NdjsonReader::new(self.body.into_async_read(), self.line_limit)
    }
}

/// Reads an NDJSON stream one line at a time: only the current line is
/// held (at most the line limit), whatever the stream's length.
///
/// Not tokio-util's `LinesCodec`, though no faster than it with each line
/// parsed (benches/plumbing, this machine: 180 against 192 MB/s, 0.94x,
/// within noise): after a line longer than its limit, `FramedRead` ends the
/// stream, where the import refuses that line and reads on; it drops such a
/// line unseen, where the resume digest must cover its bytes; and it wants
/// UTF-8 and strips a `\r`, where a line's bytes go to the JSON parser as
/// sent. Its differential test: `lines_are_the_line_codecs`.
pub struct NdjsonReader<T> {
    reader: tokio::io::BufReader<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
    line_limit: usize,
    line: Vec<u8>,
    index: usize,
    /// The bytes of the line [`NdjsonReader::next`] returned last.
    line_bytes: usize,
    /// SHA-256 of every line read so far, each followed by `\n`.
    digest: Sha256,
    /// A line count, and the digest of the stream's first that many lines
    /// once they are read.
    mark: Option<(usize, Option<[u8; 32]>)>,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T: FlatObject> NdjsonReader<T> {
    /// A reader of `stream`, refusing lines longer than `line_limit` bytes.
    pub fn new(
        stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        line_limit: usize,
    ) -> Self {
        NdjsonReader {
            reader: tokio::io::BufReader::new(Box::new(stream)),
            line_limit,
            line: Vec::new(),
            index: 0,
            line_bytes: 0,
            digest: Sha256::new(),
            mark: None,
            _item: std::marker::PhantomData,
        }
    }

    /// Lines read so far, blank ones included.
    pub fn lines_read(&self) -> usize {
        self.index
    }

    /// The size in bytes of the line returned last (at most the limit): what
    /// its item may hold.
    pub fn line_bytes(&self) -> usize {
        self.line_bytes
    }

    /// The digest of the lines read so far: equal for two streams exactly
    /// when their first [`NdjsonReader::lines_read`] lines are (a missing
    /// final newline aside).
    pub fn digest(&self) -> [u8; 32] {
        self.digest.clone().finalize().into()
    }

    /// Asks for the digest of the first `lines` lines, which
    /// [`NdjsonReader::marked_digest`] gives once they are read (blank
    /// lines are read past without being returned).
    pub fn mark(&mut self, lines: usize) {
        let digest = (lines == self.index).then(|| self.digest());
        self.mark = Some((lines, digest));
    }

    /// The digest asked for with [`NdjsonReader::mark`]; `None` until that
    /// many lines are read.
    pub fn marked_digest(&self) -> Option<[u8; 32]> {
        self.mark.and_then(|(_, digest)| digest)
    }

    /// The next non-blank line: its index and item. `Ok(None)` at the end.
    pub async fn next(&mut self) -> Result<Option<(usize, NdjsonLine<T>)>, ApiError> {
        use tokio::io::AsyncBufReadExt;
        loop {
            self.line.clear();
            let mut too_long = false;
            let mut read_any = false;
            loop {
                let available = self
                    .reader
                    .fill_buf()
                    .await
                    .map_err(|err| body_not_read(&err))?;
                if available.is_empty() {
                    break;
                }
                read_any = true;
                let newline = available.iter().position(|&b| b == b'\n');
                let chunk = &available[..newline.unwrap_or(available.len())];
                self.digest.update(chunk);
                // Past the limit, the rest of the line is skipped, not kept.
                if self.line.len() + chunk.len() > self.line_limit {
                    too_long = true;
                } else {
                    self.line.extend_from_slice(chunk);
                }
                let consumed = newline.map_or(available.len(), |end| end + 1);
                self.reader.consume(consumed);
                if newline.is_some() {
                    break;
                }
            }
            if !read_any {
                return Ok(None);
            }
            self.digest.update(b"\n");
            let index = self.index;
            self.index += 1;
            if let Some((lines, None)) = self.mark {
                if lines == self.index {
                    self.mark = Some((lines, Some(self.digest())));
                }
            }
            self.line_bytes = if too_long {
                self.line_limit
            } else {
                self.line.len()
            };
            if too_long {
                let error = ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("line is longer than {} bytes", self.line_limit),
                    None,
                );
                return Ok(Some((index, Err(error.into_detail()))));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let item = parse_flat(&self.line).map_err(ApiError::into_detail);
            return Ok(Some((index, item)));
        }
    }
}

/// Parses JSON text: a syntax error is 400 `malformed_json`, a duplicate
/// key 422 naming it (see [`strict_json::parse`]).
///
/// Bodies go through `serde_json::Value` first: deserializing straight from
/// the bytes would let a derived struct accept a JSON array (fields by
/// position) and report a non-string enum value as a syntax error.
fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    strict_json::parse(bytes)
}

/// Reads a JSON object into `T`: anything else, `null` where the document
/// does not allow it, or an object of the wrong shape, is 422
/// `validation_failed` with the path of the offending field.
fn from_value<T: Type + DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    strict_json::refuse_nulls::<T>(&value)?;
    // Most bodies are fine: read them without tracking paths (which keeps
    // each key it passes), and read a refused one again to name its field.
    if let Ok(read) = T::deserialize(&value) {
        return Ok(read);
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        ApiError::validation(field_of(&path, &message), message)
    })
}

/// A time for the example of a request body, from its RFC 3339 text.
pub fn example_time(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    rfc3339.parse().expect("an example time is valid RFC 3339")
}

/// Parses a JSON document into `T`, as [`JsonBody`] does.
pub fn parse_json<T: Type + DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_value(parse_value(bytes)?)
}

/// Parses a JSON object into `T` as [`parse_json`] does, straight from the
/// text when [`flat_json`] can.
pub fn parse_flat<T: FlatObject>(bytes: &[u8]) -> Result<T, ApiError> {
    match flat_json::read(bytes) {
        Some(item) => Ok(item),
        None => parse_json(bytes),
    }
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

    #[derive(Deserialize, poem_openapi::Object, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        score: Option<i32>,
        #[oai(nullable)]
        #[serde(default)]
        note: Option<String>,
    }

    impl FlatObject for Sample {}

    fn field(result: Result<Sample, ApiError>) -> Option<String> {
        match result.unwrap_err() {
            ApiError::Unprocessable(body) | ApiError::BadRequest(body) => body.0.error.field.0,
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
        // Optional is not nullable unless the document says so.
        assert_eq!(
            field(parse_json(br#"{"name": "a", "score": null}"#)).as_deref(),
            Some("score")
        );
        assert!(parse_json::<Sample>(br#"{"name": "a", "note": null}"#).is_ok());
        assert_eq!(
            field(parse_json(br#"{"name": "a", "name": "b"}"#)).as_deref(),
            Some("name")
        );
        assert_eq!(field(parse_json(br#"["a", 1]"#)).as_deref(), Some("body"));
    }

    /// The items and digest `LinesCodec` gives for the same stream, where
    /// the codec can read it; and where it cannot.
    #[tokio::test]
    async fn lines_are_the_line_codecs() {
        use futures_util::StreamExt;
        use tokio_util::codec::{FramedRead, LinesCodec};
        let stream = b"{\"name\": \"a\"}\n\n  \n{\"name\": \"b\", \"score\": 3}\n{\"name\": 1}\n{\"name\": \"c\"}".to_vec();
        let mut ours = NdjsonReader::<Sample>::new(std::io::Cursor::new(stream.clone()), 64);
        let mut our_items = Vec::new();
        while let Some((index, item)) = ours.next().await.unwrap() {
            our_items.push((index, item.map(|s| s.name).map_err(|e| e.field.0)));
        }
        let mut theirs = FramedRead::new(
            std::io::Cursor::new(stream),
            LinesCodec::new_with_max_length(64),
        );
        let (mut their_items, mut digest, mut index) = (Vec::new(), Sha256::new(), 0);
        while let Some(line) = theirs.next().await {
            let line = line.unwrap();
            digest.update(line.as_bytes());
            digest.update(b"\n");
            if !line.trim().is_empty() {
                let item = parse_json::<Sample>(line.as_bytes());
                their_items.push((
                    index,
                    item.map(|s| s.name).map_err(|e| e.into_detail().field.0),
                ));
            }
            index += 1;
        }
        assert_eq!(our_items, their_items);
        assert_eq!(ours.digest(), <[u8; 32]>::from(digest.finalize()));
        assert_eq!(ours.lines_read(), index);

        // A line over the limit: refused, and the lines after it read.
        let stream = format!(
            "{{\"name\": \"{}\"}}\n{{\"name\": \"d\"}}\n",
            "x".repeat(100)
        );
        let mut ours =
            NdjsonReader::<Sample>::new(std::io::Cursor::new(stream.clone().into_bytes()), 64);
        let (index, item) = ours.next().await.unwrap().unwrap();
        assert_eq!(index, 0);
        assert!(item.unwrap_err().message.contains("longer than 64 bytes"));
        let (index, item) = ours.next().await.unwrap().unwrap();
        assert_eq!((index, item.unwrap().name.as_str()), (1, "d"));
        // The codec ends the stream at the error.
        let mut theirs = FramedRead::new(
            std::io::Cursor::new(stream.into_bytes()),
            LinesCodec::new_with_max_length(64),
        );
        assert!(theirs.next().await.unwrap().is_err());
        assert!(theirs.next().await.is_none(), "the codec reads on");
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
