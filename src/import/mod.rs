//! `oncall import`: a Markdown runbook becomes an oncall runbook. Headings become steps, shell
//! blocks' commands become native checks and actions where oncall has a backend for them, and
//! shell checks (read-only) or shell actions (asked first) where it has not; each says the line
//! it came from. The page is only read: nothing in it is run.

mod build;
mod draft;
mod map;
mod markdown;
mod readonly;
mod secret;
mod shell;
mod yaml;

use map::Role;
use serde::Serialize;

/// What an import found and made of it.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub commands: usize,
    pub native_checks: usize,
    pub native_actions: usize,
    pub shell_checks: Vec<Found>,
    pub shell_actions: Vec<Found>,
    pub skipped: Vec<Skipped>,
    pub messages: usize,
    pub waits: usize,
    /// The credentials the page wrote and the secret params they became.
    pub secret_params: Vec<SecretParam>,
    /// What the runbook needs from whoever runs it, and what the import chose.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub line: usize,
    pub command: String,
    /// Why a shell action is asked first rather than run as a check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SecretParam {
    pub line: usize,
    pub param: String,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub line: usize,
    pub command: String,
    pub why: String,
}

impl Tally {
    fn native(&mut self, role: Role) {
        self.commands += 1;
        match role {
            Role::Check => self.native_checks += 1,
            Role::Action => self.native_actions += 1,
        }
    }

    fn shell(&mut self, role: Role, line: usize, command: &str, why: Option<&str>) {
        self.commands += 1;
        let found = Found {
            line,
            command: command.to_string(),
            why: why.map(str::to_string),
        };
        match role {
            Role::Check => self.shell_checks.push(found),
            Role::Action => self.shell_actions.push(found),
        }
    }

    fn skip(&mut self, line: usize, command: &str, why: String) {
        self.commands += 1;
        self.skipped.push(Skipped {
            line,
            command: command.to_string(),
            why,
        });
    }

