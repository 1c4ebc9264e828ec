//! One command of a page becomes a native check or action where oncall has a backend for it, a
//! shell check where it is known to be read-only, a shell action (asked first) otherwise, or is
//! skipped with the reason. Nothing here runs a command: the words are only read.

mod curl;
mod kubectl;
mod local;
pub mod sql;

use super::draft::{Draft, Param, Secret};
use super::readonly;
use super::secret;
use super::shell::{Command, Word};
use super::yaml::Y;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    Check,
    Action,
}

/// A native check or action, before it gets its id.
#[derive(Debug, Clone)]
pub struct Native {
    pub role: Role,
    pub kind: &'static str,
    pub spec: Y,
    /// A name for the id when no comment gives one: `scale_gpu_worker`.
    pub name: String,
    pub unit: Option<String>,
    pub review: Option<String>,
    /// A check another item of this command reads (`pg_terminate` names its check): the id it gets.
    pub helper: bool,
}

impl Native {
    pub fn check(kind: &'static str, name: impl Into<String>, spec: Y) -> Native {
        Native {
            role: Role::Check,
            kind,
            spec,
            name: name.into(),
            unit: None,
            review: None,
            helper: false,
        }
    }

    pub fn action(kind: &'static str, name: impl Into<String>, spec: Y) -> Native {
        Native {
            role: Role::Action,
            ..Native::check(kind, name, spec)
        }
    }

    pub fn review(mut self, why: impl Into<String>) -> Native {
        self.review = Some(why.into());
        self
    }
}

#[derive(Debug)]
pub enum Mapped {
    /// Native items; `every` when the page watched it (`watch -n 30`): a wait on the check.
    Native {
        items: Vec<Native>,
        every: Option<u64>,
    },
    /// A shell fallback: the command as the runbook runs it, and why it is asked first (None:
    /// every word of it only reads, so it is a check).
    Shell {
        command: String,
        asked: Option<String>,
    },
    Skipped(String),
}

impl Mapped {
    fn one(item: Native) -> Mapped {
        Mapped::Native {
            items: vec![item],
            every: None,
        }
    }
}

/// What the mapping adds to the runbook besides items: params and endpoints.
pub struct Ctx<'d> {
    pub draft: &'d mut Draft,
    pub line: usize,
}

