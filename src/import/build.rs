//! A page's sections become the runbook: the title, severity, description and escalation from
//! their sections, every other heading with something under it a step, command-free blocks
//! messages, and every command of a shell block a check or an action.

use super::Tally;
use super::draft::{Draft, Item, Step, Wait};
use super::map::{self, Ctx, Mapped, Native, Role};
use super::markdown::{Block, Code, Section};
use super::shell::{self, Command, Prompts};
use super::yaml::Y;
use std::collections::BTreeSet;

const SHELL_LANGS: &[&str] = &[
    "bash",
    "sh",
    "shell",
    "console",
    "zsh",
    "shell-session",
    "terminal",
];
const TEXT_LANGS: &[&str] = &["", "text", "txt", "markdown", "md", "plain", "plaintext"];
const MAX_GUIDANCE: usize = 8000;

pub fn build(sections: &[Section], draft: &mut Draft, tally: &mut Tally) {
    let mut ids = Ids::default();
    // The headings above each section: (level, normalized heading, id).
    let mut above: Vec<(usize, String)> = Vec::new();
    let mut titled = false;
    for section in sections {
        while above
            .last()
            .is_some_and(|(level, _)| *level >= section.level)
        {
            above.pop();
        }
        let heading = match normalize(&section.heading) {
            // What a page says before its first heading.
            h if h.is_empty() => "Start".to_string(),
            h => h,
        };
        let lower = heading.to_ascii_lowercase();
        let ancestors: Vec<String> = above.iter().map(|(_, h)| h.to_ascii_lowercase()).collect();
        let within =
            |word: &str| lower.contains(word) || ancestors.iter().any(|h| h.contains(word));
        let parent = above.last().map(|(_, h)| h.clone());
        above.push((section.level, heading.clone()));
        if section.level > 0 && !titled {
            titled = true;
            draft.title = heading.clone();
            if !section.blocks.is_empty() {
                description(section, draft);
            }
            continue;
        }
        if within("escalation") {
            escalation(section, &heading, draft, tally);
            continue;
        }
        if within("severity") {
            severity(section, draft);
            continue;
        }
        if lower.starts_with("alert")
            || ["overview", "summary", "description"].contains(&lower.as_str())
        {
            description(section, draft);
            continue;
        }
        if section.blocks.is_empty() {
            continue;
        }
        let title = match (&parent, ids.step_titles.contains(&heading)) {
            (Some(parent), true) => format!("{parent}: {heading}"),
            _ => heading.clone(),
        };
        ids.step_titles.insert(heading.clone());
        let mut step = Step {
            id: ids.step(&heading, parent.as_deref()),
            title: title.chars().take(200).collect(),
            parent: parent.clone(),
            line: section.line,
            ..Step::default()
        };
        let mut steps = Vec::new();
        let mut only_messages = true;
        for block in &section.blocks {
            match block {
                Block::Text(text) => {
                    step.guidance.push(text.clone());
                    // `Update incident channel: "🚨 … investigating"`: a message to post.
                    if let Some((to, said)) = quoted_update(text) {
                        let name = ids.messages.take(&map::ident(to), '_');
                        draft.messages.push((name.clone(), said.to_string()));
                        step.messages.push(name);
                        tally.messages += 1;
                    }
                }
                Block::Table(rows) => step.guidance.extend(table_lines(rows)),
                Block::Code(code) => {
                    let kind = fence_kind(code);
                    match kind {
                        Fence::Commands(prompts) => {
                            only_messages = false;
                            let script = shell::read(&code.text, code.first_line, prompts);
                            step.guidance.extend(script.notes.iter().cloned());
                            for command in &script.commands {
                                add_command(command, draft, tally, &mut ids, &mut step, &mut steps);
                            }
                        }
                        Fence::Sql => {
                            only_messages = false;
                            for command in sql_statements(code) {
                                add_command(
                                    &command, draft, tally, &mut ids, &mut step, &mut steps,
                                );
                            }
                        }
                        Fence::Message => {
                            let label = code
                                .label
                                .as_deref()
                                .filter(|l| l.len() < 60)
                                .unwrap_or(&heading);
                            let mut name = map::ident(label);
                            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                                name = format!("message_{name}");
                            }
                            let name = ids.messages.take(&name, '_');
                            draft
                                .messages
                                .push((name.clone(), code.text.trim_end().to_string()));
                            step.messages.push(name);
                            tally.messages += 1;
                        }
                        Fence::Other(lang) => {
                            tally.skip(
                                code.first_line,
                                &format!("a `{lang}` block"),
                                format!(
                                    "a {lang} block is not shell commands: it stays in the page"
                                ),
                            );
                            step.guidance.push(format!(
                                "(a {lang} block in the page, line {})",
                                code.first_line
                            ));
                        }
                    }
                }
            }
        }
        // A heading with only a message under it is a template, not something to do.
        if only_messages && steps.is_empty() && only_templates(section) {
            continue;
        }
        steps.push(step);
        draft.steps.append(&mut steps);
    }
    // A heading whose commands were all skipped has nothing left to do.
    draft.steps.retain(|s| {
        !(s.guidance.is_empty()
            && s.checks.is_empty()
            && s.actions.is_empty()
            && s.wait.is_none()
            && s.messages.is_empty())
    });
    fold_guidance(draft, &mut ids);
    for step in &mut draft.steps {
        let guidance = step.guidance.join("\n");
        if guidance.chars().count() > MAX_GUIDANCE {
            let cut: String = guidance.chars().take(MAX_GUIDANCE - 40).collect();
            step.guidance = vec![format!("{cut}… (shortened: the page has the rest)")];
        }
    }
}

