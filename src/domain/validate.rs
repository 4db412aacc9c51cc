//! Input rules shared by every resource. The OpenAPI schema repeats the
//! limits (`max_length`, `minimum`, ...) so clients see them; these functions
//! are what enforces them.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::domain::DomainError;

pub const NAME_MAX: usize = 200;
pub const EXTERNAL_REF_MAX: usize = 200;
pub const EMAIL_MAX: usize = 320;
pub const DESCRIPTION_MAX: usize = 2000;
pub const NOTE_MAX: usize = 4000;
pub const SLUG_MAX: usize = 64;
pub const SCORE_MIN: i32 = 0;
pub const SCORE_MAX: i32 = 10;
/// The largest `min_group_size`: survey vendors use 10 to 20; beyond a
/// thousand, almost every report point would be suppressed.
pub const MIN_GROUP_SIZE_MAX: i32 = 1000;
/// Clocks drift; an encounter may be stamped slightly ahead of ours.
pub const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// A required, trimmed, non-empty string of at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    // PostgreSQL cannot store NUL in text, and no other control character
    // belongs in a name, reference or note.
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A name or reference that requests match exactly (`external_ref`, a
/// touchpoint's name): [`required_text`] without invisible format
/// characters (U+200B zero width space, U+200D joiner, U+FEFF, U+00AD soft
/// hyphen, bidirectional controls: Unicode's `Cf`), which would let two
/// identifiers look alike and differ, or one look empty.
pub fn identifier(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let text = required_text(field, value, max)?;
    // No ASCII character is a format character: the category's table lookup
    // (a search per character) was 5% of the service's time in a bulk
    // import on PostgreSQL, and references are mostly ASCII.
    if text
        .chars()
        .any(|c| !c.is_ascii() && c.general_category() == GeneralCategory::Format)
    {
        return Err(DomainError::invalid(
            field,
            "must not contain invisible format characters (such as U+200B)",
        ));
    }
    Ok(text)
}

/// An optional string: blank becomes `None`, otherwise at most `max` characters.
pub fn optional_text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match value {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => required_text(field, &text, max).map(Some),
    }
}

/// An optional e-mail address. Blank is none; otherwise, trimmed,
/// `local@domain`: both parts non-empty, without `@`, whitespace or control
/// characters, and at most [`EMAIL_MAX`] characters as sent. The document
/// states the same rule as a `pattern` on the `email` fields (kept in step
/// by tests/api/contract.rs), so clients can check it before sending.
pub fn email(field: &str, value: Option<String>) -> Result<Option<String>, DomainError> {
    if value
        .as_deref()
        .is_some_and(|sent| sent.chars().count() > EMAIL_MAX)
    {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {EMAIL_MAX} characters"),
        ));
    }
    let Some(email) = optional_text(field, value, EMAIL_MAX)? else {
        return Ok(None);
    };
    let part = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c != '@' && !c.is_whitespace() && !c.is_control())
    };
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| part(local) && part(domain));
    if !well_formed {
        return Err(DomainError::invalid(field, "must be an e-mail address"));
    }
    Ok(Some(email))
}

/// A perception score: the candidate-NPS answer, 0 to 10.
pub fn score(field: &str, value: Option<i32>) -> Result<Option<i32>, DomainError> {
    match value {
        Some(score) if !(SCORE_MIN..=SCORE_MAX).contains(&score) => Err(DomainError::invalid(
            field,
            format!("must be between {SCORE_MIN} and {SCORE_MAX}"),
        )),
        other => Ok(other),
    }
}

/// An organization's small-group suppression threshold, 0 (off) to
/// [`MIN_GROUP_SIZE_MAX`].
pub fn min_group_size(field: &str, value: i64) -> Result<i32, DomainError> {
    i32::try_from(value)
        .ok()
        .filter(|size| (0..=MIN_GROUP_SIZE_MAX).contains(size))
        .ok_or_else(|| {
            DomainError::invalid(field, format!("must be between 0 and {MIN_GROUP_SIZE_MAX}"))
        })
}

/// A moment RFC 3339 can write, in the UTC years 0001 to 9999: what the
/// reports' windows span and what stored times sort correctly as text in.
pub fn timestamp(field: &str, value: DateTime<Utc>) -> Result<DateTime<Utc>, DomainError> {
    if !(1..=9999).contains(&value.year()) {
        return Err(DomainError::invalid(
            field,
            "must be in the years 0001 to 9999",
        ));
    }
    Ok(value)
}