impl Ctx<'_> {
    /// A param, declared the first time it is named; the template that reads it.
    pub fn declare(&mut self, name: &str, param: Param) -> String {
        self.draft.params.entry(name.to_string()).or_insert(param);
        format!("{{{{ params.{name} }}}}")
    }

    /// A credential the page wrote: a secret param with no default, so nothing of it is written;
    /// the same value is the same param. Returns the param's name.
    pub fn secret(&mut self, name: &str, value: &str, what: &str) -> String {
        let line = self.line;
        let known = self.draft.secrets.iter().find(|s| s.value == value);
        let param = match known {
            Some(s) => s.param.clone(),
            None => {
                // A placeholder (`$REDIS_PASSWORD`, `<token>`) names its param.
                let named = match placeholders(value).as_slice() {
                    [Piece::Placeholder { name, .. }] => Some(name.clone()),
                    _ => None,
                };
                let base = match ident(name) {
                    n if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) => {
                        format!("secret_{n}")
                    }
                    n => n,
                };
                let param = named.unwrap_or_else(|| {
                    let mut candidate = base.clone();
                    let mut n = 2;
                    while self.draft.params.contains_key(&candidate) {
                        candidate = format!("{base}_{n}");
                        n += 1;
                    }
                    candidate
                });
                let help = format!(
                    "{what} in the page (line {line}): secret, never written here; give it with -p {param}=VALUE"
                );
                self.declare(
                    &param,
                    Param {
                        default: None,
                        help: help.clone(),
                        secret: true,
                    },
                );
                if let Some(p) = self.draft.params.get_mut(&param) {
                    *p = Param {
                        default: None,
                        help,
                        secret: true,
                    };
                }
                param
            }
        };
        if !self
            .draft
            .secrets
            .iter()
            .any(|s| s.param == param && s.line == line)
        {
            self.draft.secrets.push(Secret {
                value: value.to_string(),
                param: param.clone(),
                line,
                what: what.to_string(),
            });
        }
        param
    }

    /// A value with the credentials found in it as secret params (`filter` appended to each,
    /// as `| urlpath`), and `lit` writing the text between them.
    pub fn with_secrets(
        &mut self,
        value: &str,
        found: &[&secret::Found],
        filter: &str,
        mut lit: impl FnMut(&mut Self, &str) -> String,
    ) -> String {
        let mut out = String::new();
        let mut at = 0;
        for f in found {
            if f.range.start < at {
                continue;
            }
            out.push_str(&lit(self, &value[at..f.range.start]));
            let param = self.secret(&f.name, &value[f.range.clone()], &f.what);
            push_template(&mut out, &format!("{{{{ params.{param}{filter} }}}}"));
            at = f.range.end;
        }
        out.push_str(&lit(self, &value[at..]));
        out
    }

    /// A param the page's placeholder stands for.
    pub fn param(&mut self, name: &str, seen: &str) -> String {
        let help = format!("{seen} in the page (line {})", self.line);
        self.required(name, &help)
    }

    /// A param the run must be given, with what it is.
    pub fn required(&mut self, name: &str, help: &str) -> String {
        let param = Param {
            default: None,
            help: help.to_string(),
            secret: false,
        };
        self.declare(name, param)
    }

    /// A named base URL; a second base under the same name gets its own name.
    pub fn endpoint(&mut self, name: &str, base: &str, help: String) -> String {
        let mut candidate = name.to_string();
        let mut n = 2;
        loop {
            match self.draft.endpoints.get(&candidate) {
                Some(p) if p.default.as_deref() == Some(base) => break,
                Some(_) => {
                    candidate = format!("{name}_{n}");
                    n += 1;
                }
                None => {
                    self.draft.endpoints.insert(
                        candidate.clone(),
                        Param {
                            default: Some(base.to_string()),
                            help,
                            secret: false,
                        },
                    );
                    break;
                }
            }
        }
        format!("{{{{ endpoints.{candidate} }}}}")
    }

    /// A Kubernetes namespace: the first one the page names becomes the `namespace` param.
    pub fn namespace(&mut self, ns: Option<&str>) -> Option<Y> {
        let ns = ns?;
        let first = match self.draft.params.get("namespace") {
            Some(p) => p.default.as_deref() == Some(ns),
            None => {
                let param = Param {
                    default: Some(ns.to_string()),
                    help: "Kubernetes namespace the page's kubectl commands use".into(),
                    secret: false,
                };
                self.declare("namespace", param);
                true
            }
        };
        Some(Y::str(if first {
            "{{ params.namespace }}".to_string()
        } else {
            self.text(ns)
        }))
    }

    /// A value from the page for a templated field: its placeholders become params, anything
    /// that would read as template syntax stays literal.
    pub fn text(&mut self, value: &str) -> String {
        let mut out = String::new();
        for piece in placeholders(value) {
            match piece {
                Piece::Literal(s) => out.push_str(&literal(s)),
                Piece::Placeholder { name, seen } => {
                    let template = self.param(&name, seen);
                    push_template(&mut out, &template)
                }
            }
        }
        out
    }
}

/// Appends a template after literal text: a literal `{` just before it would join its `{{`.
pub fn push_template(out: &mut String, template: &str) {
    if out.ends_with('{') {
        out.pop();
        out.push_str("{{ '{' }}");
    }
    out.push_str(template);
}

/// Text a template prints as it is.
pub fn literal(s: &str) -> String {
    if s.contains("endraw") {
        // A raw block cannot hold its own end: each brace is printed by an expression instead.
        return s.replace('{', "{{ '{' }}");
    }
    if s.contains("{{") || s.contains("{%") || s.contains("{#") {
        format!("{{% raw %}}{s}{{% endraw %}}")
    } else {
        s.to_string()
    }
}

#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Literal(&'a str),
    Placeholder { name: String, seen: &'a str },
}

