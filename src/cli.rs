//! The subcommands: serve, migrate, openapi, org, key, demo.

use anyhow::Context;

use crate::{
    api,
    config::{Cli, Command, DemoCommand, KeyCommand, OrgCommand, Settings},
    db,
    domain::{
        audit::Actor,
        auth::role_name,
        demo::{self, DemoOptions},
        keys, organizations,
    },
    startup::{shutdown_signal, Application},
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from(&cli.global);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&settings).await?;
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let db = db::connect(&settings.database).await?;
            db::migrate(&db).await?;
            eprintln!("migrations applied");
        }
        Command::Openapi => print!("{}", api::openapi_document()),
        Command::Org(OrgCommand::Create { slug, name }) => {
            let db = connected(&settings).await?;
            let org = organizations::create(&db, &Actor::COMMAND_LINE, &slug, &name).await?;
            eprintln!(
                "created organization {} ({}), id {}",
                org.slug, org.name, org.id
            );
        }
        Command::Key(KeyCommand::Create { org, role, name }) => {
            let db = connected(&settings).await?;
            let organization = organizations::find_by_slug(&db, &org)
                .await?
                .with_context(|| format!("no organization with slug {org:?}"))?;
            let role = entity::enums::Role::from(api::vocabulary::Role::from(role));
            let name = name.unwrap_or_else(|| format!("{} key", role_name(role)));
            let created =
                keys::create(&db, &Actor::COMMAND_LINE, organization.id, role, &name).await?;
            eprintln!(
                "created {} key {} ({}) for {}; the token is shown only now",
                role_name(role),
                created.key.id,
                created.key.token_prefix,
                organization.slug
            );
            println!("{}", created.token);
        }
        Command::Demo(DemoCommand::Seed {
            org,
            candidates,
            seed,
        }) => {
            let db = connected(&settings).await?;
            let started = std::time::Instant::now();
            let seeded = demo::seed(&db, &org, &DemoOptions { candidates, seed }).await?;
            eprintln!(
                "seeded {org}: {} touchpoints, {} candidates, {} encounters in {:.1}s",
                seeded.touchpoints,
                seeded.candidates,
                seeded.encounters,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// A connection with the schema up to date, for the admin commands.
async fn connected(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = db::connect(&settings.database).await?;
    db::migrate(&db).await?;
    Ok(db)
}
