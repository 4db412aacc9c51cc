//! The plumbing benchmark: each hand-written piece of plumbing beside the
//! well-kept crate that does the same job, on the same inputs, in one table.
//!
//!     cargo bench --bench plumbing              # every piece (about a minute)
//!     cargo bench --bench plumbing -- csv json  # pieces whose name has a word
//!
//! Every pair is first checked to give the same output on the inputs it is
//! timed on, so the table compares equal work. Each figure is the median of
//! five rounds of at least 200 ms (after a warm-up round); the ratio is
//! hand-written speed over crate speed (above 1: hand-written is faster).
//! What each figure decided is in the comment of the piece it measures.

use std::{
    hint::black_box,
    io::Cursor,
    net::IpAddr,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use entity::enums::Source;
use futures_util::{stream, StreamExt};
use sea_orm::ActiveEnum;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::codec::{FramedRead, LinesCodec};
use touchpoint_tracker::{
    api::{
        encounter_imports::ImportEncounter,
        exports::{encoded_chunks, write_csv_row, write_json_line, Rfc3339},
        flat_json,
        payload::{parse_flat, parse_items, NdjsonReader},
        rate_limit::RateLimiter,
    },
    config::RateLimit,
    db::{changes::parse_utc_rfc3339, redact},
    domain::encounters::export::{Change, ExportedEncounter},
};

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    println!(
        "{:<34} {:>16} {:>16} {:>7}  crate",
        "piece", "hand-written", "crate", "ratio"
    );
    let changes = sample_changes(20_000);
    let times: Vec<DateTime<Utc>> = changes.iter().flat_map(change_times).collect();
    if wanted("rfc3339-format") {
        rfc3339_format(&times);
    }
    if wanted("rfc3339-parse") {
        rfc3339_parse(&times);
    }
    if wanted("json") {
        json_lines(&changes);
    }
    if wanted("csv") {
        csv_rows(&changes);
    }
    if wanted("chunks") {
        chunking(&changes);
    }
    if wanted("ndjson") {
        ndjson_reader();
    }
    if wanted("json-items") {
        json_items();
    }
    if wanted("rate-limit") {
        rate_limiter();
    }
    if wanted("redact") {
        url_redaction();
    }
}

// ---- timing and the table -------------------------------------------------

/// Nanoseconds per call of `f`: the median of five rounds of at least
/// 200 ms each, after a warm-up round.
fn ns_per_call(mut f: impl FnMut()) -> f64 {
    let mut calls = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        if start.elapsed() >= Duration::from_millis(200) {
            break;
        }
        calls *= 2;
    }
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

/// How a figure is shown: per item, or as throughput over `bytes`.
enum Unit {
    /// ns per one of `items` items done in one call.
    PerItem(usize),
    /// MB/s over `bytes` bytes of output (or input) per call.
    Bytes(usize),
}

impl Unit {
    fn show(&self, ns_per_call: f64) -> String {
        match self {
            Unit::PerItem(items) => format!("{:.1} ns/op", ns_per_call / *items as f64),
            Unit::Bytes(bytes) => format!("{:.0} MB/s", *bytes as f64 * 1e3 / ns_per_call),
        }
    }
}

fn row(piece: &str, unit: Unit, hand: f64, crate_ns: f64, crate_name: &str) {
    println!(
        "{:<34} {:>16} {:>16} {:>6.2}x  {}",
        piece,
        unit.show(hand),
        unit.show(crate_ns),
        crate_ns / hand,
        crate_name
    );
}

// ---- inputs ---------------------------------------------------------------