/// Splits a value at its placeholders: `{alert_id}`, `<model-name>`, `${NAME}`, `$NAME`, and an
/// upper-case name with an underscore standing alone or as a path segment (`MODEL_NAME`).
pub fn placeholders(value: &str) -> Vec<Piece<'_>> {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\{([A-Za-z][A-Za-z0-9_-]{0,40})\}|<([a-z][a-z0-9_-]{0,40})>|\$\{([A-Z][A-Z0-9_]{0,40})\}|\$([A-Z][A-Z0-9_]{0,40})|(?:^|/)([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:$|/)",
        )
        .expect("valid")
    });
    let mut pieces = Vec::new();
    let mut at = 0;
    for caps in PATTERN.captures_iter(value) {
        let (m, name) = match (1..=5).find_map(|i| caps.get(i)) {
            Some(name) => (
                if caps.get(5).is_some() {
                    name
                } else {
                    caps.get(0).unwrap_or(name)
                },
                name,
            ),
            None => continue,
        };
        if m.start() > at {
            pieces.push(Piece::Literal(&value[at..m.start()]));
        }
        pieces.push(Piece::Placeholder {
            name: name.as_str().to_ascii_lowercase().replace('-', "_"),
            seen: m.as_str(),
        });
        at = m.end();
    }
    if at < value.len() {
        pieces.push(Piece::Literal(&value[at..]));
    }
    pieces
}

/// Flags and positional words of a command, read with the flags that take a value.
#[derive(Debug, Default)]
pub struct Args {
    pub flags: Vec<(String, String)>,
    pub pos: Vec<String>,
    /// Words after `--`.
    pub rest: Vec<Word>,
}

impl Args {
    pub fn read(words: &[Word], with_value: &[&str]) -> Args {
        let mut args = Args::default();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i].value;
            i += 1;
            if w == "--" {
                args.rest = words[i..].to_vec();
                break;
            }
            if let Some(long) = w.strip_prefix("--").filter(|_| !words[i - 1].quoted) {
                let (name, value) = match long.split_once('=') {
                    Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                let value = match value {
                    Some(v) => v,
                    None if with_value.contains(&name.as_str()) && i < words.len() => {
                        i += 1;
                        words[i - 1].value.clone()
                    }
                    None => String::new(),
                };
                args.flags.push((name, value));
            } else if w.len() > 1 && w.starts_with('-') && !words[i - 1].quoted {
                let letters: Vec<char> = w[1..].chars().collect();
                for (j, c) in letters.iter().enumerate() {
                    let name = format!("-{c}");
                    if with_value.contains(&name.as_str()) {
                        let attached: String = letters[j + 1..].iter().collect();
                        let value = if !attached.is_empty() {
                            attached.trim_start_matches('=').to_string()
                        } else if i < words.len() {
                            i += 1;
                            words[i - 1].value.clone()
                        } else {
                            String::new()
                        };
                        args.flags.push((name, value));
                        break;
                    }
                    args.flags.push((name, String::new()));
                }
            } else {
                args.pos.push(w.clone());
            }
        }
        args
    }

    pub fn get(&self, names: &[&str]) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, names: &[&str]) -> bool {
        self.flags.iter().any(|(n, _)| names.contains(&n.as_str()))
    }

    /// Flags other than these: what the mapping would silently drop.
    pub fn others<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.flags
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !known.contains(n))
            .collect()
    }
}

/// Maps one command.
pub fn map(command: &Command, ctx: &mut Ctx) -> Mapped {
    ctx.line = command.line;
    if command.unread == Some(super::shell::HEREDOC) {
        return Mapped::Skipped(format!(
            "{}: write it as a shell action by hand",
            super::shell::HEREDOC
        ));
    }
    if let Some(why) = command.unread {
        return shell(command, ctx, Some(why));
    }
    let native = native(command, ctx);
    match native {
        Some(mapped) => mapped,
        None => shell(command, ctx, None),
    }
}