/// Headings side by side under one parent that only hold words (Common Root Causes: Resource
/// Exhaustion, External Dependencies, …) become one step named after the parent.
fn fold_guidance(draft: &mut Draft, ids: &mut Ids) {
    let words_only = |s: &Step| {
        s.checks.is_empty()
            && s.actions.is_empty()
            && s.wait.is_none()
            && s.messages.is_empty()
            && s.parent.is_some()
    };
    let steps = std::mem::take(&mut draft.steps);
    let mut out: Vec<Step> = Vec::new();
    let mut group: Vec<Step> = Vec::new();
    let flush = |group: &mut Vec<Step>, out: &mut Vec<Step>, ids: &mut Ids| {
        if group.len() < 2 {
            out.append(group);
            return;
        }
        let parent = group[0].parent.clone().unwrap_or_default();
        let mut guidance = Vec::new();
        for s in group.iter() {
            guidance.push(format!(
                "{}:",
                s.title.rsplit(": ").next().unwrap_or(&s.title)
            ));
            guidance.extend(s.guidance.iter().map(|g| format!("  {g}")));
            ids.steps.release(&s.id);
        }
        out.push(Step {
            id: ids.step(&parent, None),
            title: parent.chars().take(200).collect(),
            parent: None,
            line: group[0].line,
            guidance,
            ..Step::default()
        });
        group.clear();
    };
    for step in steps {
        let joins = words_only(&step) && group.last().is_none_or(|g| g.parent == step.parent);
        if !joins {
            flush(&mut group, &mut out, ids);
        }
        if words_only(&step) {
            group.push(step);
        } else {
            out.push(step);
        }
    }
    flush(&mut group, &mut out, ids);
    draft.steps = out;
}