/// Changes of the export's shape: mostly upserts with short or no notes,
/// some long notes needing CSV quoting and JSON escaping, some deletions.
fn sample_changes(n: usize) -> Vec<Change<'static>> {
    let notes: [Option<&'static str>; 5] = [
        None,
        Some("Asked about the hybrid policy."),
        Some("Said the recruiter was \"very responsive\", but the interview ran late, twice."),
        Some("Loved the careers page.\nWould apply again."),
        Some(Box::leak(
            "Long feedback, with commas, and a line.\r\n"
                .repeat(40)
                .into_boxed_str(),
        )),
    ];
    let sources = [
        Source::CandidateSurvey,
        Source::RecruiterObservation,
        Source::ReviewImport,
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let r = next();
            // Times as the database gives them: microseconds, some whole seconds.
            let micros = if r % 5 == 0 { 0 } else { (r >> 8) % 1_000_000 };
            let at = |offset: i64| {
                DateTime::from_timestamp(1_760_000_000 + (r % 30_000_000) as i64 + offset, 0)
                    .unwrap()
                    + chrono::Duration::microseconds(micros as i64)
            };
            if r % 20 == 0 {
                return Change::Delete {
                    change_seq: i as i64 + 1,
                    encounter_id: i as i64 + 1,
                    candidate_id: (r % 10_000) as i64,
                    deleted_at: at(3600),
                };
            }
            Change::Upsert {
                change_seq: i as i64 + 1,
                encounter: ExportedEncounter {
                    id: i as i64 + 1,
                    candidate_id: (r % 10_000) as i64 + 1,
                    touchpoint_id: (r % 60) as i64 + 1,
                    occurred_at: at(0),
                    source: sources[(r >> 3) as usize % sources.len()],
                    score: (r % 10 < 6).then_some((r >> 5) as i32 % 11),
                    note: notes[(r >> 11) as usize % notes.len()],
                    recorded_by_key_id: 1,
                    created_at: at(60),
                    updated_at: at(120),
                },
            }
        })
        .collect()
}

fn change_times(change: &Change<'_>) -> Vec<DateTime<Utc>> {
    match change {
        Change::Upsert { encounter: e, .. } => vec![e.occurred_at, e.created_at, e.updated_at],
        Change::Delete { deleted_at, .. } => vec![*deleted_at],
    }
}

// ---- RFC 3339 ---------------------------------------------------------------

fn rfc3339_format(times: &[DateTime<Utc>]) {
    for at in times {
        assert_eq!(Rfc3339::new(at).as_bytes(), at.to_rfc3339().as_bytes());
    }
    let mut buf = Vec::with_capacity(64);
    let hand = ns_per_call(|| {
        for at in times {
            buf.clear();
            buf.extend_from_slice(Rfc3339::new(black_box(at)).as_bytes());
            black_box(&buf);
        }
    });
    let krate = ns_per_call(|| {
        for at in times {
            buf.clear();
            buf.extend_from_slice(black_box(at).to_rfc3339().as_bytes());
            black_box(&buf);
        }
    });
    row(
        "rfc3339-format (export times)",
        Unit::PerItem(times.len()),
        hand,
        krate,
        "chrono to_rfc3339",
    );
}

fn rfc3339_parse(times: &[DateTime<Utc>]) {
    // What sqlx stores in SQLite.
    let texts: Vec<String> = times
        .iter()
        .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        .collect();
    let chrono_parse = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    for text in &texts {
        assert_eq!(parse_utc_rfc3339(text), chrono_parse(text));
    }
    let hand = ns_per_call(|| {
        for text in &texts {
            black_box(parse_utc_rfc3339(black_box(text)));
        }
    });
    let krate = ns_per_call(|| {
        for text in &texts {
            black_box(chrono_parse(black_box(text)));
        }
    });
    row(
        "rfc3339-parse (SQLite times)",
        Unit::PerItem(texts.len()),
        hand,
        krate,
        "chrono parse_from_rfc3339",
    );
}

// ---- the export's writers -------------------------------------------------

/// A time for serde: written by chrono (`to_rfc3339`, what the crates
/// would use without help), or by the hand-written [`Rfc3339`] (to measure
/// the crate writers apart from the times).
#[derive(Clone, Copy)]
struct Time(DateTime<Utc>, TimeBy);

