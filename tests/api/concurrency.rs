//! Many writers at once: 64 clients writing for 10 seconds get no server
//! error and no "database is locked", and every acknowledged write is there.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;

use crate::helpers::{spawn_app, MACHINE_LOAD};

const WRITERS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    requests: u64,
    encounters: u64,
    candidates: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_writers_for_ten_seconds() {
    let _alone = MACHINE_LOAD.lock().await;
    let app = std::sync::Arc::new(spawn_app().await);
    let mut touchpoints = Vec::new();
    for n in 0..6 {
        touchpoints.push(
            app.touchpoint(
                &format!("T{n}"),
                "employer_created",
                "interview",
                "interview",
            )
            .await,
        );
    }
    let mut candidates = Vec::new();
    for n in 0..20 {
        candidates.push(app.candidate(&format!("ATS-{n}")).await);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let app = app.clone();
        let (touchpoints, candidates) = (touchpoints.clone(), candidates.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(writer as u64);
            let mut tally = Tally::default();
            let mut mine: Vec<i64> = Vec::new();
            let mut n = 0;
            while started.elapsed() < RUN_FOR {
                n += 1;
                let encounter = |rng: &mut StdRng| {
                    json!({
                        "candidate_id": candidates[rng.random_range(0..candidates.len())],
                        "touchpoint_id": touchpoints[rng.random_range(0..touchpoints.len())],
                        "occurred_at": format!("2026-0{}-1{}T10:00:00Z", rng.random_range(1..=9), rng.random_range(0..=9)),
                        "score": rng.random_range(0..=10),
                    })
                };
                let reply = match rng.random_range(0..20) {
                    0 => {
                        let reply = app
                            .post(
                                "/api/v1/candidates",
                                &app.recruiter,
                                json!({"external_ref": format!("W{writer}-{n}")}),
                            )
                            .await;
                        tally.candidates += u64::from(reply.status == 201);
                        reply
                    }
                    1 if !mine.is_empty() => {
                        let id = mine[rng.random_range(0..mine.len())];
                        app.patch(
                            &format!("/api/v1/encounters/{id}"),
                            &app.recruiter,
                            json!({"score": rng.random_range(0..=10)}),
                        )
                        .await
                    }
                    2 => {
                        let items: Vec<_> = (0..5).map(|_| encounter(&mut rng)).collect();
                        let reply = app
                            .post("/api/v1/encounters/batch", &app.recruiter, json!(items))
                            .await;
                        if reply.status == 201 {
                            tally.encounters += 5;
                        }
                        reply
                    }
                    _ => {
                        let reply = app
                            .post("/api/v1/encounters", &app.recruiter, encounter(&mut rng))
                            .await;
                        if reply.status == 201 {
                            tally.encounters += 1;
                            mine.push(reply.body["id"].as_i64().unwrap());
                        }
                        reply
                    }
                };
                tally.requests += 1;
                let text = reply.body.to_string();
                assert!(
                    !reply.status.is_server_error(),
                    "writer {writer}: {} {text}",
                    reply.status
                );
                assert!(
                    !text.contains("locked") && !text.contains("busy"),
                    "writer {writer}: {text}"
                );
                assert!(reply.status.is_success(), "writer {writer}: {text}");
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        let tally = tally.expect("writer finished");
        total.requests += tally.requests;
        total.encounters += tally.encounters;
        total.candidates += tally.candidates;
    }
    eprintln!(
        "{WRITERS} writers made {} requests in {:.1}s",
        total.requests,
        started.elapsed().as_secs_f64()
    );
    assert!(total.encounters > 0);
    assert_eq!(app.count("encounters").await as u64, total.encounters);
    assert_eq!(app.count("candidates").await as u64, 20 + total.candidates);
}