/// Adds one command's items to the step; a second wait starts a step of its own.
fn add_command(
    command: &Command,
    draft: &mut Draft,
    tally: &mut Tally,
    ids: &mut Ids,
    step: &mut Step,
    done: &mut Vec<Step>,
) {
    let mut ctx = Ctx {
        draft,
        line: command.line,
    };
    let mapped = map::map(command, &mut ctx);
    // A credential the page wrote became a secret param: no comment, title or id repeats it.
    // Its own credentials too: a command skipped for holding one declared no param for it.
    let own: Vec<String> = command
        .stages
        .iter()
        .flat_map(|words| {
            let values: Vec<&str> = words.iter().map(|w| w.value.as_str()).collect();
            super::secret::in_words(&values)
                .into_iter()
                .map(|(i, f)| values[i][f.range].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut known = draft.secret_values();
    known.extend(own.iter().map(String::as_str));
    let shown = super::secret::mask(&command.text, &known);
    let comment = command
        .comment
        .as_deref()
        .map(|c| super::secret::mask(c, &known));
    let words: Vec<String> = command
        .stages
        .first()
        .into_iter()
        .flatten()
        .take(3)
        .map(|w| super::secret::mask(&w.value, &known))
        .collect();
    let title = comment.as_deref().map(|c| capitalize(&normalize(c)));
    let from = format!("line {}: {}", command.line, shown);
    match mapped {
        Mapped::Native { items, every } => {
            let role = if items.iter().any(|i| i.role == Role::Action) {
                Role::Action
            } else {
                Role::Check
            };
            tally.native(role);
            let mut helper_id = None;
            let many = items.iter().filter(|i| !i.helper).count() > 1;
            for item in items {
                let hint = match (&comment, item.helper || many) {
                    (Some(c), false) => strip_verb(c),
                    _ => item.name.clone(),
                };
                let id = ids.item(&hint);
                let Native {
                    role,
                    kind,
                    mut spec,
                    unit,
                    review,
                    helper,
                    ..
                } = item;
                if let (Some(helper), Y::Map(entries)) = (&helper_id, &mut spec) {
                    for (key, value) in entries.iter_mut() {
                        if key == "check" && *value == Y::str("") {
                            *value = Y::str(helper);
                        }
                    }
                }
                if helper {
                    helper_id = Some(id.clone());
                }
                let built = Item {
                    after: None,
                    id: id.clone(),
                    title: if helper {
                        Some(format!(
                            "Backends the page's statement picks (line {})",
                            command.line
                        ))
                    } else {
                        title
                            .clone()
                            .or_else(|| Some(shown.chars().take(200).collect()))
                    },
                    from: from.clone(),
                    review,
                    kind,
                    spec,
                    unit,
                };
                place(built, role, step, ids, done, command.line);
                if let Some(every) = every {
                    if step.wait.is_some() {
                        let last = step.checks.pop();
                        continue_step(step, ids, done, command.line);
                        step.checks.extend(last);
                    }
                    step.wait = Some(Wait {
                        check: id,
                        every: format!("{every}s"),
                        from: from.clone(),
                        until: until(kind),
                    });
                    tally.waits += 1;
                }
            }
        }
        Mapped::Shell {
            command: text,
            asked,
        } => {
            let role = if asked.is_none() {
                Role::Check
            } else {
                Role::Action
            };
            tally.shell(role, command.line, &shown, asked.as_deref());
            let hint = comment
                .as_deref()
                .map(strip_verb)
                .unwrap_or_else(|| words.join("_"));
            let review = match &asked {
                None => "no native check for this: it runs as a shell command; every program in it only reads".to_string(),
                Some(why) => format!("{why}: it runs as a shell command, asked before like every action"),
            };
            let built = Item {
                after: None,
                id: ids.item(&hint),
                title: title.or_else(|| Some(shown.chars().take(200).collect())),
                from,
                review: Some(review),
                kind: "shell",
                spec: Y::map([("command", Some(Y::Str(text)))]),
                unit: None,
            };
            place(built, role, step, ids, done, command.line);
        }
        Mapped::Skipped(why) => tally.skip(command.line, &shown, why),
    }
}

/// Adds a check or an action to the step. Checks run before a step's actions: a check the page
/// puts after an action starts a step of its own, so it still reads what the action left.
fn place(
    item: Item,
    role: Role,
    step: &mut Step,
    ids: &mut Ids,
    done: &mut Vec<Step>,
    line: usize,
) {
    if role == Role::Check && !step.actions.is_empty() {
        continue_step(step, ids, done, line);
    }
    match role {
        Role::Check => step.checks.push(item),
        Role::Action => step.actions.push(item),
    }
}

/// Ends the step and starts its continuation, which the commands after go to.
fn continue_step(step: &mut Step, ids: &mut Ids, done: &mut Vec<Step>, line: usize) {
    let base = step
        .id
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    let base = if base.is_empty() {
        step.id.clone()
    } else {
        base.to_string()
    };
    let title = step.title.trim_end_matches(" (continued)").to_string();
    let next = Step {
        id: ids.steps.take(&base, '-'),
        title: format!("{title} (continued)").chars().take(200).collect(),
        parent: step.parent.clone(),
        line,
        ..Step::default()
    };
    done.push(std::mem::replace(step, next));
}

/// When the watched check's wait ends: an HTTP status in 2xx; anything else has no level the
/// page gives, so it polls until the engineer stops it or the timeout.
fn until(kind: &str) -> String {
    match kind {
        "http" => "value >= 200 and value < 300".into(),
        _ => "false".into(),
    }
}

/// A line that says to post a quoted text somewhere (a channel, the status page): where, and what.
fn quoted_update(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches([
        '-', ' ', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
    ]);
    let (to, rest) = text.split_once(':')?;
    let lower = to.to_ascii_lowercase();
    if ![
        "channel",
        "status page",
        "slack",
        "post",
        "announce",
        "notify",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        return None;
    }
    let said = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    (said.chars().count() >= 10 && !said.contains('"') && !map::ident(to).is_empty())
        .then_some((to, said))
}

/// Whether a section holds message templates and nothing else but their labels.
fn only_templates(section: &Section) -> bool {
    let labels: Vec<&str> = section
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Code(code) => code.label.as_deref(),
            _ => None,
        })
        .collect();
    section.blocks.iter().all(|b| match b {
        Block::Code(_) => true,
        Block::Text(t) => labels.contains(&t.trim_start_matches([
            '-', ' ', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
        ])),
        Block::Table(_) => false,
    })
}

enum Fence {
    Commands(Prompts),
    Sql,
    Message,
    Other(String),
}

fn fence_kind(code: &Code) -> Fence {
    let lang = code.lang.as_str();
    if SHELL_LANGS.contains(&lang) {
        let marked = lang == "console"
            || lang == "shell-session"
            || lang == "terminal"
            || shell::has_prompts(&code.text);
        return Fence::Commands(if marked {
            Prompts::Marked {
                // `# ` is a root prompt only where no `$ ` prompt is.
                root_hash: lang != "bash"
                    && lang != "sh"
                    && lang != "shell"
                    && !shell::has_prompts(&code.text),
            }
        } else {
            Prompts::None
        });
    }
    if ["sql", "postgresql", "psql", "pgsql"].contains(&lang) {
        return Fence::Sql;
    }
    if lang.is_empty() && looks_like_commands(&code.text) {
        let marked = shell::has_prompts(&code.text);
        return Fence::Commands(if marked {
            Prompts::Marked { root_hash: false }
        } else {
            Prompts::None
        });
    }
    if TEXT_LANGS.contains(&lang) {
        return Fence::Message;
    }
    Fence::Other(lang.to_string())
}

/// An unlabelled block holds commands when each line is a comment or starts like one, and at
/// least one names a program a runbook runs.
fn looks_like_commands(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let commandish = |l: &&str| {
        let l = l.strip_prefix("$ ").unwrap_or(l);
        l.starts_with('#')
            || l.split_whitespace().next().is_some_and(|w| {
                w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c))
            })
    };
    let known = |l: &&str| {
        let l = l.strip_prefix("$ ").unwrap_or(l);
        let first = l.split_whitespace().next().unwrap_or_default();
        super::readonly::argv_reads_only(&[first])
            || [
                "kubectl",
                "curl",
                "docker",
                "docker-compose",
                "psql",
                "redis-cli",
                "rm",
                "find",
                "systemctl",
                "watch",
                "helm",
            ]
            .contains(&first)
    };
    !lines.is_empty() && lines.iter().all(commandish) && lines.iter().any(known)
}