#[derive(Clone, Copy, PartialEq)]
enum TimeBy {
    Chrono,
    Hand,
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            TimeBy::Chrono => s.serialize_str(&self.0.to_rfc3339()),
            TimeBy::Hand => {
                let text = Rfc3339::new(&self.0);
                s.serialize_str(std::str::from_utf8(text.as_bytes()).unwrap())
            }
        }
    }
}

fn source_name(source: Source) -> String {
    source.to_value()
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum JsonRecord<'a> {
    #[serde(rename = "encounter")]
    Encounter {
        change_seq: i64,
        encounter: JsonEncounter<'a>,
    },
    #[serde(rename = "deleted")]
    Deleted {
        candidate_id: i64,
        change_seq: i64,
        deleted_at: Time,
        encounter_id: i64,
    },
}

/// The fields in the order the export writes them (by name).
#[derive(Serialize)]
struct JsonEncounter<'a> {
    candidate_id: i64,
    created_at: Time,
    id: i64,
    note: Option<&'a str>,
    occurred_at: Time,
    recorded_by_key_id: i64,
    score: Option<i32>,
    source: String,
    touchpoint_id: i64,
    updated_at: Time,
}

fn json_record<'a>(change: &Change<'a>, by: TimeBy) -> JsonRecord<'a> {
    let time = |at: &DateTime<Utc>| Time(*at, by);
    match change {
        Change::Upsert {
            change_seq,
            encounter: e,
        } => JsonRecord::Encounter {
            change_seq: *change_seq,
            encounter: JsonEncounter {
                candidate_id: e.candidate_id,
                created_at: time(&e.created_at),
                id: e.id,
                note: e.note,
                occurred_at: time(&e.occurred_at),
                recorded_by_key_id: e.recorded_by_key_id,
                score: e.score,
                source: source_name(e.source),
                touchpoint_id: e.touchpoint_id,
                updated_at: time(&e.updated_at),
            },
        },
        Change::Delete {
            change_seq,
            encounter_id,
            candidate_id,
            deleted_at,
        } => JsonRecord::Deleted {
            candidate_id: *candidate_id,
            change_seq: *change_seq,
            deleted_at: time(deleted_at),
            encounter_id: *encounter_id,
        },
    }
}

fn json_lines(changes: &[Change<'static>]) {
    let serde_line = |buf: &mut Vec<u8>, change: &Change<'_>, by: TimeBy| {
        serde_json::to_writer(&mut *buf, &json_record(change, by)).unwrap();
        buf.push(b'\n');
    };
    let mut hand_out = Vec::new();
    for change in changes {
        write_json_line(&mut hand_out, change);
    }
    for by in [TimeBy::Chrono, TimeBy::Hand] {
        let mut crate_out = Vec::new();
        for change in changes {
            serde_line(&mut crate_out, change, by);
        }
        assert!(hand_out == crate_out, "the JSON writers differ");
    }
    let bytes = hand_out.len();
    let mut buf = Vec::with_capacity(bytes);
    let hand = ns_per_call(|| {
        buf.clear();
        for change in changes {
            write_json_line(&mut buf, change);
        }
        black_box(&buf);
    });
    for (by, piece, krate) in [
        (
            TimeBy::Chrono,
            "json (export NDJSON lines)",
            "serde_json derive + chrono",
        ),
        (
            TimeBy::Hand,
            "  same, times by hand in both",
            "serde_json derive",
        ),
    ] {
        let crate_ns = ns_per_call(|| {
            buf.clear();
            for change in changes {
                serde_line(&mut buf, change, by);
            }
            black_box(&buf);
        });
        row(piece, Unit::Bytes(bytes), hand, crate_ns, krate);
    }
}

/// A CSV row for serde: the export's 13 columns, `None` for an empty field.
#[derive(Serialize)]
struct CsvRecord<'a> {
    op: &'static str,
    change_seq: i64,
    id: i64,
    candidate_id: i64,
    touchpoint_id: Option<i64>,
    occurred_at: Option<Time>,
    source: Option<String>,
    score: Option<i32>,
    note: Option<&'a str>,
    recorded_by_key_id: Option<i64>,
    created_at: Option<Time>,
    updated_at: Option<Time>,
    deleted_at: Option<Time>,
}

