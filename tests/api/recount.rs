//! The reports against a recount: every report of a few date windows
//! computed again here, from the encounter list and the touchpoints' kinds
//! as the API lists them (an implementation of the documented definitions
//! apart from the service's rollups). Works against any service: the
//! in-process test app or a separately started process.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::Value;

use super::helpers::ApiClient;

const TREND: &str = "/api/v1/reports/perception-trend";
const IMPACT: &str = "/api/v1/reports/touchpoint-impact";
const SHIFT: &str = "/api/v1/reports/perception-shift";
const SUMMARY: &str = "/api/v1/reports/summary";
const GAP: &str = "/api/v1/reports/perception-gap";

fn impact_rows(report: &Value) -> Vec<Value> {
    report["touchpoints"].as_array().unwrap().clone()
}

/// Every touchpoint's kind, archived ones included, by id.
pub async fn touchpoint_kinds(api: &ApiClient) -> HashMap<i64, String> {
    let mut kinds = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/touchpoints?include_archived=true&limit=500&cursor={c}"),
            None => "/api/v1/touchpoints?include_archived=true&limit=500".to_owned(),
        };
        let page = api.get(&path).await;
        let body = page.assert_status(200);
        for item in body["items"].as_array().unwrap() {
            kinds.insert(
                item["id"].as_i64().unwrap(),
                item["kind"].as_str().unwrap().to_owned(),
            );
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return kinds,
        }
    }
}

/// An encounter as `GET /api/v1/encounters` lists it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub candidate: i64,
    pub touchpoint: i64,
    pub at: DateTime<Utc>,
    pub score: Option<i64>,
    pub source: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    encounters: i64,
    scored: i64,
    sum: i64,
    promoters: i64,
    passives: i64,
    detractors: i64,
    shift_sum: f64,
    shifts: i64,
}

impl Tally {
    fn add(&mut self, score: Option<i64>, share: Option<f64>) {
        self.encounters += 1;
        if let Some(s) = score {
            self.scored += 1;
            self.sum += s;
            match s {
                9..=10 => self.promoters += 1,
                7..=8 => self.passives += 1,
                _ => self.detractors += 1,
            }
        }
        if let Some(share) = share {
            self.shift_sum += share;
            self.shifts += 1;
        }
    }

    fn cnps(&self) -> Option<f64> {
        (self.scored > 0).then(|| {
            let raw = 100.0 * (self.promoters - self.detractors) as f64 / self.scored as f64;
            (raw * 10.0).round() / 10.0
        })
    }

    fn mean(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.sum as f64 / self.scored as f64)
    }

    fn mean_shift(&self) -> Option<f64> {
        (self.shifts > 0).then(|| self.shift_sum / self.shifts as f64)
    }
}

/// Each encounter's attributed shift, from every candidate's full history.
fn shares(rows: &[Row]) -> HashMap<i64, f64> {
    let mut by_candidate: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        by_candidate.entry(row.candidate).or_default().push(row);
    }
    let mut shares = HashMap::new();
    for list in by_candidate.values_mut() {
        list.sort_by_key(|r| (r.at, r.id));
        let scored: Vec<usize> = (0..list.len())
            .filter(|&i| list[i].score.is_some())
            .collect();
        for pair in scored.windows(2) {
            let (i, j) = (pair[0], pair[1]);
            let shift = (list[j].score.unwrap() - list[i].score.unwrap()) as f64;
            for row in &list[i + 1..=j] {
                shares.insert(row.id, shift / (j - i) as f64);
            }
        }
    }
    shares
}

fn close(actual: &Value, expected: Option<f64>, tolerance: f64, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: expected null, got {actual}"),
        Some(e) => {
            let a = actual
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: got {actual}, expected {e}"));
            assert!((a - e).abs() <= tolerance, "{what}: got {a}, expected {e}");
        }
    }
}

fn assert_tally(point: &Value, t: &Tally, what: &str) {
    assert_eq!(point["encounters"], t.encounters, "{what}");
    assert_eq!(point["scored"], t.scored, "{what}");
    close(&point["mean_score"], t.mean(), 0.0051, what);
    close(&point["cnps"], t.cnps(), 1e-9, what);
    // The intervals' values are checked against scipy in the Python client
    // suite; here, that each is there exactly when it can be, and holds its
    // figure.
    assert_interval(
        point,
        "mean_score",
        t.mean().filter(|_| t.scored >= 2),
        what,
    );
    // The adjusted-Wald interval is centred on the adjusted figure, which
    // may leave the raw cNPS of a few answers outside it.
    let (low, high) = (&point["cnps_low"], &point["cnps_high"]);
    match t.cnps() {
        None => assert!(low.is_null() && high.is_null(), "{what}: cnps interval"),
        Some(_) => assert!(low.as_f64().unwrap() <= high.as_f64().unwrap(), "{what}"),
    }
}