/// A `sql` block's statements, as commands of their own.
fn sql_statements(code: &Code) -> Vec<Command> {
    let mut out = Vec::new();
    let mut start = code.first_line;
    let mut text = String::new();
    // `;` ends a statement and `--` starts a comment, outside a string literal.
    let mut quoted = false;
    for (line, l) in (code.first_line..).zip(code.text.lines()) {
        if text.trim().is_empty() {
            start = line;
        }
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    text.push(c);
                }
                ';' if !quoted => {
                    push_sql(&mut out, start, &text);
                    text.clear();
                    start = line;
                }
                '-' if !quoted && chars.peek() == Some(&'-') => break,
                c => text.push(c),
            }
        }
        text.push(' ');
    }
    push_sql(&mut out, start, &text);
    out
}

fn push_sql(out: &mut Vec<Command>, line: usize, text: &str) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return;
    }
    let words = vec![vec![
        shell::Word::plain("psql"),
        shell::Word::plain("-c"),
        shell::Word {
            raw: map::quote(&text),
            value: text.clone(),
            quoted: true,
            single: true,
        },
    ]];
    out.push(Command {
        line,
        text: format!("psql -c {}", map::quote(&text)),
        comment: None,
        stages: words,
        unread: None,
    });
}

fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    let Some((header, rows)) = rows.split_first() else {
        return Vec::new();
    };
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = header
                .iter()
                .zip(row)
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| {
                    if h.is_empty() {
                        v.clone()
                    } else {
                        format!("{h}: {v}")
                    }
                })
                .collect();
            format!("- {}", cells.join("; "))
        })
        .collect()
}

