//! The one cursor codec of lists and exports. A cursor is opaque to
//! clients: base64url (no padding) of a short text that starts with its
//! version and kind, so a list cursor is never taken for an export's, and a
//! later format can be told from this one.
//!
//! - version 2 (issued now): `v2:l:{after_id}` for lists and
//!   `v2:x:{organization_id}:{change_seq}` for exports;
//! - version 1 (issued before; still read, so a client walking pages or
//!   holding a nightly export's cursor across an upgrade carries on):
//!   `id:{after_id}` and `ex1:{organization_id}:{change_seq}`.
//!
//! Only the spelling the API writes is read: `007` or `+7` would name the
//! same row in many spellings.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

/// The version this API writes.
const VERSION: &str = "v2";

/// What a cursor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// A list's page: the last id seen.
    List { after_id: i64 },
    /// An export: the organization and the last `change_seq` exported.
    Export {
        organization_id: i64,
        change_seq: i64,
    },
}

/// The cursor formats ever issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Cursor {
    /// The cursor as this API issues it (the current version).
    pub fn encode(self) -> String {
        self.encode_as(Version::V2)
    }

    fn encode_as(self, version: Version) -> String {
        let text = match (version, self) {
            (Version::V2, Cursor::List { after_id }) => format!("{VERSION}:l:{after_id}"),
            (
                Version::V2,
                Cursor::Export {
                    organization_id,
                    change_seq,
                },
            ) => format!("{VERSION}:x:{organization_id}:{change_seq}"),
            (Version::V1, Cursor::List { after_id }) => format!("id:{after_id}"),
            (
                Version::V1,
                Cursor::Export {
                    organization_id,
                    change_seq,
                },
            ) => format!("ex1:{organization_id}:{change_seq}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// What a cursor this API issued (in any version) holds; `None` for
    /// anything else.
    pub fn decode(cursor: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let parts: Vec<&str> = text.split(':').collect();
        let number = |text: &str| text.parse::<i64>().ok().filter(|n| *n >= 0);
        let (version, decoded) = match parts.as_slice() {
            ["v2", "l", id] => (Version::V2, Cursor::list(number(id)?)),
            ["v2", "x", org, seq] => (Version::V2, Cursor::export(number(org)?, number(seq)?)),
            ["id", id] => (Version::V1, Cursor::list(number(id)?)),
            ["ex1", org, seq] => (Version::V1, Cursor::export(number(org)?, number(seq)?)),
            _ => return None,
        };
        (decoded.encode_as(version) == cursor).then_some(decoded)
    }

    fn list(after_id: i64) -> Cursor {
        Cursor::List { after_id }
    }

    fn export(organization_id: i64, change_seq: i64) -> Cursor {
        Cursor::Export {
            organization_id,
            change_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_the_current_version() {
        for cursor in [
            Cursor::list(0),
            Cursor::list(i64::MAX),
            Cursor::export(1, 0),
            Cursor::export(i64::MAX, i64::MAX),
        ] {
            let text = cursor.encode();
            assert_eq!(Cursor::decode(&text), Some(cursor), "{text}");
            let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(&text).unwrap()).unwrap();
            assert!(plain.starts_with("v2:"), "{plain}");
            // The document's `maxLength` is 128; the longest is far shorter.
            assert!(text.len() <= 60, "{text}");
        }
    }

    #[test]
    fn cursors_issued_before_still_read() {
        // As the previous build wrote them: `id:42` and `ex1:1:50`.
        assert_eq!(Cursor::decode("aWQ6NDI"), Some(Cursor::list(42)));
        assert_eq!(Cursor::decode("ZXgxOjE6NTA"), Some(Cursor::export(1, 50)));
        for cursor in [Cursor::list(7), Cursor::export(3, 9)] {
            assert_eq!(Cursor::decode(&cursor.encode_as(Version::V1)), Some(cursor));
        }
    }

    #[test]
    fn only_the_written_spelling_reads() {
        for text in [
            "",
            "id",
            "id:",
            "id:-5",
            "id:007",
            "id:+7",
            "id: 7",
            "id:7:",
            "ex1:3:+7",
            "ex1:3:007",
            "ex1:03:7",
            "ex1:3:7:",
            "ex1:7:-1",
            "ex2:7:1",
            "v2:l:",
            "v2:l:01",
            "v2:l:-1",
            "v2:x:1",
            "v2:x:1:2:3",
            "v2:y:1",
            "v3:l:1",
            "V2:l:1",
        ] {
            assert_eq!(
                Cursor::decode(&URL_SAFE_NO_PAD.encode(text)),
                None,
                "{text}"
            );
        }
        // Not base64url without padding, or not text.
        for text in ["!!", "aWQ6NDI=", "aWQ6NDJ", "_w"] {
            assert_eq!(Cursor::decode(text), None, "{text}");
        }
    }
}