/// The native form of a command, if there is one.
fn native(command: &Command, ctx: &mut Ctx) -> Option<Mapped> {
    let stages = &command.stages;
    let first = stages.first()?;
    // `sudo` changes who runs a command; a native check or action needs no one to run it.
    let words: &[Word] = match first.first().map(|w| w.value.as_str()) {
        Some("sudo") => &first[1..],
        _ => first,
    };
    let program = words.first()?.value.as_str();
    let program = program.rsplit('/').next().unwrap_or(program);
    let args = &words[1..];
    let filters = &stages[1..];
    match program {
        "watch" => watch(args, command, ctx),
        "sleep" => Some(Mapped::Skipped(
            "a pause: oncall's steps run in order, and a wait polls a check until it holds".into(),
        )),
        "cd" => Some(Mapped::Skipped(
            "changes the shell's folder, and oncall runs each command on its own: write the folder into the commands".into(),
        )),
        "export" => Some(Mapped::Skipped(
            "sets a variable for later commands, and oncall runs each command on its own: make it a param".into(),
        )),
        "kubectl" => kubectl::map(args, filters, ctx),
        "curl" => curl::map(args, filters, ctx),
        "psql" => sql::psql(args, filters, ctx),
        "docker-compose" => local::compose(args, filters, ctx),
        "docker" if args.first().is_some_and(|w| w.value == "compose") => {
            local::compose(&args[1..], filters, ctx)
        }
        "docker" => local::docker(args, filters, ctx),
        _ if filters.is_empty() || ["du", "netstat", "ss", "grep", "egrep", "fgrep"].contains(&program) => {
            if sql::is_statement(&command.text) {
                return sql::statement(&command.text, ctx);
            }
            local::host(program, args, filters, ctx)
        }
        _ => None,
    }
}

