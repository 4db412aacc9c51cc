//! Date-times in requests: RFC 3339 (`format: date-time`) and nothing else,
//! with a year the reports and the database can hold (0001 to 9999).
//!
//! chrono's `FromStr`, which serde and poem-openapi use by default, also
//! takes signed and five-digit years (`-0001-06-01T00:00:00Z`), a space for
//! the `T` and offsets without a colon; a time the reports cannot place
//! would then be stored.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem_openapi::{
    registry::MetaSchemaRef,
    types::{ParseError, ParseFromParameter, ParseResult, Type},
};
use serde::{Deserialize, Deserializer};

use super::document::DATE_TIME_MAX_LENGTH;
use crate::domain::validate;

/// The message of every refused date-time.
pub const EXPECTED: &str = "must be an RFC 3339 date-time with a year from 0001 to 9999, \
as 2026-11-02T09:00:00Z";

/// Parses an RFC 3339 date-time (`T` or `t` between date and time, an offset
/// or `Z`) whose UTC year is 0001 to 9999.
pub fn parse(text: &str) -> Result<DateTime<Utc>, &'static str> {
    // The longest: nanoseconds and an offset (the document's `maxLength`).
    if text.len() > DATE_TIME_MAX_LENGTH || !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(EXPECTED);
    }
    let at = DateTime::parse_from_rfc3339(text).map_err(|_| EXPECTED)?;
    let at = at.with_timezone(&Utc);
    validate::timestamp("", at).map_err(|_| EXPECTED)
}

/// serde `deserialize_with` for a required date-time.
pub fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = Cow::<str>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// serde `deserialize_with` for a date-time that may be absent but not `null`
/// (with `#[serde(default)]`; see `patch::required`).
pub fn rfc3339_present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    rfc3339(deserializer).map(Some)
}

/// serde `deserialize_with` for a nullable date-time: `null` is `None`.
pub fn rfc3339_nullable<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<Cow<str>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A date-time query parameter, parsed as [`parse`] does; documented as
/// `DateTime<Utc>` is (`string`, `date-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryTime(pub DateTime<Utc>);

impl Type for QueryTime {
    const IS_REQUIRED: bool = true;
    type RawValueType = DateTime<Utc>;
    type RawElementValueType = DateTime<Utc>;

    fn name() -> Cow<'static, str> {
        <DateTime<Utc> as Type>::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        <DateTime<Utc> as Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromParameter for QueryTime {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        parse(value).map(QueryTime).map_err(ParseError::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rfc3339_with_four_digit_years() {
        for good in [
            "2026-11-02T09:00:00Z",
            "2026-11-02t09:00:00z",
            "2026-11-02T09:00:00.123456+07:00",
            "2026-11-02T09:00:00.123456789+07:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in [
            "-0001-06-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "2026-11-02 09:00:00Z",
            "2026-11-02T09:00:00",
            "2026-11-02T09:00:00+0700",
            "2026-11-02",
            "2026-13-02T09:00:00Z",
            "2026-11-02T09:00:00.1234567891234+07:00",
            // In UTC these are year 0 and year 10000.
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
