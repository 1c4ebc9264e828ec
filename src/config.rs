//! Configuration: the config file's named endpoints and param values, under the flags.

use crate::spec::ScalarValue;
use crate::spec::validate::Problem;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named base URLs: `prometheus`, `api_gateway`, ...
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// Values for runbook params, used by every runbook that declares them.
    #[serde(default)]
    pub params: BTreeMap<String, ScalarValue>,
    /// Kubernetes contexts (`prod-*`) where approving a write means typing the context's name.
    #[serde(default)]
    pub production_contexts: Vec<String>,
    /// The team's store (`postgres://…`), under `--store` and `ONCALL_STORE`.
    #[serde(default)]
    pub store: Option<String>,
    /// Which actions need a second person's approval besides those marked `approval: two-person`.
    #[serde(default)]
    pub two_person: TwoPerson,
}

/// `two_person:` in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoPerson {
    /// Every write to a production context (`production_contexts`).
    #[serde(default)]
    pub production: bool,
    /// Every action of a runbook of these severities (`P0`, `P1`).
    #[serde(default)]
    pub severities: Vec<String>,
    /// How long a request waits for the second person (default 15m).
    #[serde(default)]
    pub timeout: Option<String>,
}

pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("oncall").join("config.yaml"))
}

impl Config {
    /// Loads the given file (which must exist) or the default one (which may not).
    pub fn load(explicit: Option<&PathBuf>) -> anyhow::Result<Config> {
        let path = match explicit {
            Some(path) => path.clone(),
            None => match default_path() {
                Some(path) if path.exists() => path,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", path.display()))?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Parses a config file's text; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> anyhow::Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}", Problem::from_yaml(name, &e)))?;
        if let Some(timeout) = &config.two_person.timeout
            && let Err(e) = crate::spec::parse_duration(timeout)
        {
            anyhow::bail!("{name}: two_person: timeout: {e}; write a duration such as 15m or 900s");
        }
        for pattern in &config.production_contexts {
            if let Err(e) = globset::Glob::new(pattern) {
                anyhow::bail!(
                    "{name}: production_contexts: '{pattern}' is not a context pattern ({}); write names with * and ? wildcards, as prod-*",
                    e.kind()
                );
            }
        }
        Ok(config)
    }
}

/// Splits `NAME=VALUE`.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{text}' is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_person_is_read_and_a_bad_timeout_is_named_with_its_file() {
        let config = Config::parse(
            "c.yaml",
            "two_person:\n  production: true\n  severities: [P0]\n  timeout: 10m\n",
        )
        .unwrap();
        assert!(config.two_person.production);
        assert_eq!(config.two_person.severities, ["P0"]);
        let err = Config::parse("c.yaml", "two_person:\n  timeout: soon\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.yaml: two_person: timeout: ") && err.contains("15m or 900s"),
            "{err}"
        );
        let err = Config::parse("c.yaml", "two_person:\n  everyone: true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `everyone`"), "{err}");
    }
}