/// `<figure>_low` and `<figure>_high` are null when `expected` is, and
/// otherwise enclose it (within the rounding of the figures): a t or Welch
/// interval is centred on its figure.
fn assert_interval(body: &Value, figure: &str, expected: Option<f64>, what: &str) {
    let (low, high) = (
        &body[format!("{figure}_low")],
        &body[format!("{figure}_high")],
    );
    match expected {
        None => assert!(
            low.is_null() && high.is_null(),
            "{what}: {figure} has no interval, got {low}..{high}"
        ),
        Some(value) => {
            let (low, high) = (low.as_f64().unwrap(), high.as_f64().unwrap());
            assert!(
                low <= value + 0.051 && value - 0.051 <= high && low <= high,
                "{what}: {figure} {value} outside {low}..{high}"
            );
        }
    }
}

/// Every encounter of the key's organization, page by page, in id order.
pub async fn encounters(api: &ApiClient) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/encounters?limit=500&cursor={c}"),
            None => "/api/v1/encounters?limit=500".to_owned(),
        };
        let page = api.get(&path).await;
        let body = page.assert_status(200);
        for item in body["items"].as_array().unwrap() {
            rows.push(Row {
                id: item["id"].as_i64().unwrap(),
                candidate: item["candidate_id"].as_i64().unwrap(),
                touchpoint: item["touchpoint_id"].as_i64().unwrap(),
                at: item["occurred_at"].as_str().unwrap().parse().unwrap(),
                score: item["score"].as_i64(),
                source: item["source"].as_str().unwrap().to_owned(),
            });
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return rows,
        }
    }
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(date.weekday().num_days_from_monday().into())
}