/// `watch -n N 'command'`: the command's check, polled every N seconds.
fn watch(args: &[Word], command: &Command, ctx: &mut Ctx) -> Option<Mapped> {
    // watch's own flags end at the first word of the command it watches.
    let mut interval = None;
    let mut i = 0;
    while let Some(word) = args.get(i).filter(|w| w.value.starts_with('-')) {
        let flag = word.value.as_str();
        if flag == "-n" || flag == "--interval" {
            interval = args.get(i + 1).map(|w| w.value.clone());
            i += 1;
        } else if let Some(n) = flag
            .strip_prefix("--interval=")
            .or_else(|| flag.strip_prefix("-n"))
        {
            interval = Some(n.to_string());
        }
        i += 1;
    }
    let every = interval
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| n.is_finite())
        .map_or(2, |n| n.ceil().clamp(1.0, 3600.0) as u64);
    // The watched command: one quoted word, or the rest of the words as written.
    let text = match &args[i.min(args.len())..] {
        [one] => one.value.clone(),
        rest => rest
            .iter()
            .map(|w| w.raw.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let script = super::shell::read(&text, command.line, super::shell::Prompts::None);
    let [inner] = script.commands.as_slice() else {
        return None;
    };
    if inner.unread.is_some() {
        return None;
    }
    match native(inner, ctx)? {
        Mapped::Native { items, every: None }
            if items.len() == 1 && items[0].role == Role::Check =>
        {
            Some(Mapped::Native {
                items,
                every: Some(every),
            })
        }
        _ => None,
    }
}

/// The shell fallback: a check only when every program in it is known to only read.
fn shell(command: &Command, ctx: &mut Ctx, unread: Option<&str>) -> Mapped {
    let asked = match unread {
        Some(why) => Some(format!("{why}: oncall cannot tell what it does")),
        None => readonly::judge(command).err(),
    };
    match fallback_text(command, ctx) {
        Ok(text) => Mapped::Shell {
            command: text,
            asked,
        },
        Err(why) => Mapped::Skipped(why),
    }
}

/// The command as the runbook's shell runs it: as written, with its placeholders and the
/// credentials it holds made params.
fn fallback_text(command: &Command, ctx: &mut Ctx) -> Result<String, String> {
    if command.text.contains("{{") || command.text.contains("{%") || command.text.contains("{#") {
        return Err("it holds `{{`, `{%` or `{#`, which a runbook reads as a template: write it as a shell check by hand".into());
    }
    let found: Vec<Vec<(usize, secret::Found)>> = command
        .stages
        .iter()
        .map(|words| {
            let values: Vec<&str> = words.iter().map(|w| w.value.as_str()).collect();
            secret::in_words(&values)
        })
        .collect();
    if let Some((_, first)) = found.iter().flatten().next()
        && command.unread.is_some()
    {
        return Err(format!(
            "it holds a credential ({}) in a command oncall does not read whole: write it by hand, with the credential as a secret param",
            first.what
        ));
    }
    let has_placeholder = command.stages.iter().flatten().any(|w| {
        !w.single
            && placeholders(&w.value)
                .iter()
                .any(|p| matches!(p, Piece::Placeholder { .. }))
    });
    let has_secret = found.iter().any(|f| !f.is_empty());
    if !(has_placeholder || has_secret) || command.unread.is_some() {
        return Ok(command.text.clone());
    }
    // The words are rebuilt around the params; a redirection is not among them.
    if command.text.contains(['<', '>']) {
        return Err(
            "a placeholder or a credential in a command with a redirection: write it as a shell action by hand"
                .into(),
        );
    }
    let stages: Vec<String> = command
        .stages
        .iter()
        .zip(&found)
        .map(|(words, found)| {
            words
                .iter()
                .enumerate()
                .map(|(i, w)| shell_word(w, &secret::at(found, i), ctx))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok(stages.join(" | "))
}

/// A word with placeholders or credentials: its literal parts quoted as they were, its params
/// left to the template layer, which quotes every value for the shell.
fn shell_word(word: &Word, secrets: &[&secret::Found], ctx: &mut Ctx) -> String {
    // In single quotes `$NF` and `{end}` are awk's, jq's or jsonpath's, not the page's.
    let placeholder = !word.single
        && placeholders(&word.value)
            .iter()
            .any(|p| matches!(p, Piece::Placeholder { .. }));
    if secrets.is_empty() && !placeholder {
        return word.raw.clone();
    }
    ctx.with_secrets(&word.value, secrets, "", |ctx, text| {
        let mut out = String::new();
        let pieces = if word.single {
            vec![Piece::Literal(text)]
        } else {
            placeholders(text)
        };
        for piece in pieces {
            match piece {
                Piece::Literal("") => {}
                Piece::Literal(s) if word.quoted => out.push_str(&quote(s)),
                Piece::Literal(s) => out.push_str(s),
                Piece::Placeholder { name, seen } => {
                    push_template(&mut out, &ctx.param(&name, seen))
                }
            }
        }
        out
    })
}

/// A literal for `sh`: bare when it is safe, single-quoted otherwise.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A `grep` at the end of a pipeline, as a regular expression: `grep -i "timeout\|memory"` →
/// `(?i)timeout|memory`. None for what a match count cannot say (`-v`, `-A`, several greps).
pub fn grep_filter(filters: &[Vec<Word>]) -> Option<Result<(String, Option<usize>), ()>> {
    let mut pattern = None;
    let mut keep = None;
    for stage in filters {
        let program = stage.first()?.value.as_str();
        let args = Args::read(&stage[1..], &["-e", "-m", "-n", "-A", "-B", "-C"]);
        match program {
            "grep" | "egrep" | "fgrep" if pattern.is_none() => {
                let known = [
                    "-i",
                    "-E",
                    "-F",
                    "-e",
                    "--ignore-case",
                    "--extended-regexp",
                    "--fixed-strings",
                ];
                if !args.others(&known).is_empty()
                    || args.pos.len() > 1 && args.get(&["-e"]).is_none()
                {
                    return Some(Err(()));
                }
                let Some(p) = args
                    .get(&["-e"])
                    .map(str::to_string)
                    .or_else(|| args.pos.first().cloned())
                else {
                    return Some(Err(()));
                };
                let fixed = program == "fgrep" || args.has(&["-F", "--fixed-strings"]);
                let extended = program == "egrep" || args.has(&["-E", "--extended-regexp"]);
                let mut regex = if fixed {
                    regex::escape(&p)
                } else if extended {
                    p
                } else {
                    basic_to_extended(&p)
                };
                if args.has(&["-i", "--ignore-case"]) {
                    regex = format!("(?i){regex}");
                }
                if regex::Regex::new(&regex).is_err() {
                    return Some(Err(()));
                }
                pattern = Some(regex);
            }
            "tail" | "head" if keep.is_none() => {
                let Some(n) = line_count(&stage[1..]) else {
                    return Some(Err(()));
                };
                keep = Some(n.clamp(1, crate::spec::MAX_ROWS));
            }
            _ => return Some(Err(())),
        }
    }
    pattern.map(|p| Ok((p, keep)))
}

/// The lines a log command keeps: its pipeline's `grep` as the pattern (every line without one)
/// and the latest `tail -N`, or its own `--tail=N`. None for a pipeline a count cannot say.
pub fn log_lines(filters: &[Vec<Word>], args: &Args) -> Option<(String, Option<usize>)> {
    let (matches, keep) = match grep_filter(filters) {
        Some(Ok(found)) => found,
        Some(Err(())) => return None,
        None if filters.is_empty() => (".".to_string(), None),
        None => return None,
    };
    let keep = keep.or_else(|| {
        args.get(&["--tail"])
            .and_then(|n| n.parse().ok())
            .map(|n: usize| n.clamp(1, crate::spec::MAX_ROWS))
    });
    Some((matches, keep))
}

/// How many lines `tail` or `head` keeps: `-20`, `-n 20`, `-n20`, `--lines=20`, or 10.
pub fn line_count(words: &[Word]) -> Option<usize> {
    let values: Vec<&str> = words.iter().map(|w| w.value.as_str()).collect();
    let n = match values.as_slice() {
        [] => "10",
        ["-n", n] => n,
        [w] => w
            .strip_prefix("--lines=")
            .or_else(|| w.strip_prefix("-n"))
            .or_else(|| w.strip_prefix('-'))?,
        _ => return None,
    };
    n.parse().ok()
}

/// A POSIX basic regular expression as the extended syntax the `regex` crate reads.
fn basic_to_extended(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('|' | '(' | ')' | '+' | '?' | '{' | '}')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '|' | '(' | ')' | '+' | '?' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An id part from a name: `api-gateway` → `api_gateway`.
pub fn ident(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').chars().take(40).collect()
}

/// Message texts as templates: a `{name}` becomes a param's or a check's value where the names
/// match, or what the incident knows (`{timestamp}`, `{duration}`, `P{severity}`); the rest stays
/// as written, for the engineer to fill in.
pub fn messages(draft: &mut Draft) {
    static FIELD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(P?)\{([A-Za-z][A-Za-z0-9_ ]{0,40})\}").expect("valid")
    });
    let checks: std::collections::BTreeSet<String> = draft
        .steps
        .iter()
        .flat_map(|s| &s.checks)
        .map(|c| c.id.clone())
        .collect();
    for (_, text) in &mut draft.messages {
        let mut out = String::new();
        let mut at = 0;
        for caps in FIELD.captures_iter(text) {
            let whole = caps.get(0).expect("a match");
            let p = &caps[1];
            let name = ident(&caps[2]);
            let value = if draft.params.contains_key(&name) {
                format!("{p}{{{{ params.{name} }}}}")
            } else if checks.contains(&name) {
                format!("{p}{{{{ checks.{name}.value }}}}")
            } else {
                match (p, name.as_str()) {
                    ("P", "severity" | "level") => "{{ incident.severity }}".into(),
                    (_, "timestamp" | "started" | "start_time") => {
                        format!("{p}{{{{ incident.started }}}}")
                    }
                    (_, "duration") => format!("{p}{{{{ incident.duration }}}}"),
                    _ => continue,
                }
            };
            out.push_str(&literal(&text[at..whole.start()]));
            push_template(&mut out, &value);
            at = whole.end();
        }
        out.push_str(&literal(&text[at..]));
        *text = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_in_every_form() {
        let names = |v: &str| -> Vec<String> {
            placeholders(v)
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Placeholder { name, .. } => Some(name),
                    Piece::Literal(_) => None,
                })
                .collect()
        };
        assert_eq!(names("/api/v1/alerts/{alert_id}/silence"), ["alert_id"]);
        assert_eq!(names("https://huggingface.co/MODEL_NAME"), ["model_name"]);
        assert_eq!(names("MODEL_NAME"), ["model_name"]);
        assert_eq!(names("/data/<model-name>/x"), ["model_name"]);
        assert_eq!(names("${NAMESPACE}"), ["namespace"]);
        assert!(names("ERROR").is_empty());
        assert!(names("DB_MAX_CONNECTIONS=50").is_empty());
    }

    #[test]
    fn a_basic_grep_pattern_becomes_an_extended_one() {
        assert_eq!(
            basic_to_extended(r"timeout\|memory\|gpu"),
            "timeout|memory|gpu"
        );
        assert_eq!(basic_to_extended("a(b)"), r"a\(b\)");
    }
}
