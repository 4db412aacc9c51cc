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
//!
//! And one declaration poem-openapi has no attribute for: [`NoAuth`], an
//! operation anyone may call without a key (`security: [{}]`).

use std::collections::HashMap;

use poem::{endpoint::BoxEndpoint, http::Method, Request, RequestBody};
use poem_openapi::{
    registry::{MetaApi, MetaSchema, MetaSchemaRef, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OpenApi,
};

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