/// Fetches every encounter and touchpoint through `api` (a key that may
/// read), then asserts that each report (the trend by kind for each bucket
/// length, touchpoint impact and its order, perception shift by kind, and
/// the summary) of each `(from, to)` window equals a recount. Returns the
/// encounters it counted.
pub async fn assert_reports_match_recount(api: &ApiClient, windows: &[(&str, &str)]) -> Vec<Row> {
    let touchpoints = touchpoint_kinds(api).await;
    let rows = encounters(api).await;
    let shares = shares(&rows);
    for &(from, to) in windows {
        let (from_date, to_date): (NaiveDate, NaiveDate) =
            (from.parse().unwrap(), to.parse().unwrap());
        let in_window: Vec<&Row> = rows
            .iter()
            .filter(|r| r.at.date_naive() >= from_date && r.at.date_naive() < to_date)
            .collect();

        // Trend, by kind, for each bucket length.
        for bucket in ["day", "week", "month"] {
            let report = api
                .get(&format!(
                    "{TREND}?from={from}&to={to}&bucket={bucket}&group_by=kind"
                ))
                .await;
            let body = report.assert_status(200);
            let mut expected: BTreeMap<(String, NaiveDate), Tally> = BTreeMap::new();
            for row in &in_window {
                let date = row.at.date_naive();
                let start = match bucket {
                    "day" => date,
                    "week" => monday_of(date),
                    _ => date.with_day(1).unwrap(),
                };
                expected
                    .entry((touchpoints[&row.touchpoint].to_owned(), start))
                    .or_default()
                    .add(row.score, None);
            }
            for series in body["series"].as_array().unwrap() {
                let group = series["group"].as_str().unwrap();
                for point in series["points"].as_array().unwrap() {
                    let start: NaiveDate = point["bucket_start"].as_str().unwrap().parse().unwrap();
                    let tally = expected
                        .remove(&(group.to_owned(), start))
                        .unwrap_or_default();
                    assert_tally(point, &tally, &format!("{bucket} {group} {start}"));
                }
            }
            assert!(
                expected.is_empty(),
                "buckets missing from the report: {expected:?}"
            );
        }

        // Impact.
        let mut expected: BTreeMap<i64, (Tally, BTreeSet<i64>)> = BTreeMap::new();
        for row in &in_window {
            let entry = expected.entry(row.touchpoint).or_default();
            entry.0.add(row.score, shares.get(&row.id).copied());
            entry.1.insert(row.candidate);
        }
        let report = api.get(&format!("{IMPACT}?from={from}&to={to}")).await;
        let listed = impact_rows(report.assert_status(200));
        assert_eq!(listed.len(), expected.len());
        let mut previous: Option<(Option<f64>, i64)> = None;
        for row in &listed {
            let id = row["touchpoint_id"].as_i64().unwrap();
            let (tally, reached) = &expected[&id];
            let what = format!("impact of {id} in {from}..{to}");
            assert_tally(row, tally, &what);
            assert_eq!(row["candidates"], reached.len() as i64, "{what}");
            assert_eq!(row["attributions"], tally.shifts, "{what}");
            close(
                &row["attributed_shift_sum"],
                Some(tally.shift_sum),
                0.0011,
                &what,
            );
            close(
                &row["mean_attributed_shift"],
                tally.mean_shift(),
                0.0011,
                &what,
            );
            let tested = tally.mean_shift().filter(|_| tally.shifts >= 2);
            assert_interval(row, "mean_attributed_shift", tested, &what);
            assert_eq!(
                row["significant"].is_null(),
                tested.is_none(),
                "{what}: a decision exactly where there is a test"
            );
            let key = (tally.mean_shift(), tally.encounters);
            if let Some((mean, encounters)) = previous {
                match (mean, key.0) {
                    (Some(a), Some(b)) => assert!(a < b + 1e-9, "impact order"),
                    (None, Some(_)) => panic!("impact order: null before a value"),
                    _ => {}
                }
                if mean.zip(key.0).is_some_and(|(a, b)| (a - b).abs() < 1e-12) {
                    assert!(encounters >= key.1, "impact tie order");
                }
            }
            previous = Some(key);
        }

        // Perception shift, by kind of the latest scored encounter.
        let mut by_candidate: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
        for row in in_window.iter().filter(|r| r.score.is_some()) {
            by_candidate.entry(row.candidate).or_default().push(row);
        }
        let mut expected: HashMap<&str, Vec<i64>> = HashMap::new();
        for list in by_candidate.values_mut() {
            if list.len() < 2 {
                continue;
            }
            list.sort_by_key(|r| (r.at, r.id));
            let (first, last) = (list[0], list[list.len() - 1]);
            expected
                .entry(touchpoints[&last.touchpoint].as_str())
                .or_default()
                .push(last.score.unwrap() - first.score.unwrap());
        }
        let report = api
            .get(&format!("{SHIFT}?from={from}&to={to}&group_by=kind"))
            .await;
        for group in report.assert_status(200)["groups"].as_array().unwrap() {
            let shifts = expected
                .remove(group["group"].as_str().unwrap())
                .unwrap_or_default();
            assert_eq!(group["candidates"], shifts.len() as i64);
            assert_eq!(
                group["improved"],
                shifts.iter().filter(|s| **s > 0).count() as i64
            );
            assert_eq!(
                group["declined"],
                shifts.iter().filter(|s| **s < 0).count() as i64
            );
            let mean = (!shifts.is_empty())
                .then(|| shifts.iter().sum::<i64>() as f64 / shifts.len() as f64);
            close(&group["mean_shift"], mean, 0.0051, "mean shift");
            let tested = mean.filter(|_| shifts.len() >= 2);
            assert_interval(group, "mean_shift", tested, "mean shift");
            for bin in group["histogram"].as_array().unwrap() {
                let shift = bin["shift"].as_i64().unwrap();
                assert_eq!(
                    bin["candidates"],
                    shifts.iter().filter(|s| **s == shift).count() as i64
                );
            }
        }
        assert!(expected.is_empty());

        // Summary.
        let mut total = Tally::default();
        for row in &in_window {
            total.add(row.score, None);
        }
        let report = api.get(&format!("{SUMMARY}?from={from}&to={to}")).await;
        let body = report.assert_status(200);
        let reached: BTreeSet<i64> = in_window.iter().map(|r| r.candidate).collect();
        assert_eq!(body["candidates"], reached.len() as i64);
        assert_tally(body, &total, "summary");

        // Perception gap, by kind and source.
        let mut expected: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for row in &in_window {
            expected
                .entry((touchpoints[&row.touchpoint].clone(), row.source.clone()))
                .or_default()
                .add(row.score, None);
        }
        let report = api
            .get(&format!("{GAP}?from={from}&to={to}&group_by=kind"))
            .await;
        for group in report.assert_status(200)["groups"].as_array().unwrap() {
            let kind = group["group"].as_str().unwrap();
            let mut means = HashMap::new();
            for figures in group["sources"].as_array().unwrap() {
                let source = figures["source"].as_str().unwrap();
                let tally = expected
                    .remove(&(kind.to_owned(), source.to_owned()))
                    .unwrap_or_default();
                assert_tally(figures, &tally, &format!("gap of {kind}, {source}"));
                means.insert(
                    source.to_owned(),
                    tally.mean().filter(|_| tally.scored >= 2),
                );
            }
            let gap = means["recruiter_observation"]
                .zip(means["candidate_survey"])
                .map(|(recruiters, candidates)| recruiters - candidates);
            close(
                &group["mean_score_gap"],
                gap,
                0.0051,
                &format!("gap of {kind}"),
            );
            assert_interval(group, "mean_score_gap", gap, &format!("gap of {kind}"));
        }
        assert!(
            expected.is_empty(),
            "groups missing from the gap: {expected:?}"
        );
    }
    rows
}
