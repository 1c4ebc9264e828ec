//! `oncall store init|status|sync`: the team's store.

use super::Setup;
use crate::cli::StoreCommand;
use crate::store::{StoreError, Team, postgres};
use crate::view::{print_json, print_out};
use serde_json::json;

/// A store that does not answer: the exit code of a backend that does not answer.
const EXIT_UNREACHABLE: i32 = 3;

pub async fn run(setup: &Setup, command: StoreCommand) -> anyhow::Result<i32> {
    let Some(settings) = setup.store_settings()? else {
        anyhow::bail!(
            "no store configured: give --store postgres://ROLE@HOST:PORT/DATABASE (the password, if any, after ROLE and a colon), set ONCALL_STORE, or write store: in the config file"
        );
    };
    match command {
        StoreCommand::Init => init(setup, settings).await,
        StoreCommand::Status => status(setup, settings).await,
        StoreCommand::Sync => sync(setup, settings).await,
    }
}

async fn init(setup: &Setup, settings: postgres::Settings) -> anyhow::Result<i32> {
    let mut pg = settings.connect().await?;
    let (before, after) = pg.migrate().await?;
    let what = match before {
        None => format!("schema created (version {after})"),
        Some(v) if v == after => format!("schema already at version {after}"),
        Some(v) => format!("schema migrated from version {v} to {after}"),
    };
    if setup.json() {
        print_json(&json!({ "store": settings.shown, "from": before, "schema": after }))?;
    } else {
        print_out(&format!("{}: {what}\n", settings.shown))?;
    }
    Ok(0)
}

async fn status(setup: &Setup, settings: postgres::Settings) -> anyhow::Result<i32> {
    let shown = settings.shown.clone();
    let (answers, schema, problem) = match settings.connect().await {
        Ok(pg) => match pg.version().await {
            Ok(version) => (true, version, None),
            Err(err) => (false, None, Some(err.to_string())),
        },
        Err(err) => (false, None, Some(err.to_string())),
    };
    let team = Team {
        local: setup.store(),
        settings: Some(settings),
        shared: None,
    };
    let unshared = team.unshared();
    let known = postgres::SCHEMA_VERSION;
    if setup.json() {
        print_json(&json!({
            "store": shown,
            "answers": answers,
            "schema": schema,
            "schema_known": known,
            "unshared": unshared,
            "error": problem.as_deref().map(|e| crate::redact::global().text(e)),
        }))?;
    } else {
        let schema_line = match schema {
            Some(v) if v > known => {
                format!("{v}, newer than this oncall knows ({known}): upgrade oncall")
            }
            Some(v) if v < known => {
                format!("{v}; this oncall uses {known}: run `oncall store init`")
            }
            Some(v) => v.to_string(),
            None if answers => "none: run `oncall store init`".to_string(),
            None => "unknown".to_string(),
        };
        let answer_line = match &problem {
            None => "yes".to_string(),
            Some(why) => format!("no: {}", crate::redact::global().text(why)),
        };
        print_out(&format!(
            "store     {shown}\nanswers   {answer_line}\nschema    {schema_line}\nunshared  {unshared} local event(s) wait to be shared\n"
        ))?;
    }
    Ok(if answers { 0 } else { EXIT_UNREACHABLE })
}

async fn sync(setup: &Setup, settings: postgres::Settings) -> anyhow::Result<i32> {
    let pg = match settings.connect().await {
        Ok(pg) => pg,
        Err(err @ StoreError::Unreachable { .. }) => {
            eprintln!("error: {err}; nothing was shared, the events wait in the local timelines");
            return Ok(EXIT_UNREACHABLE);
        }
        Err(err) => return Err(err.into()),
    };
    pg.check().await?;
    let mut team = Team {
        local: setup.store(),
        settings: Some(settings),
        shared: Some(pg),
    };
    let sent = match team.sync().await {
        Ok(sent) => sent,
        Err(err @ StoreError::Unreachable { .. }) => {
            eprintln!("error: {err}; what was not shared waits in the local timelines");
            return Ok(EXIT_UNREACHABLE);
        }
        Err(err) => return Err(err.into()),
    };
    let left = team.unshared();
    if setup.json() {
        print_json(&json!({ "shared": sent, "unshared": left }))?;
    } else {
        print_out(&format!("shared {sent} event(s); {left} wait\n"))?;
    }
    Ok(0)
}
