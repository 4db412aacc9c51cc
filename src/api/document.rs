//! Adjustments to what poem-openapi writes into the document, made on
//! its metadata before serialization, so that the served `/openapi.json`,
//! the `/docs` page and `touchpoint-tracker openapi` show the same document:
//!
//! - A documented field of a named type: poem-openapi writes
//!   `{"allOf": [{"$ref": T}, {"description": ...}], "description": ...}`,
//!   which openapi-python-client cannot read ("Cannot take allOf a
//!   non-object") for an enum `T`. The second member only repeats the
//!   siblings, so it is dropped: `{"allOf": [{"$ref": T}], "description":
//!   ...}`, the usual OpenAPI 3.0 way to document (or make nullable) a
//!   reference.
//! - Formats that are not OpenAPI's: `chrono::NaiveDate` is `naive-date`,
//!   whose `YYYY-MM-DD` text is the standard `date`; unsigned integers are
//!   `uint8` to `uint64`: here the signed format that holds them (`int32`,
//!   `int64`; no `u64` sent comes near the `int64` maximum) with a minimum
//!   of 0.
//! - Header names as HTTP writes them (`Retry-After`, not `RETRY-AFTER`).
//! - Dates and date-times get the `maxLength` of their longest text
//!   (`YYYY-MM-DD`; RFC 3339 with nanoseconds and an offset), so no string
//!   of the document is unbounded.
//!
//! Then [`finish`] edits the serialized document where the metadata cannot
//! say it: `additionalProperties: false` on every request body schema (the
//! request structs refuse unknown fields, and poem-openapi's
//! `deny_unknown_fields` does not write it), integers bounded by their
//! format where nothing narrower is declared, and the server's audience
//! (`x-internal`). [`spec_endpoint`] and [`docs_endpoint`] serve the
//! finished document.
//!
//! And one declaration poem-openapi has no attribute for: [`NoAuth`], an
//! operation anyone may call without a key (`security: [{}]`).

use std::collections::HashMap;

