//! One file per subcommand, and what they share: settings, the catalog, output.

pub mod alerts;
pub mod approve;
pub mod completions;
pub mod doctor;
pub mod drills;
pub mod follow;
pub mod import;
pub mod incidents;
pub mod list;
pub mod message;
pub mod note;
pub mod report;
pub mod resume;
pub mod run;
pub mod scenario;
pub mod show;
pub mod store;
pub mod test;
pub mod timeline;
pub mod validate;

use crate::cli::Global;
use crate::config::Config;
use crate::runbook::{self, Catalog};
use std::path::PathBuf;

/// What every command starts from.
pub struct Setup {
    pub global: Global,
    pub search: Vec<PathBuf>,
}

impl Setup {
    pub fn new(mut global: Global) -> Setup {
        // ONCALL_ENDPOINT holds several NAME=URL separated by blanks, which no URL contains
        // (a comma may be in one).
        global.endpoints = global
            .endpoints
            .iter()
            .flat_map(|value| value.split_whitespace())
            .map(str::to_string)
            .collect();
        // Passwords in the URLs given on the command line are masked wherever they appear.
        for url in [
            &global.prometheus_url,
            &global.alertmanager_url,
            &global.postgres_url,
            &global.redis_url,
            &global.nats_url,
            &global.store,
        ]
        .into_iter()
        .flatten()
        {
            crate::redact::register_url(url);
        }
        for endpoint in &global.endpoints {
            if let Some((_, url)) = endpoint.split_once('=') {
                crate::redact::register_url(url);
            }
        }
        let search = runbook::search_dirs(&global.runbook_path);
        Setup { global, search }
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::load(&self.search)
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        let config = Config::load(self.global.config.as_ref())?;
        for url in config.endpoints.values().chain(&config.store) {
            crate::redact::register_url(url);
        }
        Ok(config)
    }

    /// The team's store as configured (flag, variable, config file), not yet reached.
    pub fn store_settings(&self) -> anyhow::Result<Option<crate::store::postgres::Settings>> {
        let from_file = match &self.global.store {
            Some(_) => None,
            None => self.config()?.store,
        };
        Ok(crate::store::configured(
            self.global.store.as_deref(),
            from_file.as_deref(),
        )?)
    }

    /// The local timelines and the team's store, reached (what waits locally is shared).
    pub async fn team(&self) -> anyhow::Result<crate::store::Team> {
        Ok(crate::store::Team::reach(self.store(), self.store_settings()?).await?)
    }

    pub fn store(&self) -> crate::timeline::Store {
        crate::timeline::Store::new(self.global.state_dir.clone())
    }

    /// Where results on stdout are drawn: its width and colour.
    pub fn screen(&self) -> crate::view::tables::Screen {
        crate::view::tables::Screen {
            width: crate::view::Fit::new(self.global.wide, false).columns(),
            color: crate::view::use_color(self.global.color, crate::view::stdout_is_terminal()),
        }
    }

    pub fn json(&self) -> bool {
        self.global.output == crate::cli::Output::Json
    }
}
