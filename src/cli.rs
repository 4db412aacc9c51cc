//! The subcommands: serve, migrate, openapi, org, key, demo.

use anyhow::Context;

use crate::demo::{self, DemoOptions};
use crate::{
    api,
    config::{
        Cli, CliRole, Command, DemoCommand, KeyCommand, OrgCommand, RetentionCommand, Settings,
    },
    db,
    domain::{
        self, access::auth::role_name, access::keys, organizations, privacy::audit::Actor,
        privacy::retention,
    },
    startup::{shutdown_signal, Application},
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from(&cli.global);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Openapi => {
            print!("{}", api::openapi_document());
            Ok(())
        }
        Command::Org(OrgCommand::Create { slug, name }) => {
            create_org(&settings, &slug, &name).await
        }
        Command::Key(KeyCommand::Create {
            org,
            role,
            name,
            expires_in_days,
        }) => create_key(&settings, &org, role, name, expires_in_days).await,
        Command::Demo(DemoCommand::Seed {
            org,
            candidates,
            seed,
        }) => seed_demo(&settings, &org, DemoOptions { candidates, seed }).await,
        Command::Retention(RetentionCommand::Run { dry_run }) => {
            run_retention(&settings, dry_run).await
        }
    }
}

/// `serve` (also the default): the HTTP service, until a shutdown signal.
async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// `migrate`: brings the schema up to date, and nothing else.
async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = db::connect(&settings.database).await?;
    crate::startup::migrate(&db).await?;
    eprintln!("migrations applied");
    Ok(())
}

/// `org create`.
async fn create_org(settings: &Settings, slug: &str, name: &str) -> anyhow::Result<()> {
    let db = connected(settings).await?;
    let org = organizations::create(&db, &Actor::COMMAND_LINE, slug, name).await?;
    eprintln!(
        "created organization {} ({}), id {}",
        org.slug, org.name, org.id
    );
    Ok(())
}

/// `key create`: the token goes to stdout, alone, for a script to capture;
/// everything else to stderr.
async fn create_key(
    settings: &Settings,
    org: &str,
    role: CliRole,
    name: Option<String>,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let db = connected(settings).await?;
    let organization = organizations::find_by_slug(&db, org)
        .await?
        .with_context(|| format!("no organization with slug {org:?}"))?;
    let role = entity::enums::Role::from(role);
    let name = name.unwrap_or_else(|| format!("{} key", role_name(role)));
    let expires_at =
        expires_in_days.map(|days| domain::now() + chrono::Duration::days(i64::from(days)));
    let created = keys::create(
        &db,
        &Actor::COMMAND_LINE,
        organization.id,
        role,
        &name,
        expires_at,
    )
    .await?;
    eprintln!(
        "created {} key {} ({}) for {}; the token is shown only now",
        role_name(role),
        created.key.id,
        created.key.token_prefix,
        organization.slug
    );
    println!("{}", created.token);
    Ok(())
}

/// `demo seed`.
async fn seed_demo(settings: &Settings, org: &str, options: DemoOptions) -> anyhow::Result<()> {
    let db = connected(settings).await?;
    let started = std::time::Instant::now();
    let seeded = demo::seed(&db, org, &options).await?;
    eprintln!(
        "seeded {org}: {} touchpoints, {} candidates, {} encounters in {:.1}s",
        seeded.touchpoints,
        seeded.candidates,
        seeded.encounters,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `retention run [--dry-run]`: erases (or, dry, lists) the candidates
/// past the retention policy.
async fn run_retention(settings: &Settings, dry_run: bool) -> anyhow::Result<()> {
    let policy = settings.retention.context(
        "no retention policy: set --retention-days (or RETENTION_DAYS) to the days \
         candidate data is kept after their latest encounter",
    )?;
    let db = connected(settings).await?;
    let now = domain::now();
    let candidates = if dry_run {
        retention::find_due(&db, &policy, now).await?
    } else {
        retention::enforce(&db, &policy, now, &api::personal_data::StoredAnswerRedactor).await?
    };
    // One line per candidate, tab-separated, for review or a script.
    println!("organization\tcandidate_id\texternal_ref\tlast_activity");
    for due in &candidates {
        let external_ref = if dry_run {
            due.external_ref.as_str()
        } else {
            "(erased)"
        };
        println!(
            "{}\t{}\t{}\t{}",
            due.organization_id,
            due.candidate_id,
            external_ref,
            due.last_activity.to_rfc3339()
        );
    }
    eprintln!(
        "{} {} candidates whose latest encounter is before {} ({} days)",
        if dry_run { "would erase" } else { "erased" },
        candidates.len(),
        policy.cutoff(now).to_rfc3339(),
        policy.days
    );
    Ok(())
}

/// A connection with the schema up to date, for the admin commands.
async fn connected(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = db::connect(&settings.database).await?;
    crate::startup::migrate(&db).await?;
    Ok(db)
}