use poem::{
    endpoint::{make_sync, BoxEndpoint},
    http::Method,
    web::Html,
    Endpoint, Request, RequestBody, Response,
};
use poem_openapi::{
    registry::{MetaApi, MetaSchema, MetaSchemaRef, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OpenApi, OpenApiService,
};
use serde::{de, ser::SerializeMap, Deserialize, Serialize};

use crate::domain::pagination::CURSOR_MAX_LENGTH;

/// The longest date text: `YYYY-MM-DD` (years past 9999 are refused).
pub const DATE_MAX_LENGTH: usize = 10;
/// The longest RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+HH:MM`.
pub const DATE_TIME_MAX_LENGTH: usize = 35;

/// The APIs `T`, their schemas adjusted as the module describes.
#[derive(Default)]
pub struct Adjusted<T>(pub T);

impl<T: OpenApi> OpenApi for Adjusted<T> {
    fn meta() -> Vec<MetaApi> {
        let mut apis = T::meta();
        let operations = apis
            .iter_mut()
            .flat_map(|api| api.paths.iter_mut())
            .flat_map(|path| path.operations.iter_mut());
        for operation in operations {
            for param in &mut operation.params {
                adjust_ref(&mut param.schema);
            }
            if let Some(request) = &mut operation.request {
                for media in &mut request.content {
                    adjust_ref(&mut media.schema);
                }
            }
            for response in &mut operation.responses.responses {
                for media in &mut response.content {
                    adjust_ref(&mut media.schema);
                }
                for header in &mut response.headers {
                    adjust_ref(&mut header.schema);
                    header.name = header_case(&header.name);
                    // A response header takes no validator attribute.
                    if let (Some(max), MetaSchemaRef::Inline(schema)) =
                        (header_max_length(&header.name), &mut header.schema)
                    {
                        schema.max_length = Some(max);
                    }
                }
            }
        }
        apis
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        for schema in registry.schemas.values_mut() {
            adjust(schema);
        }
    }

    fn add_routes(self, route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
        self.0.add_routes(route_table);
    }
}

fn adjust_ref(schema: &mut MetaSchemaRef) {
    if let MetaSchemaRef::Inline(schema) = schema {
        adjust(schema);
    }
}

fn adjust(schema: &mut MetaSchema) {
    match schema.format {
        Some("naive-date") => schema.format = Some("date"),
        Some(unsigned @ ("uint8" | "uint16" | "uint32" | "uint64")) => {
            let wide = matches!(unsigned, "uint32" | "uint64");
            schema.format = Some(if wide { "int64" } else { "int32" });
            schema.minimum.get_or_insert(0.0);
        }
        _ => {}
    }
    if schema.ty == "string" && schema.max_length.is_none() {
        schema.max_length = match schema.format {
            Some("date") => Some(DATE_MAX_LENGTH),
            Some("date-time") => Some(DATE_TIME_MAX_LENGTH),
            _ => None,
        };
    }
    if let [MetaSchemaRef::Reference(_), MetaSchemaRef::Inline(member)] = schema.all_of.as_slice() {
        if repeats_siblings(member, schema) {
            schema.all_of.truncate(1);
        }
    }
    for (_, property) in &mut schema.properties {
        adjust_ref(property);
    }
    let nested = schema
        .items
        .iter_mut()
        .chain(&mut schema.additional_properties);
    for nested in nested {
        adjust_ref(nested);
    }
    let members = schema
        .all_of
        .iter_mut()
        .chain(&mut schema.any_of)
        .chain(&mut schema.one_of);
    for member in members {
        adjust_ref(member);
    }
}

/// `RETRY-AFTER` as `Retry-After`: poem-openapi upper-cases the names of
/// response headers; linters and readers expect the usual spelling.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether `member`, the second of `[$ref, member]` in `schema.allOf`, says
/// nothing that `schema` does not already say beside its `allOf`: it holds
/// only annotations (description, nullable, default, ...), all repeated.
fn repeats_siblings(member: &MetaSchema, schema: &MetaSchema) -> bool {
    let annotations_only = MetaSchema {
        description: None,
        default: None,
        example: None,
        title: None,
        external_docs: None,
        nullable: false,
        read_only: false,
        write_only: false,
        deprecated: false,
        ..member.clone()
    } == MetaSchema::ANY;
    let siblings = MetaSchema {
        all_of: Vec::new(),
        ..schema.clone()
    };
    annotations_only && siblings.clone().merge(member.clone()) == siblings
}

/// Declares an operation public: anyone may call it without a key. Taken as
/// an argument, it writes `security: [{}]` (no requirement to meet) into
/// the operation, so that every operation states its security.
pub struct NoAuth;

impl<'a> ApiExtractor<'a> for NoAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        _request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(NoAuth)
    }
}

/// The longest value of each string response header.
fn header_max_length(name: &str) -> Option<usize> {
    match name {
        "X-Next-Cursor" => Some(CURSOR_MAX_LENGTH),
        // The session cookie: its name, a 47-character token, attributes.
        "Set-Cookie" => Some(200),
        "Cache-Control" => Some(64),
        _ => None,
    }
}