fn csv_record<'a>(change: &Change<'a>, by: TimeBy) -> CsvRecord<'a> {
    let time = |at: &DateTime<Utc>| Some(Time(*at, by));
    match change {
        Change::Upsert {
            change_seq,
            encounter: e,
        } => CsvRecord {
            op: "upsert",
            change_seq: *change_seq,
            id: e.id,
            candidate_id: e.candidate_id,
            touchpoint_id: Some(e.touchpoint_id),
            occurred_at: time(&e.occurred_at),
            source: Some(e.source.to_value()),
            score: e.score,
            note: Some(e.note.unwrap_or_default()),
            recorded_by_key_id: Some(e.recorded_by_key_id),
            created_at: time(&e.created_at),
            updated_at: time(&e.updated_at),
            deleted_at: None,
        },
        Change::Delete {
            change_seq,
            encounter_id,
            candidate_id,
            deleted_at,
        } => CsvRecord {
            op: "delete",
            change_seq: *change_seq,
            id: *encounter_id,
            candidate_id: *candidate_id,
            touchpoint_id: None,
            occurred_at: None,
            source: None,
            score: None,
            note: None,
            recorded_by_key_id: None,
            created_at: None,
            updated_at: None,
            deleted_at: time(deleted_at),
        },
    }
}