fn description(section: &Section, draft: &mut Draft) {
    let mut text = Vec::new();
    for block in &section.blocks {
        match block {
            Block::Text(t) => text.push(t.clone()),
            Block::Table(rows) => text.extend(table_lines(rows)),
            Block::Code(_) => {}
        }
    }
    if text.is_empty() {
        return;
    }
    static ALERT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+){2,}\b").expect("valid")
    });
    for t in &text {
        for m in ALERT.find_iter(t) {
            if !draft.alerts.iter().any(|a| a == m.as_str()) {
                draft.alerts.push(m.as_str().to_string());
            }
        }
    }
    let joined = text.join("\n");
    let description = match draft.description.take() {
        Some(d) => format!("{d}\n{joined}"),
        None => joined,
    };
    draft.description = Some(description.chars().take(MAX_GUIDANCE).collect());
}

/// The first severity the section names: P0–P3, or Critical, High, Medium, Low.
fn severity(section: &Section, draft: &mut Draft) {
    if !draft.severity.is_empty() {
        return;
    }
    let mut texts: Vec<(String, bool)> = Vec::new();
    for block in &section.blocks {
        match block {
            Block::Text(t) => texts.push((t.clone(), false)),
            Block::Table(rows) => {
                let levels = rows.len().saturating_sub(1);
                if let Some(first) = rows.get(1).and_then(|r| r.first()) {
                    texts.push((first.clone(), levels > 1));
                }
            }
            Block::Code(_) => {}
        }
    }
    for (text, of_many) in texts {
        if let Some(level) = level_in(&text) {
            draft.severity = level.to_string();
            draft.severity_note = if of_many {
                format!(
                    "the first of the page's severity levels ({}): set the level this runbook's incidents have",
                    text.replace('*', "")
                )
            } else {
                format!(
                    "the page's severity: {}",
                    text.replace('*', "").chars().take(80).collect::<String>()
                )
            };
            return;
        }
    }
}

pub fn level_in(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    for (i, p) in ["p0", "p1", "p2", "p3"].iter().enumerate() {
        if lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == *p)
        {
            return Some(["P0", "P1", "P2", "P3"][i]);
        }
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphabetic()).collect();
    [
        ("critical", "P0"),
        ("high", "P1"),
        ("medium", "P2"),
        ("low", "P3"),
    ]
    .into_iter()
    .find(|(w, _)| words.contains(w))
    .map(|(_, p)| p)
}

/// An escalation level: a heading or list item under the Escalation section, with the time
/// after which it is called ("30 minutes if no response" → `30m`).
fn escalation(section: &Section, heading: &str, draft: &mut Draft, tally: &mut Tally) {
    let texts: Vec<String> = section
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let is_root = heading.to_ascii_lowercase().contains("escalation");
    let entries: Vec<(String, Vec<String>)> = if is_root {
        // Levels as list items: `- Secondary on-call: 30 minutes`.
        texts
            .iter()
            .map(|t| (t.trim_start_matches(['-', ' ']).to_string(), Vec::new()))
            .collect()
    } else {
        vec![(heading.to_string(), texts)]
    };
    for (name, details) in entries {
        let all = std::iter::once(name.clone())
            .chain(details.iter().cloned())
            .collect::<Vec<_>>();
        let Some((after, at)) = all
            .iter()
            .enumerate()
            .find_map(|(i, t)| duration_in(t).map(|d| (d, i)))
        else {
            if !is_root {
                tally
                    .notes
                    .push(format!("escalation level '{name}' names no time: left out"));
            }
            continue;
        };
        let who = if at == 0 {
            // `Secondary on-call: 30 minutes` or `Secondary on-call - 30 minutes`: a dash inside
            // a word (on-call) is part of the name.
            name.split(':')
                .next()
                .and_then(|n| n.split(" - ").next())
                .unwrap_or(&name)
                .trim()
                .to_string()
        } else {
            name.clone()
        };
        let detail = details
            .iter()
            .enumerate()
            .find(|(i, _)| i + 1 != at)
            .map(|(_, d)| {
                d.trim_start_matches(['-', ' '])
                    .split_once(':')
                    .map_or(d.as_str(), |(_, v)| v)
                    .trim()
                    .to_string()
            });
        let to = match detail {
            Some(d) if !d.is_empty() => format!("{who}: {d}"),
            _ => who,
        };
        // The condition the page states beside the time ("30 minutes if no response").
        let said = all.join(" ").to_ascii_lowercase();
        let unless = if ["no response", "not acknowledged", "unacknowledged"]
            .iter()
            .any(|w| said.contains(w))
        {
            Some("acknowledged")
        } else if ["unresolved", "not resolved"]
            .iter()
            .any(|w| said.contains(w))
        {
            Some("resolved")
        } else {
            None
        };
        let only_if = ["if critical", "critical business impact", "critical impact"]
            .iter()
            .any(|w| said.contains(w))
            .then_some("severity == P0");
        draft.escalation.push(super::draft::Escalation {
            after,
            to: to.chars().take(200).collect(),
            unless,
            only_if,
        });
    }
}

