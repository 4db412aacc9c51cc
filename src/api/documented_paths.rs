//! The document's paths, read back from the document itself, for the
//! middleware that needs to know which route a request path matches
//! before the router does: the methods of a 405's `Allow` header, and the
//! refusal of non-canonical ids.

use std::sync::OnceLock;

/// One path of the document: its segments (`{id}` for a parameter) and
/// methods.
struct DocumentedPath {
    segments: Vec<Segment>,
    /// Upper case, comma-separated, as `Allow` lists them.
    methods: String,
}

enum Segment {
    Literal(String),
    /// A path parameter; `integer` when the document says its schema is one.
    Parameter { integer: bool },
}

fn paths() -> &'static [DocumentedPath] {
    static PATHS: OnceLock<Vec<DocumentedPath>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let document: serde_json::Value =
            serde_json::from_str(&super::openapi_service().spec()).unwrap_or_default();
        let mut paths: Vec<DocumentedPath> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(template, operations)| {
                let operations = operations.as_object().cloned().unwrap_or_default();
                let integer_parameters: Vec<String> = operations
                    .values()
                    .flat_map(|op| op["parameters"].as_array().cloned().unwrap_or_default())
                    .filter(|p| p["in"] == "path" && p["schema"]["type"] == "integer")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                let segments = template
                    .split('/')
                    .map(|segment| match segment.strip_prefix('{') {
                        Some(rest) => Segment::Parameter {
                            integer: integer_parameters
                                .iter()
                                .any(|name| rest.strip_suffix('}') == Some(name)),
                        },
                        None => Segment::Literal(segment.to_owned()),
                    })
                    .collect();
                let methods: Vec<String> = operations.keys().map(|m| m.to_uppercase()).collect();
                DocumentedPath {
                    segments,
                    methods: methods.join(", "),
                }
            })
            .collect();
        // A literal segment wins over a parameter, as in the router.
        paths.sort_by_key(|path| {
            path.segments
                .iter()
                .filter(|s| matches!(s, Segment::Parameter { .. }))
                .count()
        });
        paths
    })
}

fn matching(path: &str) -> Option<(&'static DocumentedPath, Vec<&str>)> {
    let segments: Vec<&str> = path.split('/').collect();
    paths()
        .iter()
        .find(|documented| {
            documented.segments.len() == segments.len()
                && documented
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(documented, given)| match documented {
                        Segment::Literal(literal) => literal == given,
                        Segment::Parameter { .. } => true,
                    })
        })
        .map(|documented| (documented, segments))
}

/// The methods of the documented path that `path` matches, comma-separated.
pub fn allowed_methods(path: &str) -> Option<String> {
    matching(path).map(|(documented, _)| documented.methods.clone())
}

/// Whether `path` gives an integer path parameter in another spelling than
/// its canonical decimal one (`+1`, `01`, `-0`): the router would read
/// `/encounters/+1` as encounter 1, so one resource would have many URLs.
pub fn has_non_canonical_integer(path: &str) -> bool {
    let Some((documented, given)) = matching(path) else {
        return false;
    };
    documented
        .segments
        .iter()
        .zip(given)
        .any(|(segment, given)| {
            matches!(segment, Segment::Parameter { integer: true }) && !is_canonical_integer(given)
        })
}

fn is_canonical_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical_digits = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical_digits && text != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_have_one_spelling() {
        for good in ["0", "1", "42", "-3", "9223372036854775807"] {
            assert!(is_canonical_integer(good), "{good}");
        }
        for bad in ["+1", "01", "-0", "", "-", "1.0", "1e3", " 1", "%2B1", "0x1"] {
            assert!(!is_canonical_integer(bad), "{bad}");
        }
    }

    #[test]
    fn documented_paths_are_matched() {
        assert!(has_non_canonical_integer("/api/v1/encounters/+1"));
        assert!(has_non_canonical_integer("/api/v1/candidates/007/journey"));
        assert!(!has_non_canonical_integer("/api/v1/encounters/1"));
        // The literal segment wins over `{id}`.
        assert!(!has_non_canonical_integer("/api/v1/encounters/batch"));
        assert!(!has_non_canonical_integer("/no/such/path/+1"));
        assert_eq!(
            allowed_methods("/api/v1/keys/3").as_deref(),
            Some("DELETE")
        );
    }
}