fn csv_writer(out: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

fn csv_rows(changes: &[Change<'static>]) {
    let mut hand_out = Vec::new();
    for change in changes {
        write_csv_row(&mut hand_out, change);
    }
    for by in [TimeBy::Chrono, TimeBy::Hand] {
        let mut writer = csv_writer(Vec::new());
        for change in changes {
            writer.serialize(csv_record(change, by)).unwrap();
        }
        let crate_out = writer.into_inner().unwrap();
        assert!(hand_out == crate_out, "the CSV writers differ");
    }
    let bytes = hand_out.len();
    let mut buf = Vec::with_capacity(bytes);
    let hand = ns_per_call(|| {
        buf.clear();
        for change in changes {
            write_csv_row(&mut buf, change);
        }
        black_box(&buf);
    });
    for (by, piece, krate) in [
        (
            TimeBy::Chrono,
            "csv (export rows)",
            "csv serialize + chrono",
        ),
        (
            TimeBy::Hand,
            "  same, times by hand in both",
            "csv serialize",
        ),
    ] {
        let mut out = Some(Vec::with_capacity(bytes));
        let crate_ns = ns_per_call(|| {
            let mut buf = out.take().unwrap();
            buf.clear();
            let mut writer = csv_writer(buf);
            for change in changes {
                writer.serialize(csv_record(change, by)).unwrap();
            }
            out = Some(black_box(writer.into_inner().unwrap()));
        });
        row(piece, Unit::Bytes(bytes), hand, crate_ns, krate);
    }
}

// ---- the export's chunking --------------------------------------------------

fn chunking(changes: &[Change<'static>]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let hand_chunks = || {
        let changes = stream::iter(changes.iter().cloned().map(Ok));
        let chunks = encoded_chunks(changes, None);
        runtime.block_on(chunks.map(|chunk| chunk.unwrap()).collect::<Vec<_>>())
    };
    // The crate's chunker counts items, not bytes: 256 rows average about
    // the export's 64 KiB chunk on these rows.
    let crate_chunks = || {
        let changes = stream::iter(changes.iter().cloned());
        let chunks =
            tokio_stream::StreamExt::chunks_timeout(changes, 256, Duration::from_millis(20));
        let mut first = true;
        let encoded = chunks.map(|rows| {
            let mut buf = Vec::with_capacity(80 * 1024);
            if std::mem::take(&mut first) {
                buf.extend_from_slice(CSV_HEADER);
            }
            for change in &rows {
                write_csv_row(&mut buf, change);
            }
            buf
        });
        runtime.block_on(encoded.collect::<Vec<_>>())
    };
    let hand_out: Vec<u8> = hand_chunks().concat();
    assert!(hand_out == crate_chunks().concat(), "the chunkers differ");
    let hand = ns_per_call(|| {
        black_box(hand_chunks());
    });
    let krate = ns_per_call(|| {
        black_box(crate_chunks());
    });
    row(
        "chunks (CSV export stream)",
        Unit::Bytes(hand_out.len()),
        hand,
        krate,
        "tokio-stream chunks_timeout",
    );
}

const CSV_HEADER: &[u8] = b"op,change_seq,id,candidate_id,touchpoint_id,occurred_at,source,\
score,note,recorded_by_key_id,created_at,updated_at,deleted_at\r\n";

// ---- the import's NDJSON reader ----------------------------------------------

/// An import stream: lines of the shape clients send.
fn import_stream(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let line = match i % 4 {
            0 => format!(
                r#"{{"candidate_external_ref":"ATS-{i}","touchpoint_name":"Glassdoor reviews","occurred_at":"2026-10-28T18:30:00Z","source":"candidate_survey","score":{},"note":null}}"#,
                i % 11
            ),
            1 => format!(
                r#"{{"candidate_id":{},"touchpoint_id":3,"occurred_at":"2026-10-28T18:30:00.123456Z","score":7}}"#,
                i + 1
            ),
            2 => format!(
                r#"{{"candidate_external_ref":"ATS-{i}","touchpoint_id":12,"occurred_at":"2026-09-01T08:00:00+07:00","source":"recruiter_observation","note":"Said the interview ran late, twice, and \"nobody told me\"."}}"#
            ),
            _ => format!(
                r#"{{"candidate_id":{},"touchpoint_name":"Careers site","occurred_at":"2026-10-01T12:00:00Z"}}"#,
                i + 1
            ),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn ndjson_reader() {
    const LINE_LIMIT: usize = 64 * 1024;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let input = import_stream(20_000);
    let hand_read = |input: Vec<u8>| {
        runtime.block_on(async move {
            let mut reader = NdjsonReader::<ImportEncounter>::new(Cursor::new(input), LINE_LIMIT);
            let mut items = 0usize;
            while let Some((_, item)) = reader.next().await.unwrap() {
                items += usize::from(item.is_ok());
            }
            (items, reader.digest())
        })
    };
    // The same work through the crate's line codec: the digest of every
    // line, blank lines skipped, each line parsed as the import does.
    let crate_read = |input: Vec<u8>| {
        runtime.block_on(async move {
            let mut lines = FramedRead::new(
                Cursor::new(input),
                LinesCodec::new_with_max_length(LINE_LIMIT),
            );
            let mut digest = Sha256::new();
            let mut items = 0usize;
            while let Some(line) = lines.next().await {
                let line = line.unwrap();
                digest.update(line.as_bytes());
                digest.update(b"\n");
                if line.bytes().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                items += usize::from(parse_flat::<ImportEncounter>(line.as_bytes()).is_ok());
            }
            (items, <[u8; 32]>::from(digest.finalize()))
        })
    };
    let hand_result = hand_read(input.clone());
    assert_eq!(hand_result.0, 20_000, "every line is an item");
    assert_eq!(hand_result, crate_read(input.clone()), "the readers differ");
    let hand = ns_per_call(|| {
        black_box(hand_read(input.clone()));
    });
    let krate = ns_per_call(|| {
        black_box(crate_read(input.clone()));
    });
    row(
        "ndjson (import reader, parsed)",
        Unit::Bytes(input.len()),
        hand,
        krate,
        "tokio-util LinesCodec",
    );
}

/// A batch body of 5,000 import items, read straight into the items
/// (`flat_json`) against through a `serde_json::Value` first, the way
/// every other body is read (`strict_json::parse`, then each item). This
/// figure is why bulk bodies skip the value when they can.
fn json_items() {
    const ITEMS: usize = 5_000;
    let lines = import_stream(ITEMS);
    let mut body = b"[".to_vec();
    for (n, line) in lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(line);
    }
    body.push(b']');
    let direct = || flat_json::read_items::<ImportEncounter>(&body, ITEMS).expect("read directly");
    let through_value = || {
        parse_items::<ImportEncounter>(&body, ITEMS)
            .expect("an array")
            .into_iter()
            .map(|item| item.expect("an item"))
            .collect::<Vec<_>>()
    };
    let debug = |items: Vec<ImportEncounter>| format!("{items:?}");
    assert_eq!(
        debug(direct()),
        debug(through_value()),
        "the readings differ"
    );
    let hand = ns_per_call(|| {
        black_box(direct());
    });
    let krate = ns_per_call(|| {
        black_box(through_value());
    });
    row(
        "json-items (batch body, 5,000)",
        Unit::PerItem(ITEMS),
        hand,
        krate,
        "serde_json::Value, then each item",
    );
}

// ---- the rate limiter ---------------------------------------------------------

fn rate_limiter() {
    type Governor = governor::DefaultKeyedRateLimiter<IpAddr>;
    let keys: Vec<IpAddr> = (0..1000u32)
        .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    // Generous, so every check passes and both keep every key.
    let hand_limiter = RateLimiter::new(RateLimit {
        per_second: 1e9,
        burst: 1e9,
    });
    let quota = governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap());
    let governor = Governor::keyed(quota);
    for key in &keys {
        assert!(hand_limiter.check(*key).is_ok());
        assert!(governor.check_key(key).is_ok());
    }
    let hand = ns_per_call(|| {
        for key in &keys {
            black_box(hand_limiter.check(*black_box(key)).is_ok());
        }
    });
    let krate = ns_per_call(|| {
        for key in &keys {
            black_box(governor.check_key(black_box(key)).is_ok());
        }
    });
    row(
        "rate-limit (check, 1 thread)",
        Unit::PerItem(keys.len()),
        hand,
        krate,
        "governor keyed",
    );
    // Both cores checking at once: the hand-written limiter is one mutex.
    let both = |check: &(dyn Fn(&IpAddr) -> bool + Sync)| {
        ns_per_call(|| {
            std::thread::scope(|scope| {
                for half in keys.chunks(keys.len() / 2) {
                    scope.spawn(move || {
                        for _ in 0..20 {
                            for key in half {
                                black_box(check(black_box(key)));
                            }
                        }
                    });
                }
            })
        })
    };
    let hand = both(&|key| hand_limiter.check(*key).is_ok());
    let krate = both(&|key| governor.check_key(key).is_ok());
    row(
        "rate-limit (check, 2 threads)",
        Unit::PerItem(keys.len() * 20),
        hand,
        krate,
        "governor keyed",
    );
}

// ---- URL redaction ---------------------------------------------------------------

/// The hand-written redaction this build replaced with the `url` crate's
/// (kept here to measure; it ran once per connection attempt).
fn redact_by_hand(database_url: &str) -> String {
    match (database_url.find("://"), database_url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &database_url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!(
                    "{}{user}:***{}",
                    &database_url[..scheme_end + 3],
                    &database_url[at..]
                ),
                None => database_url.to_owned(),
            }
        }
        _ => database_url.to_owned(),
    }
}

fn url_redaction() {
    let urls = [
        "postgres://app:secret@db.internal:5432/touchpoints?sslmode=require",
        "sqlite://data/touchpoint-tracker.db",
    ];
    for url in urls {
        assert_eq!(redact_by_hand(url), redact(url));
    }
    let hand = ns_per_call(|| {
        for url in urls {
            black_box(redact_by_hand(black_box(url)));
        }
    });
    let krate = ns_per_call(|| {
        for url in urls {
            black_box(redact(black_box(url)));
        }
    });
    row(
        "redact (database URL, replaced)",
        Unit::PerItem(urls.len()),
        hand,
        krate,
        "url",
    );
}