/// "30 minutes", "1 hour", "2h" as a duration.
pub fn duration_in(text: &str) -> Option<String> {
    static DURATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(\d{1,4})\s*(minutes?|mins?|m|hours?|hrs?|h|days?|d)\b")
            .expect("valid")
    });
    let caps = DURATION.captures(text)?;
    let unit = match caps[2].to_ascii_lowercase().chars().next()? {
        'm' => "m",
        'h' => "h",
        _ => "d",
    };
    Some(format!("{}{unit}", &caps[1]))
}

/// A heading or comment without its numbering, emphasis and trailing colon.
pub fn normalize(text: &str) -> String {
    static NUMBERING: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(?:step\s+)?\d+(?:\.\d+)*[.):]?\s+").expect("valid")
    });
    let text = text.replace("**", "");
    let text = NUMBERING.replace(text.trim(), "");
    text.trim().trim_end_matches(':').trim().to_string()
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A comment as an id: without "check" in front ("Check worker status" → `worker_status`).
fn strip_verb(comment: &str) -> String {
    let text = normalize(comment).to_ascii_lowercase();
    let text = ["check ", "checking ", "verify "]
        .iter()
        .find_map(|v| text.strip_prefix(v))
        .unwrap_or(&text)
        .to_string();
    map::ident(&text)
}

#[derive(Default)]
struct Ids {
    items: Names,
    steps: Names,
    messages: Names,
    step_titles: BTreeSet<String>,
}

impl Ids {
    fn item(&mut self, hint: &str) -> String {
        let mut base: String = map::ident(hint).chars().take(48).collect();
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("c_{base}");
        }
        self.items.take(base.trim_end_matches('_'), '_')
    }

    fn step(&mut self, heading: &str, parent: Option<&str>) -> String {
        let slug = map::ident(heading).replace('_', "-");
        let slug = if slug.is_empty() { "step".into() } else { slug };
        let slug = if self.steps.contains(&slug)
            && let Some(parent) = parent
        {
            // "Scenario 3: Database Performance Issues (P1)" → database-performance-issues.
            let short = parent.rsplit(':').next().unwrap_or(parent);
            let short = short.split('(').next().unwrap_or(short);
            let joined = format!("{}-{slug}", map::ident(short).replace('_', "-"));
            joined
                .chars()
                .take(64)
                .collect::<String>()
                .trim_end_matches('-')
                .to_string()
        } else {
            slug
        };
        self.steps.take(&slug, '-')
    }
}

/// Names given out, each base with the next number to try after it (so a page with thousands of
/// the same command does not try every number again for each).
#[derive(Default)]
struct Names {
    seen: BTreeSet<String>,
    next: std::collections::BTreeMap<String, usize>,
}

impl Names {
    fn take(&mut self, base: &str, joiner: char) -> String {
        if self.seen.insert(base.to_string()) {
            return base.to_string();
        }
        let n = self.next.entry(base.to_string()).or_insert(2);
        loop {
            let id = format!("{base}{joiner}{n}");
            *n += 1;
            if self.seen.insert(id.clone()) {
                return id;
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.seen.contains(name)
    }

    fn release(&mut self, name: &str) {
        self.seen.remove(name);
    }
}
