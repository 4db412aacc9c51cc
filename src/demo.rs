//! Demo data: a realistic catalog and a year of candidate journeys, so a
//! newcomer sees meaningful reports and charts at once. Deterministic: the
//! same seed on the same day writes the same data.
//!
//! Every touchpoint has an effect on perception; each candidate starts with
//! a baseline score and walks the journey (awareness to onboarding), many
//! dropping out on the way. Each encounter moves their perception by the
//! touchpoint's effect plus noise, and about 60% of encounters carry a score.

use chrono::{DateTime, Duration, DurationRound, Utc};
use entity::enums::{Channel, Kind, Role, Source, Stage};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::domain::{
    access::keys,
    candidates::{self, NewCandidate},
    catalog::{self, NewTouchpoint},
    encounters::ingest::{self, CandidateRef, EncounterInput, TouchpointRef, BATCH_MAX},
    organizations,
    privacy::audit::{Actor, KeyActor},
    DomainError, DomainResult,
};

/// What to seed.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub candidates: usize,
    pub seed: u64,
}

/// What was seeded.
#[derive(Debug, PartialEq, Eq)]
pub struct Seeded {
    pub touchpoints: usize,
    pub candidates: usize,
    pub encounters: usize,
}

/// A touchpoint of the demo catalog and its mean effect on a 0-10 score.
struct DemoTouchpoint {
    name: &'static str,
    kind: Kind,
    channel: Channel,
    stage: Stage,
    effect: f64,
}

const fn tp(
    name: &'static str,
    kind: Kind,
    channel: Channel,
    stage: Stage,
    effect: f64,
) -> DemoTouchpoint {
    DemoTouchpoint {
        name,
        kind,
        channel,
        stage,
        effect,
    }
}

use Channel as C;
use Kind as K;
use Stage as S;

const CATALOG: &[DemoTouchpoint] = &[
    tp(
        "Careers site",
        K::EmployerCreated,
        C::CareersSite,
        S::Awareness,
        0.3,
    ),
    tp(
        "Job ad on a job board",
        K::EmployerCreated,
        C::JobBoard,
        S::Awareness,
        0.0,
    ),
    tp(
        "Career-fair booth",
        K::EmployerCreated,
        C::Event,
        S::Awareness,
        0.6,
    ),
    tp(
        "Recruiter outreach e-mail",
        K::EmployerCreated,
        C::Email,
        S::Consideration,
        0.4,
    ),
    tp(
        "Application form",
        K::EmployerCreated,
        C::CareersSite,
        S::Application,
        -0.6,
    ),
    tp(
        "Phone screen",
        K::EmployerCreated,
        C::Phone,
        S::Screening,
        0.5,
    ),
    tp(
        "Technical assessment",
        K::EmployerCreated,
        C::Assessment,
        S::Screening,
        -0.4,
    ),
    tp(
        "Hiring-manager interview",
        K::EmployerCreated,
        C::Interview,
        S::Interview,
        0.8,
    ),
    tp(
        "Team interview on site",
        K::EmployerCreated,
        C::Interview,
        S::Interview,
        1.0,
    ),
    tp("Offer call", K::EmployerCreated, C::Phone, S::Offer, 1.5),
    tp(
        "Onboarding week",
        K::EmployerCreated,
        C::Other,
        S::Onboarding,
        0.8,
    ),
    tp(
        "Employee reviews on a review site",
        K::True,
        C::ReviewSite,
        S::Consideration,
        -0.8,
    ),
    tp(
        "A friend's story",
        K::True,
        C::WordOfMouth,
        S::Consideration,
        0.4,
    ),
    tp("Press coverage", K::True, C::Press, S::Awareness, -0.3),
    tp(
        "Forum thread about the company",
        K::True,
        C::SocialMedia,
        S::Consideration,
        -1.0,
    ),
    tp(
        "Former employee's post",
        K::True,
        C::SocialMedia,
        S::Consideration,
        -0.5,
    ),
    tp(
        "Interviewer no-show",
        K::Unexpected,
        C::Interview,
        S::Interview,
        -3.0,
    ),
    tp(
        "Two weeks without feedback",
        K::Unexpected,
        C::Email,
        S::Interview,
        -1.8,
    ),
    tp(
        "Chance meeting with an employee",
        K::Unexpected,
        C::WordOfMouth,
        S::Consideration,
        1.2,
    ),
    tp(
        "Viral post about the office",
        K::Unexpected,
        C::SocialMedia,
        S::Awareness,
        0.7,
    ),
    tp(
        "Experience as a customer",
        K::Unexpected,
        C::Other,
        S::Awareness,
        -0.2,
    ),
];

