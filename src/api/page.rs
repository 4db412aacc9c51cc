//! List pages: `{items, next_cursor}` with opaque keyset cursors.

use poem_openapi::param::Query;

use super::error::ApiError;
use crate::domain::pagination::PageRequest;

/// Reads the `cursor` and `limit` query parameters every list takes.
pub fn page_request(
    cursor: &Query<Option<String>>,
    limit: &Query<Option<u64>>,
) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::new(cursor.0.as_deref(), limit.0)?)
}

/// Declares the page type of one resource. poem-openapi names schemas after
/// their Rust type, so each resource gets its own concrete page type.
macro_rules! page_type {
    ($(#[$meta:meta])* $page:ident of $item:ty) => {
        $(#[$meta])*
        #[derive(poem_openapi::Object)]
        pub struct $page {
            /// The rows of this page.
            #[oai(validator(max_items = 500))]
            pub items: Vec<$item>,
            /// Pass as `cursor` to read the next page; `null` on the last page.
            #[oai(validator(max_length = 128))]
            pub next_cursor: $crate::api::nullable::Nullable<String>,
        }

        impl<M> From<crate::domain::pagination::Page<M>> for $page
        where
            $item: From<M>,
        {
            fn from(page: crate::domain::pagination::Page<M>) -> Self {
                let page = page.map(<$item>::from);
                $page {
                    items: page.items,
                    next_cursor: page.next_cursor.into(),
                }
            }
        }
    };
}

pub(crate) use page_type;