/// A moment that has already happened (within the clock-drift tolerance),
/// in the years [`timestamp`] allows.
pub fn not_in_future(
    field: &str,
    value: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, DomainError> {
    let value = timestamp(field, value)?;
    if value > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        return Err(DomainError::invalid(
            field,
            format!("must not be more than {FUTURE_TOLERANCE_MINUTES} minutes in the future"),
        ));
    }
    // Stored at microsecond precision, like every timestamp.
    Ok(chrono::SubsecRound::trunc_subsecs(value, 6))
}

/// An organization slug: lowercase letters, digits and dashes.
pub fn slug(field: &str, value: &str) -> Result<String, DomainError> {
    let slug = required_text(field, value, SLUG_MAX)?;
    let valid = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if !valid {
        return Err(DomainError::invalid(
            field,
            "must contain only lowercase letters, digits and dashes",
        ));
    }
    Ok(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ascii_character_is_a_format_character() {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        assert!((0u8..=127)
            .map(char::from)
            .all(|c| c.general_category() != GeneralCategory::Format));
        assert_eq!('\u{200b}'.general_category(), GeneralCategory::Format);
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            required_text("name", "  Careers site ", 200).unwrap(),
            "Careers site"
        );
        assert!(required_text("name", "   ", 200).is_err());
        assert!(required_text("name", &"x".repeat(201), 200).is_err());
        assert!(required_text("name", &"é".repeat(200), 200).is_ok());
        assert!(required_text("name", "a\u{0}b", 200).is_err());
        assert!(required_text("note", "line\r\n\tnext", 200).is_ok());
    }

    #[test]
    fn timestamps_stay_in_four_digit_years() {
        let at = |y, m, d| {
            chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        };
        let now = at(2026, 11, 26);
        assert!(not_in_future("occurred_at", at(-1, 6, 1), now).is_err());
        assert!(not_in_future("occurred_at", at(0, 1, 1), now).is_err());
        assert!(not_in_future("occurred_at", at(1, 1, 1), now).is_ok());
        assert!(timestamp("expires_at", at(9999, 12, 31)).is_ok());
        assert!(timestamp("expires_at", at(10000, 1, 1)).is_err());
    }

    #[test]
    fn identifiers_have_no_invisible_characters() {
        assert_eq!(identifier("external_ref", " ATS-1 ", 200).unwrap(), "ATS-1");
        assert_eq!(identifier("name", "Phỏng vấn", 200).unwrap(), "Phỏng vấn");
        for bad in [
            "\u{200B}",
            "ATS\u{200B}-1",
            "\u{FEFF}ATS-1",
            "A\u{00AD}B",
            "x\u{202E}y",
            "a\u{2060}",
        ] {
            assert!(identifier("external_ref", bad, 200).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scores_are_bounded() {
        assert!(score("score", Some(-1)).is_err());
        assert!(score("score", Some(11)).is_err());
        assert_eq!(score("score", Some(0)).unwrap(), Some(0));
        assert_eq!(score("score", Some(10)).unwrap(), Some(10));
        assert_eq!(score("score", None).unwrap(), None);
    }

    #[test]
    fn min_group_sizes_are_bounded() {
        assert_eq!(min_group_size("m", 0).unwrap(), 0);
        assert_eq!(min_group_size("m", 1000).unwrap(), 1000);
        assert!(min_group_size("m", -1).is_err());
        assert!(min_group_size("m", 1001).is_err());
        assert!(min_group_size("m", i64::from(i32::MAX) + 1).is_err());
    }

    #[test]
    fn emails_need_one_at_sign() {
        assert!(email("email", Some("a@b.example".into())).is_ok());
        assert!(email("email", Some("nope".into())).is_err());
        assert!(email("email", Some("a@@b".into())).is_err());
        assert_eq!(email("email", Some(" ".into())).unwrap(), None);
        assert_eq!(
            email("email", Some(" a@b.example\u{85}".into())).unwrap(),
            Some("a@b.example".to_owned())
        );
        assert!(email("email", Some("a\u{1c}@b".into())).is_err());
        assert!(email("email", Some("a@b\u{a0}c".into())).is_err());
        // The length counts what was sent, as the document's maxLength does.
        assert!(email("email", Some(format!("a@{}", "b".repeat(318)))).is_ok());
        assert!(email("email", Some(format!(" a@{}", "b".repeat(318)))).is_err());
    }

    #[test]
    fn slugs_are_lowercase() {
        assert!(slug("slug", "acme-2").is_ok());
        assert!(slug("slug", "Acme").is_err());
        assert!(slug("slug", "-acme").is_err());
    }
}