    /// The share of commands that became native checks or actions, in percent.
    pub fn native_share(&self) -> f64 {
        if self.commands == 0 {
            return 0.0;
        }
        100.0 * (self.native_checks + self.native_actions) as f64 / self.commands as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{file}: no commands found: no shell block (```bash, sh, shell, console or unlabelled) holds a command oncall could import"
    )]
    NoCommands { file: String },
    #[error("{file}: nothing to import: every command was skipped: {why}")]
    NothingLeft { file: String, why: String },
    #[error("--id '{0}' may only use lower-case letters, digits and '-', and start with a letter")]
    BadId(String),
}

/// The runbook an import wrote, and what it found.
pub struct Imported {
    pub id: String,
    pub yaml: String,
    pub tally: Tally,
}

/// Reads a page; `source` names it in the runbook's header and in errors.
pub fn import(page: &str, source: &str, id: Option<&str>) -> Result<Imported, ImportError> {
    if let Some(id) = id
        && !valid_id(id)
    {
        return Err(ImportError::BadId(id.to_string()));
    }
    let mut sections = markdown::read(page);
    let mut tally = Tally::default();
    mask_words(&mut sections, &mut tally);
    let mut draft = draft::Draft {
        source: source.to_string(),
        ..Default::default()
    };
    build::build(&sections, &mut draft, &mut tally);
    if tally.commands == 0 {
        return Err(ImportError::NoCommands {
            file: source.to_string(),
        });
    }
    if draft.steps.is_empty() {
        let why: Vec<String> = tally
            .skipped
            .iter()
            .map(|s| format!("line {}: {}", s.line, s.why))
            .collect();
        return Err(ImportError::NothingLeft {
            file: source.to_string(),
            why: why.join("; "),
        });
    }
    if draft.title.is_empty() {
        draft.title = file_stem(source).replace(['-', '_'], " ");
    }
    draft.id = match id {
        Some(id) => id.to_string(),
        None => default_id(source, &draft.title),
    };
    if draft.severity.is_empty() {
        draft.severity = "P2".into();
        draft.severity_note = "the page names no severity: P2 until you set it".into();
        tally.notes.push(draft.severity_note.clone());
    }
    map::messages(&mut draft);
    guard_reverts(&mut draft);
    scrub(&mut draft, &mut tally);
    notes(&draft, &mut tally);
    Ok(Imported {
        id: draft.id.clone(),
        yaml: draft.to_yaml(),
        tally,
    })
}

/// Nothing the page wrote as a credential is written: the secret params it became are listed,
/// and a credential in the page's words (a title, guidance, a message) is masked.
fn scrub(draft: &mut draft::Draft, tally: &mut Tally) {
    tally.secret_params = draft
        .secrets
        .iter()
        .map(|s| SecretParam {
            line: s.line,
            param: s.param.clone(),
            what: s.what.clone(),
        })
        .collect();
    let known: Vec<String> = draft
        .secret_values()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    // Reading Markdown emphasis off a heading can shorten a mask (`***` → `*`): mask again.
    draft.title = secret::mask(&draft.title, &known);
    if let Some(d) = &mut draft.description {
        *d = secret::mask(d, &known);
    }
    for step in &mut draft.steps {
        step.title = secret::mask(&step.title, &known);
        for g in &mut step.guidance {
            *g = secret::mask(g, &known);
        }
    }
    for (name, text) in &mut draft.messages {
        if !secret::in_text(text).is_empty() {
            tally.notes.push(format!(
                "message {name}: a credential in a URL is written as {}: nothing of it is in the runbook",
                secret::MASK
            ));
        }
        *text = secret::mask(text, &known);
    }
    for step in &mut draft.steps {
        for item in step.checks.iter_mut().chain(&mut step.actions) {
            for text in [&mut item.from]
                .into_iter()
                .chain(item.title.as_mut())
                .chain(item.review.as_mut())
            {
                *text = secret::mask(text, &known);
            }
        }
        if let Some(wait) = &mut step.wait {
            wait.from = secret::mask(&wait.from, &known);
        }
    }
    for f in tally
        .shell_checks
        .iter_mut()
        .chain(&mut tally.shell_actions)
    {
        f.command = secret::mask(&f.command, &known);
    }
    for s in &mut tally.skipped {
        s.command = secret::mask(&s.command, &known);
    }
}

/// A credential in a URL of the page's words (a heading, a paragraph, a table) is masked before
/// anything is made of them: no title, guidance or id holds it.
fn mask_words(sections: &mut [markdown::Section], tally: &mut Tally) {
    for section in sections {
        let mut found = false;
        let mut mask = |text: &mut String| {
            if !secret::in_text(text).is_empty() {
                found = true;
                *text = secret::mask(text, &[]);
            }
        };
        mask(&mut section.heading);
        for block in &mut section.blocks {
            match block {
                markdown::Block::Text(text) => mask(text),
                markdown::Block::Table(rows) => rows.iter_mut().flatten().for_each(&mut mask),
                markdown::Block::Code(_) => {}
            }
        }
        if found {
            tally.notes.push(format!(
                "line {}: a credential in a URL of the page's words is written as {}: nothing of it is in the runbook",
                section.line,
                secret::MASK
            ));
        }
    }
}

/// An action that puts back what an earlier one set (a scale back, uploads resumed) waits for the
/// last verification before it (`after:`), marked for review; with no wait before it, it stays
/// words in its step's guidance rather than a revert offered whatever happened.
fn guard_reverts(draft: &mut draft::Draft) {
    let source = crate::runbook::Source {
        name: "imported".into(),
        origin: crate::runbook::Origin::Bundled,
        text: draft.to_yaml(),
    };
    let Ok(runbook) = source.parse::<crate::runbook::Runbook>() else {
        return;
    };
    for revert in crate::runbook::validate::unguarded_reverts(&runbook) {
        for step in &mut draft.steps {
            let Some(at) = step.actions.iter().position(|a| a.id == revert.action) else {
                continue;
            };
            match &revert.waited {
                Some(waited) => {
                    let item = &mut step.actions[at];
                    item.after = Some(waited.clone());
                    let review = format!(
                        "it {}: offered only once the wait of step {waited} was met; check that this wait shows the mitigation worked",
                        revert.why
                    );
                    item.review = Some(match item.review.take() {
                        Some(before) => format!("{before}; {review}"),
                        None => review,
                    });
                }
                None => {
                    let item = step.actions.remove(at);
                    step.guidance.push(format!(
                        "Not imported as an action ({}): it {}, and no step before it waits for the mitigation to work. Add a step with a wait, then this action with `after:` naming it.",
                        item.from, revert.why
                    ));
                }
            }
        }
    }
}

/// What whoever runs the runbook must know: params without a default, and where it reaches.
fn notes(draft: &draft::Draft, tally: &mut Tally) {
    let required: Vec<&str> = draft
        .params
        .iter()
        .filter(|(_, p)| p.default.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !required.is_empty() {
        tally.notes.push(format!(
            "give these params when you run it (-p NAME=VALUE): {}",
            required.join(", ")
        ));
    }
    let uses_prometheus = draft
        .steps
        .iter()
        .flat_map(|s| &s.checks)
        .any(|c| c.kind == "prometheus");
    if uses_prometheus {
        tally.notes.push(
            "the Prometheus queries go to --prometheus-url (or the config file), not the host the page named".into(),
        );
    }
}

pub fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn file_stem(source: &str) -> String {
    std::path::Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file's name as an id (`error-budget-runbook.md` → `error-budget-runbook`), else the title's.
fn default_id(source: &str, title: &str) -> String {
    for candidate in [file_stem(source), title.to_string()] {
        let id: String = map::ident(&candidate)
            .replace('_', "-")
            .chars()
            .take(64)
            .collect();
        let id = id.trim_matches('-').to_string();
        if valid_id(&id) {
            return id;
        }
    }
    "imported".into()
}

#[cfg(test)]
mod tests {
    /// Pages put together from the shapes runbooks have, and the ones that break parsers:
    /// every import either refuses the page or writes a runbook that validates.
    #[test]
    fn every_imported_page_validates() {
        const PIECES: &[&str] = &[
            "# Title é {{ x }}\n",
            "## Severity\n**Critical** — P1\n",
            "## Alert\nVideoErrorBudgetBurn fired: {% if %}\n",
            "## Escalation\n- Secondary: 30 minutes if no response\n- Manager — 1 hour\n",
            "### 1. Step: \"quoted\" #hash\n",
            "- item with `code` and **bold**\n",
            "1. **Do it**\n   ```bash\n   $ kubectl get pods -n ns -l app=a\n   output line\n   ```\n",
            "```bash\n# comment é\ncurl -s \"http://prometheus:9090/api/v1/query?query=sum(rate(x[5m]))\"\n```\n",
            "```sh\nkubectl scale deployment/w --replicas=3 -n ns && kubectl rollout restart deploy/w\n```\n",
            "```\nkubectl patch cm c -p '{\"data\":{\"K\":\"{{v}}\"}}'\n```\n",
            "```bash\ngrep -E \"(a|b\" /var/log/*.log | tail -5\nwatch -n 5 'curl -f http://svc:80/h'\n```\n",
            "```bash\necho 'unterminated\nrm -rf /\nfind / -delete\n```\n",
            "```console\n$ psql -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query_start < now() - interval '2 hours'\"\n```\n",
            "```bash\ndocker-compose up -d --scale web=3 && docker system prune -af\n```\n",
            "```bash\ncat <<EOF | kubectl apply -f -\nkind: x\nEOF\nredis-cli -h r -p 7000 lrange q 0 -1\n```\n",
            "```\nStatus: {severity} {unknown} {{ 1 }} {% endraw %}\n```\n",
            "```text\n\u{2028}line\ttab \u{7f}\n```\n",
            "| a | b |\n|---|---|\n| `x` | 1é |\n",
            "```bash\nvid-bench verify-model MODEL_NAME \"$(id)\" <model-id>\n```\n",
            "```sql\nSELECT count(*) FROM pg_stat_activity; ANALYZE;\nREINDEX DATABASE db\n```\n",
            "```bash\n\\\n```\n",
            "````markdown\n```bash\nrm -rf /\n```\n````\n",
            "```bash\nnvidia-smi -r; fuser -k /dev/nvidia0; df -h /x; du -sh /y/*; nc -z h 5432\n```\n",
            "## Investigation Steps\n```bash\ndocker-compose ps redis postgres\n```\n",
            "#### A very long heading that goes on and on and on about the many things the engineer should check before anything else is done at all, really\n- words\n",
            "```bash\nkubectl logs deployment/a-very-long-deployment-name-that-goes-on-and-on-and-on-forever --since=1h | grep -F 'x.y'\n```\n",
            "## Verify\n```bash\nwatch -n 1 nvidia-smi\nwatch -n 2 \"curl -f http://localhost:8000/health\"\nsleep 5\n```\n",
            "```bash\ncurl -X POST -H 'Authorization: Bearer s3cr3t-token' -d '{\"a\":1}' http://api:8080/x/{id}\n```\n",
            // What a review found breaking the import.
            "# Title \\\n```bash\necho {$ID}\ncurl -f http://api/x/{{alert_id}}\ncurl -X POST http://alertmanager:9093/api/v2/silences\n```\n",
            "```\n\n    indented after a blank line\nStarted: {{timestamp}} \u{FFFF}\n```\n",
            "```bash\nwatch -n 1e30 nvidia-smi\nwatch -n nan 'curl -f http://a/b'\nfind /x -mtime +18446744073709551615 -delete\nredis-cli lrange q 0 9223372036854775807\n```\n",
            "```bash\nawk '{print $NF}' f\ncurl -X DELETE http://api/keys/team%2Fprod%3Fx\nkubectl scale deploy/w --replicas=2 --dry-run=client\n```\n",
            "```console\n# Check the pods\n# kubectl get pods\n```\n",
            // Issue 25: commands that are not reads, and credentials (none may be written).
            "## postgres://admin:Hunter22x@db/app\n```bash\nkubectl get pods --kubeconfig=/tmp/k --token Hunter22x\nlogger status\npsql -c \"SELECT 1 FROM t FOR UPDATE\"\nredis-cli -a Hunter22x info\n```\n",
            "```bash\nmysql -pHunter22x -e 'SELECT 1' > /tmp/out\ncurl -u a:Hunter22x -H 'X-HTTP-Method-Override: DELETE' \"http://x/a?api_key=Hunter22x\"\ncurl -X POST https://hooks.slack.com/services/T1/B2/Hunter22x\nwatch -n 5 \"psql postgres://u:Hunter22x@db/app -c 'SELECT 1'\"\n```\n",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let count = 1 + (next() % 8) as usize;
            let page: String = (0..count)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let Ok(imported) = super::import(&page, "page.md", None) else {
                continue;
            };
            let report = serde_json::to_string(&imported.tally).expect("serializes");
            assert!(
                !report.to_lowercase().contains("hunter22x"),
                "round {round}: a credential is in the report:\n{page}\n{report}"
            );
            let source = crate::runbook::Source {
                name: "page.yaml".into(),
                origin: crate::runbook::Origin::File(std::path::PathBuf::from("page.yaml")),
                text: imported.yaml.clone(),
            };
            assert!(
                !imported.yaml.to_lowercase().contains("hunter22x"),
                "round {round}: a credential was written:\n{page}\n{}",
                imported.yaml
            );
            if let Err(problems) = crate::runbook::validate::load(&source) {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!(
                    "round {round}: the import of\n{page}\ndoes not validate: {problems:#?}\n{}",
                    imported.yaml
                );
            }
        }
    }
}