/// The finished document: what poem-openapi writes for `service`, with the
/// edits the metadata cannot express (see the module's documentation).
pub fn finish<T: OpenApi>(service: &OpenApiService<T, ()>) -> String {
    let spec = service.spec();
    let mut document: Json = serde_json::from_str(&spec).expect("poem-openapi writes JSON");
    let request_bodies: Vec<String> = document
        .at(&["paths"])
        .map(Json::entries)
        .unwrap_or_default()
        .iter()
        .flat_map(|(_, item)| item.entries())
        .filter_map(|(_, operation)| operation.at(&["requestBody", "content"]))
        .flat_map(Json::entries)
        .filter_map(|(_, media)| {
            let schema = media.at(&["schema"])?;
            schema
                .at(&["items"])
                .unwrap_or(schema)
                .at(&["$ref"])?
                .text()
        })
        .filter_map(|reference| reference.strip_prefix("#/components/schemas/"))
        .map(str::to_owned)
        .collect();
    // The members of a `oneOf` (an event's `data`) are closed too, so a
    // value matches exactly one of them.
    let union_members: Vec<String> = document
        .at(&["components", "schemas"])
        .map(Json::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, schema)| match schema.at(&["oneOf"]) {
            Some(Json::Array(members)) => Some(members.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|member| {
            let reference = member.at(&["$ref"])?.text()?;
            Some(reference.strip_prefix("#/components/schemas/")?.to_owned())
        })
        .collect();
    if let Some(Json::Object(schemas)) = document.at_mut(&["components", "schemas"]) {
        for (name, schema) in schemas {
            if request_bodies.contains(name) || union_members.contains(name) {
                schema.set("additionalProperties", Json::Bool(false));
            }
        }
    }
    if let Some(Json::Array(servers)) = document.at_mut(&["servers"]) {
        for server in servers {
            // Whoever runs it decides who reaches it; the API itself is meant
            // for HR teams' tools and scripts, not for a public audience.
            server.set("x-internal", Json::Bool(true));
        }
    }
    bound_integers(&mut document);
    let mut finished = serde_json::to_string_pretty(&document).expect("JSON serializes");
    finished.push('\n');
    finished
}

/// Serves the finished document as `openapi.json`.
pub fn spec_endpoint<T: OpenApi>(service: &OpenApiService<T, ()>) -> impl Endpoint + 'static {
    // As poem-openapi serves it: without the file's trailing newline.
    let document = finish(service).trim_end().to_owned();
    make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(document.clone())
    })
}

/// Swagger UI on the finished document: poem-openapi's page, whose inline
/// document is swapped for the finished one.
pub fn docs_endpoint<T: OpenApi>(service: &OpenApiService<T, ()>) -> impl Endpoint + 'static {
    let html = service
        .swagger_ui_html()
        .replacen(&service.spec(), finish(service).trim_end(), 1);
    make_sync(move |_| Html(html.clone()))
}

/// Every integer schema without a `minimum` or `maximum` gets the bound of
/// its format: what a server reading `i32`/`i64` can take. Written as exact
/// integers, which the metadata's `f64` cannot hold for `int64`.
fn bound_integers(value: &mut Json) {
    if value.at(&["type"]).and_then(Json::text) == Some("integer") {
        let (min, max) = match value.at(&["format"]).and_then(Json::text) {
            Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        if value.at(&["minimum"]).is_none() {
            value.set("minimum", Json::Number(min.into()));
        }
        if value.at(&["maximum"]).is_none() {
            value.set("maximum", Json::Number(max.into()));
        }
    }
    match value {
        Json::Object(entries) => entries.iter_mut().for_each(|(_, v)| bound_integers(v)),
        Json::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// A JSON value whose objects keep their keys in order (`serde_json::Value`
/// sorts them), so the finished document reads as poem-openapi wrote it.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn entries(&self) -> Vec<(&str, &Json)> {
        match self {
            Json::Object(entries) => entries.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            _ => Vec::new(),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    fn at(&self, path: &[&str]) -> Option<&Json> {
        path.iter().try_fold(self, |value, key| match value {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        })
    }

    fn at_mut(&mut self, path: &[&str]) -> Option<&mut Json> {
        path.iter().try_fold(self, |value, key| match value {
            Json::Object(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        })
    }

    /// Replaces `key`'s value, or appends it.
    fn set(&mut self, key: &str, new: Json) {
        if let Json::Object(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, value)) => *value = new,
                None => entries.push((key.to_owned(), new)),
            }
        }
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Number(value) => value.serialize(serializer),
            Json::String(value) => serializer.serialize_str(value),
            Json::Array(items) => items.serialize(serializer),
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Json;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
                Ok(Json::Bool(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
                Ok(Json::Number(value.into()))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
                Ok(Json::Number(value.into()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(value)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("a number JSON cannot hold"))
            }
            fn visit_str<E>(self, value: &str) -> Result<Json, E> {
                Ok(Json::String(value.to_owned()))
            }
            fn visit_string<E>(self, value: String) -> Result<Json, E> {
                Ok(Json::String(value))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Json::Object(entries))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}
