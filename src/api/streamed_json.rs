//! [`StreamedJson<T>`]: a JSON response documented as `T`, like
//! poem-openapi's `Json<T>`, but written as it is read from the database,
//! so its size never has to fit in memory.
//!
//! The document is `T`'s own `to_json()` with its long arrays left empty
//! (the *template*); [`ObjectWriter`] writes the template's fields in the
//! order `Json<T>` writes them (a `serde_json::Map` is ordered by key) and
//! fills each long array item by item. The bytes are those `Json<T>` would
//! have sent for the same values.
//!
//! Everything that can refuse the request runs before the response starts:
//! the handler checks, then [`StreamedJson::start`] reads until the first
//! chunk is ready, so a failure that early is still an error response. A
//! failure after that cannot change the status any more: it is logged and
//! the body ends with an error, so the connection is cut and the client
//! sees a truncated, invalid document, never a complete-looking one.

use std::marker::PhantomData;

use futures_util::{stream, Stream, StreamExt};
use poem::{Body, IntoResponse, Response};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::domain::DomainError;

/// The size a chunk of a streamed body (this one, the export) is sent at.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// A JSON body documented as `T`, streamed.
pub struct StreamedJson<T> {
    body: Body,
    _schema: PhantomData<fn() -> T>,
}

impl<T: Type> Payload for StreamedJson<T> {
    // What `Json<T>` answers and documents.
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> IntoResponse for StreamedJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(<Self as Payload>::CONTENT_TYPE)
            .body(self.body)
    }
}

impl<T: Type> StreamedJson<T> {
    /// Starts the response from `chunks`: waits for the first chunk, so an
    /// error before it is an error response; a later one cuts the body.
    pub async fn start<S>(chunks: S) -> Result<Self, ApiError>
    where
        S: Stream<Item = Result<Vec<u8>, DomainError>> + Send + 'static,
    {
        let mut chunks = Box::pin(chunks);
        let first = match chunks.next().await {
            Some(first) => first?,
            None => Vec::new(),
        };
        let rest = chunks.map(|chunk| chunk.map_err(cut_short));
        let body = stream::once(async move { Ok(first) }).chain(rest);
        Ok(StreamedJson {
            body: Body::from_bytes_stream(body),
            _schema: PhantomData,
        })
    }
}

/// A failure after a streamed response started: logged, and the body ends
/// with an error, which cuts the connection, so the client sees a truncated
/// body (for the export's NDJSON: no `end` record).
pub fn cut_short(err: DomainError) -> std::io::Error {
    tracing::error!(error = %err, "streamed response cut short");
    std::io::Error::other("streamed response cut short")
}

/// Writes one JSON object, the template's fields in order, with its
/// streamed arrays filled item by item, into chunks of about
/// [`CHUNK_BYTES`].
pub struct ObjectWriter {
    /// The template's fields not written yet, in order.
    fields: std::vec::IntoIter<(String, Value)>,
    buf: Vec<u8>,
    started: bool,
    /// In an array: whether an item was written in it yet.
    array: Option<bool>,
}

impl ObjectWriter {
    /// A writer of `template`, the object as `to_json()` gives it with
    /// every streamed array empty.
    pub fn new(template: Option<Value>) -> Self {
        let Some(Value::Object(fields)) = template else {
            unreachable!("a streamed document is a JSON object");
        };
        let fields: Map<String, Value> = fields;
        ObjectWriter {
            fields: fields.into_iter().collect::<Vec<_>>().into_iter(),
            buf: Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            started: false,
            array: None,
        }
    }

    /// Writes the fields up to the array `name`, and opens it; the array
    /// open before is closed. The arrays are filled in the template's
    /// order.
    pub fn array(&mut self, name: &str) {
        self.close_array();
        for (field, value) in self.fields.by_ref() {
            Self::key(&mut self.buf, &mut self.started, &field);
            if field == name {
                debug_assert_eq!(value, Value::Array(Vec::new()), "{name} is streamed");
                self.buf.push(b'[');
                self.array = Some(false);
                return;
            }
            write_value(&mut self.buf, &value);
        }
        unreachable!("{name} is not a field of the template, or is written already");
    }

    /// Writes one item of the open array.
    pub fn item(&mut self, item: &impl ToJSON) {
        let written = self.array.as_mut().expect("an array is open");
        if std::mem::replace(written, true) {
            self.buf.push(b',');
        }
        write_value(&mut self.buf, &item.to_json().unwrap_or(Value::Null));
    }

    /// A chunk to send, once enough is written.
    pub fn chunk(&mut self) -> Option<Vec<u8>> {
        (self.buf.len() >= CHUNK_BYTES).then(|| self.take())
    }

    /// Closes the open array, writes the remaining fields and ends the
    /// object: the last chunk.
    pub fn finish(mut self) -> Vec<u8> {
        self.close_array();
        for (field, value) in self.fields.by_ref() {
            Self::key(&mut self.buf, &mut self.started, &field);
            write_value(&mut self.buf, &value);
        }
        if !self.started {
            self.buf.push(b'{');
        }
        self.buf.push(b'}');
        self.take()
    }

    fn close_array(&mut self) {
        if self.array.take().is_some() {
            self.buf.push(b']');
        }
    }

    /// `{"name":` for the first field, `,"name":` for the others.
    fn key(buf: &mut Vec<u8>, started: &mut bool, name: &str) {
        buf.push(if std::mem::replace(started, true) {
            b','
        } else {
            b'{'
        });
        write_value(buf, &Value::String(name.to_owned()));
        buf.push(b':');
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
        )
    }
}

/// Writes `value` as `Json<T>` does (`serde_json::to_vec`).
fn write_value(buf: &mut Vec<u8>, value: &Value) {
    serde_json::to_writer(&mut *buf, value).expect("writing JSON to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(template: Value, arrays: &[(&str, Vec<Value>)], chunked: bool) -> Vec<u8> {
        let mut writer = ObjectWriter::new(Some(template));
        let mut out = Vec::new();
        for (name, items) in arrays {
            writer.array(name);
            for item in items {
                writer.item(item);
                if chunked {
                    if let Some(chunk) = writer.chunk() {
                        out.extend(chunk);
                    }
                }
            }
        }
        out.extend(writer.finish());
        out
    }

    #[test]
    fn the_document_is_what_serde_json_writes_for_the_whole_value() {
        let big = "n\"ote\u{2028}".repeat(3000);
        let items: Vec<Value> = (0..200)
            .map(|n| json!({"id": n, "note": big, "z": null}))
            .collect();
        let events: Vec<Value> = (0..3).map(|n| json!({"id": n})).collect();
        let template = json!({"a": 1, "b": [], "c": {"x": "y"}, "d": [], "e": null});
        let whole = json!({"a": 1, "b": events, "c": {"x": "y"}, "d": items, "e": null});
        for chunked in [false, true] {
            let out = written(
                template.clone(),
                &[("b", events.clone()), ("d", items.clone())],
                chunked,
            );
            assert_eq!(out, serde_json::to_vec(&whole).unwrap());
        }
        // Empty arrays, and an array as the last field.
        let template = json!({"a": [], "b": []});
        assert_eq!(
            written(
                template.clone(),
                &[("a", vec![]), ("b", vec![json!(1)])],
                true
            ),
            br#"{"a":[],"b":[1]}"#
        );
        assert_eq!(written(json!({}), &[], false), b"{}");
    }
}
