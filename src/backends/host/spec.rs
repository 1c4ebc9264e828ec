//! The host kinds: what each says in a runbook, how it is checked, read and planned.

use crate::backends::kinds::{ActionSpec, CheckSpec, renderer};
use crate::backends::reading::Reading;
use crate::backends::{BackendError, Live, PlanContext, Prepared, Request, duration};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{S, bounds};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub paths: Vec<S<String>>,
}

/// `memory: {}`: used and available memory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {}

/// `load: {}`: the load averages beside the number of CPUs, and CPU use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSize {
    pub path: S<String>,
}

/// sha256 of files against a manifest in `sha256sum` format (`<hex>  <path>` per line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksums {
    pub manifest: S<String>,
    /// Folder the manifest's paths are relative to (default: the manifest's folder).
    #[serde(default)]
    pub root: Option<S<String>>,
}

/// Lines of log files that match a pattern (`grep ERROR /var/log/app/*.log | tail -20`): the
/// value is how many match; the latest `keep` (default 20) are kept, each with its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFiles {
    /// Files; `*` and `?` only in a path's last part: `/var/log/vid-bench/*.log`.
    pub paths: Vec<S<String>>,
    /// A regular expression; `.` for every line.
    pub matches: S<String>,
    #[serde(default)]
    pub keep: Option<S<usize>>,
}

/// A TCP connect with its latency: `host:port`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcp {
    pub address: S<String>,
}

/// Delete the files in `dir` whose names match `pattern` (a glob: `vid-bench-*`) and that are
/// older than `older_than`; with no pattern, everything in `dir` (clearing a cache).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteFiles {
    pub dir: S<String>,
    #[serde(default)]
    pub pattern: Option<S<String>>,
    #[serde(default)]
    pub older_than: Option<S<String>>,
}

/// A kind's `paths`: at least one, each a valid template.
fn paths(v: &mut Validator, id: &S<String>, paths: &[S<String>], kind: &str, example: &str) {
    if paths.is_empty() {
        v.problem(
            id,
            format!("`{kind}` needs at least one path"),
            Some(example.into()),
        );
    }
    v.templates(paths, "field");
}

impl CheckSpec for Disk {
    const BACKEND: &'static str = "host";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        paths(
            v,
            id,
            &self.paths,
            "disk",
            "disk: { paths: [\"/\", \"/data/models\"] }",
        );
    }

    async fn read(&self, _live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::disk(self, &renderer(ctx))
    }
}

impl CheckSpec for Memory {
    const BACKEND: &'static str = "host";

    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn read(&self, _live: &Live, _ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        Ok(super::memory()?)
    }
}

impl CheckSpec for Load {
    const BACKEND: &'static str = "host";

    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn read(&self, _live: &Live, _ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        Ok(super::load().await?)
    }
}

impl CheckSpec for DirSize {
    const BACKEND: &'static str = "host";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates([&self.path], "field");
    }

    async fn read(&self, _live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        Ok(super::dir_size(&expr::render(&self.path.value, ctx)?)?)
    }
}

impl CheckSpec for LogFiles {
    const BACKEND: &'static str = "host";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        paths(
            v,
            id,
            &self.paths,
            "log_files",
            "log_files: { paths: [\"/var/log/app/*.log\"], matches: ERROR }",
        );
        for path in &self.paths {
            let (dir, _) = path.value.rsplit_once('/').unwrap_or_default();
            if dir.contains(['*', '?']) {
                v.problem(
                    path,
                    format!("'{}' has a wildcard in a folder's name", path.value),
                    Some(
                        "wildcards (* and ?) may stand only in the file's name: /var/log/app/*.log"
                            .into(),
                    ),
                );
            }
        }
        v.regex(&self.matches);
        v.count(self.keep.as_ref(), "`keep`", 1..=crate::spec::MAX_ROWS);
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| crate::backends::kinds::fill(&p.value, ctx))
            .collect();
        Some(format!(
            "lines of {} matching /{}/",
            paths.join(", "),
            self.matches.value
        ))
    }

    async fn read(
        &self,
        _live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let render = renderer(ctx);
        let paths = self
            .paths
            .iter()
            .map(|p| render(&p.value))
            .collect::<Result<Vec<_>, _>>()?;
        let pattern = regex::Regex::new(&self.matches.value)
            .map_err(|_| super::Error::Pattern(self.matches.value.clone()))?;
        let keep = self.keep.as_ref().map_or(super::LOG_LINES, |k| k.value);
        let what = paths.join(", ");
        // Files are read on a thread of their own, so a slow disk cannot hold the run.
        let read = tokio::task::spawn_blocking(move || super::log_files(&paths, &pattern, keep));
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(reading)) => Ok(reading?),
            Ok(Err(_)) | Err(_) => Err(super::Error::TooSlow {
                what,
                after: timeout,
            }
            .into()),
        }
    }
}

impl CheckSpec for Checksums {
    const BACKEND: &'static str = "host";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates([&self.manifest].into_iter().chain(&self.root), "field");
    }

    async fn read(&self, _live: &Live, ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        super::checksums(self, &renderer(ctx))
    }
}

impl CheckSpec for Tcp {
    const BACKEND: &'static str = "host";

    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        v.templates([&self.address], "field");
    }

    async fn read(
        &self,
        _live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        super::tcp(self, &renderer(ctx), timeout).await
    }
}

impl ActionSpec for DeleteFiles {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(age) = &self.older_than {
            v.duration(age, "`older_than`", bounds::AGE);
        }
        v.templates([&self.dir].into_iter().chain(&self.pattern), "field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let pattern = self
            .pattern
            .as_ref()
            .map(|p| expr::render(&p.value, ctx))
            .transpose()?;
        let dir = expr::render(&self.dir.value, ctx)?;
        if with.systems.is_none() {
            // A drill (or `show`) does not read this machine's files: describe the request only.
            let older_than = self.older_than.as_ref().map(|a| a.value.as_str());
            let plan = super::describe_cleanup(&dir, pattern.as_deref(), older_than);
            let cleanup = super::Cleanup {
                dir: dir.into(),
                files: Vec::new(),
            };
            return Ok(Prepared::new(plan, Request::Cleanup(cleanup)));
        }
        let older_than = duration(&self.older_than, "older_than")?;
        let cleanup = super::cleanup(&dir, pattern.as_deref(), older_than)?;
        Ok(Prepared::new(cleanup.plan(), Request::Cleanup(cleanup)))
    }
}