const FIRST_NAMES: &[&str] = &[
    "Lan", "Minh", "Anna", "Lukas", "Sofia", "Mateo", "Aisha", "Kenji", "Chloé", "Omar", "Priya",
    "Jonas", "Elena", "Tomás", "Mei", "Noah", "Fatima", "Ivan", "Zoe", "Arjun",
];
const LAST_NAMES: &[&str] = &[
    "Nguyen", "Tran", "Müller", "Rossi", "García", "Khan", "Sato", "Dubois", "Haddad", "Patel",
    "Schmidt", "Novak", "Silva", "Chen", "Okafor", "Kowalski", "Larsen", "Ivanova", "Moreau",
    "Singh",
];

/// The journey is this many days at most, so every journey starts within
/// the year and most end before today.
const JOURNEY_DAYS: i64 = 90;

/// Fills an organization (created if it does not exist) with the demo
/// catalog, `options.candidates` candidates and their encounters over the
/// last twelve months. Refuses an organization that already has candidates.
pub async fn seed(
    db: &DatabaseConnection,
    slug: &str,
    options: &DemoOptions,
) -> DomainResult<Seeded> {
    let organization = match organizations::find_by_slug(db, slug).await? {
        Some(organization) => organization,
        None => {
            organizations::create(db, &Actor::DEMO_SEED, slug, &format!("{slug} (demo)")).await?
        }
    };
    let existing = entity::candidate::Entity::find()
        .filter(sea_orm::ColumnTrait::eq(
            &entity::candidate::Column::OrganizationId,
            organization.id,
        ))
        .count(db)
        .await?;
    if existing > 0 {
        return Err(DomainError::AlreadyExists {
            field: "org",
            message: format!(
                "organization {slug} already has {existing} candidates; \
                 demo data goes into an empty one"
            ),
        });
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let today = Utc::now()
        .duration_trunc(Duration::days(1))
        .expect("a day fits");

    let txn = crate::domain::begin_write(db).await?;
    let mut touchpoint_ids = Vec::with_capacity(CATALOG.len());
    for item in CATALOG {
        let created = catalog::create(
            &txn,
            &Actor::DEMO_SEED,
            organization.id,
            NewTouchpoint {
                name: item.name.to_owned(),
                kind: item.kind,
                channel: item.channel,
                stage: item.stage,
                description: None,
            },
        )
        .await?;
        touchpoint_ids.push(created.id);
    }
    let journeys: Vec<Journey> = (0..options.candidates)
        .map(|_| journey(&mut rng, today))
        .collect();
    let mut inputs = Vec::new();
    for (number, journey) in journeys.iter().enumerate() {
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let candidate = candidates::create(
            &txn,
            &Actor::DEMO_SEED,
            organization.id,
            NewCandidate {
                external_ref: format!("DEMO-{:05}", number + 1),
                display_name: Some(format!("{first} {last}")),
                email: None,
                stage: journey.furthest_stage,
            },
        )
        .await?;
        for step in &journey.steps {
            inputs.push(EncounterInput {
                candidate: CandidateRef::Id(candidate.id),
                touchpoint: TouchpointRef::Id(touchpoint_ids[step.touchpoint]),
                occurred_at: step.occurred_at,
                source: step.source,
                score: step.score,
                note: None,
            });
        }
    }
    // The encounters are recorded by a key of their own, revoked at once:
    // it says where the data came from and can never be used.
    let key = keys::create(
        &txn,
        &Actor::DEMO_SEED,
        organization.id,
        Role::Recruiter,
        "demo data",
        None,
    )
    .await?;
    keys::revoke(&txn, &Actor::DEMO_SEED, organization.id, key.key.id).await?;
    txn.commit().await?;

    let recorder = KeyActor {
        key_id: key.key.id,
        key_name: key.key.name,
    };
    let encounters = inputs.len();
    let mut remaining = inputs.into_iter().peekable();
    while remaining.peek().is_some() {
        let chunk: Vec<EncounterInput> = remaining.by_ref().take(BATCH_MAX).collect();
        ingest::record_all(db, organization.id, &recorder, chunk, None).await?;
    }
    Ok(Seeded {
        touchpoints: CATALOG.len(),
        candidates: journeys.len(),
        encounters,
    })
}

struct Step {
    touchpoint: usize,
    occurred_at: DateTime<Utc>,
    score: Option<i32>,
    source: Source,
}

struct Journey {
    steps: Vec<Step>,
    furthest_stage: Stage,
}

/// Catalog indexes by stage, for the journey to pick from.
fn at_stage(stage: Stage, kind: Option<Kind>) -> Vec<usize> {
    CATALOG
        .iter()
        .enumerate()
        .filter(|(_, t)| t.stage == stage && kind.is_none_or(|k| t.kind == k))
        .map(|(index, _)| index)
        .collect()
}

fn journey(rng: &mut StdRng, today: DateTime<Utc>) -> Journey {
    let start = today - Duration::days(rng.random_range(1..365));
    let mut perception = 6.5 + (rng.random::<f64>() + rng.random::<f64>() - 1.0) * 3.0;
    let mut at = start;
    let mut steps = Vec::new();
    let mut furthest_stage = Stage::Awareness;
    let mut meet = |rng: &mut StdRng, touchpoint: usize, steps: &mut Vec<Step>| {
        at += Duration::hours(rng.random_range(12..(24 * 9)));
        if at >= today || at - start > Duration::days(JOURNEY_DAYS) {
            return false;
        }
        perception = (perception + CATALOG[touchpoint].effect + rng.random_range(-0.8..0.8))
            .clamp(0.0, 10.0);
        let survey = rng.random_bool(0.6);
        steps.push(Step {
            touchpoint,
            occurred_at: at,
            score: survey.then(|| perception.round() as i32),
            source: if survey {
                Source::CandidateSurvey
            } else {
                Source::RecruiterObservation
            },
        });
        true
    };
    let pick = |rng: &mut StdRng, options: &[usize]| options[rng.random_range(0..options.len())];

    // Before applying: one or two employer touchpoints, often something the
    // employer does not control, sometimes chance.
    let awareness = at_stage(Stage::Awareness, None);
    let consideration = at_stage(Stage::Consideration, None);
    for _ in 0..rng.random_range(1..=2) {
        let touchpoint = pick(rng, &awareness);
        if !meet(rng, touchpoint, &mut steps) {
            return Journey {
                steps,
                furthest_stage,
            };
        }
    }
    for _ in 0..rng.random_range(0..=2) {
        let touchpoint = pick(rng, &consideration);
        if !meet(rng, touchpoint, &mut steps) {
            return Journey {
                steps,
                furthest_stage,
            };
        }
        furthest_stage = Stage::Consideration;
    }
    // The funnel: each stage's employer touchpoints, with drop-outs, and the
    // unexpected ones of the interview stage now and then.
    let funnel = [
        (Stage::Application, 0.7),
        (Stage::Screening, 0.75),
        (Stage::Interview, 0.6),
        (Stage::Offer, 0.35),
        (Stage::Onboarding, 0.8),
    ];
    for (stage, goes_on) in funnel {
        if !rng.random_bool(goes_on) {
            break;
        }
        let planned = at_stage(stage, Some(Kind::EmployerCreated));
        let meetings = if stage == Stage::Interview || stage == Stage::Screening {
            rng.random_range(1..=2)
        } else {
            1
        };
        for _ in 0..meetings {
            let touchpoint = pick(rng, &planned);
            if !meet(rng, touchpoint, &mut steps) {
                return Journey {
                    steps,
                    furthest_stage,
                };
            }
            furthest_stage = stage;
        }
        for surprise in at_stage(stage, Some(Kind::Unexpected)) {
            if rng.random_bool(0.12) && !meet(rng, surprise, &mut steps) {
                return Journey {
                    steps,
                    furthest_stage,
                };
            }
        }
    }
    Journey {
        steps,
        furthest_stage,
    }
}
