//! `gpu_kill`: ending one process that holds GPU memory. Which one is the runbook's rule
//! (`choose`), a pid it names, or a pid the engineer types at the prompt from what NVML lists;
//! never oncall itself, a parent or a child of it. The plan names the process, its command and
//! the memory it holds as read when planning: from NVML in a live run or a dry run, from the
//! readings of the run's GPU checks in a drill.

use super::{Error, Snapshot};
use crate::approval::Pick;
use crate::backends::host::bytes;
use crate::backends::kinds::{ActionSpec, CheckKind};
use crate::backends::reading::Table;
use crate::backends::{BackendError, Plan, PlanContext, Prepared, Request, duration, humanize};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{S, ScalarValue, bounds};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// A GPU with more of its memory in use than this (percent) is full, unless `full_above` says.
const DEFAULT_FULL_ABOVE: f64 = 95.0;

/// End a process holding GPU memory: TERM, then KILL after `grace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuKill {
    /// The rule that picks the process (default `largest_on_full_gpu`).
    #[serde(default)]
    pub choose: Option<S<String>>,
    /// Percent of a GPU's memory in use above which it is full: a number or a template.
    #[serde(default)]
    pub full_above: Option<S<ScalarValue>>,
    /// A process to end instead of the rule's; a template that renders empty leaves it to the rule.
    #[serde(default)]
    pub pid: Option<S<String>>,
    #[serde(default)]
    pub grace: Option<S<String>>,
}

/// How `choose` picks the process to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The one holding the most memory on a GPU above `full_above`.
    LargestOnFullGpu,
    /// The one holding the most memory on any GPU.
    Largest,
}

impl Rule {
    const NAMES: &'static str = "largest_on_full_gpu or largest";

    fn parse(word: &str) -> Option<Rule> {
        match word {
            "largest_on_full_gpu" => Some(Rule::LargestOnFullGpu),
            "largest" => Some(Rule::Largest),
            _ => None,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Rule::LargestOnFullGpu => "largest_on_full_gpu",
            Rule::Largest => "largest",
        }
    }

    /// Where the rule looks, in words: `on a GPU above 95% of its memory`.
    fn scope(self, full_above: f64) -> String {
        match self {
            Rule::LargestOnFullGpu => format!(
                "on a GPU above {}% of its memory",
                crate::engine::observation::format_number(full_above)
            ),
            Rule::Largest => "on any GPU".into(),
        }
    }

    fn admits(self, holder: &Holder) -> bool {
        self == Rule::Largest || holder.full
    }
}

/// A process holding GPU memory, as NVML listed it or the run's checks recorded it.
#[derive(Debug, Clone, PartialEq)]
struct Holder {
    gpu: u32,
    pid: u32,
    command: String,
    /// Bytes, where known; the largest is chosen by this.
    memory: Option<u64>,
    /// As read: `56.1 GiB`.
    memory_text: String,
    /// Its GPU is above `full_above`.
    full: bool,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "pid {} ({}) holding {} on GPU {}",
            self.pid, self.command, self.memory_text, self.gpu
        )
    }
}

/// The processes NVML lists, each with whether its GPU is full.
fn listed(snapshot: Snapshot, full_above: f64) -> Vec<Holder> {
    snapshot
        .devices
        .into_iter()
        .flat_map(|d| {
            let full = d.percent_used() > full_above;
            d.processes
                .into_iter()
                .map(move |(pid, command, memory)| Holder {
                    gpu: d.index,
                    pid,
                    command,
                    memory,
                    memory_text: memory.map_or("?".into(), bytes),
                    full,
                })
        })
        .collect()
}

/// The processes the run's last `gpu_processes` reading recorded, each GPU judged full by the
/// last `gpus` reading; None when no `gpu_processes` check has been read.
fn recorded(readings: &[(&CheckKind, &Table)], full_above: f64) -> Option<Vec<Holder>> {
    let last = |want: fn(&CheckKind) -> bool| {
        readings
            .iter()
            .rev()
            .find(|(kind, _)| want(kind))
            .map(|(_, t)| *t)
    };
    let processes = last(|k| matches!(k, CheckKind::GpuProcesses(_)))?;
    let full_gpus: Vec<u32> = last(|k| matches!(k, CheckKind::Gpus(_)))
        .map(|t| {
            t.as_maps()
                .iter()
                .filter(|row| row.get("value").and_then(Value::as_f64) > Some(full_above))
                .filter_map(|row| whole(row.get("gpu")?))
                .collect()
        })
        .unwrap_or_default();
    Some(
        processes
            .as_maps()
            .iter()
            .filter_map(|row| {
                let gpu = whole(row.get("gpu")?)?;
                let memory_text = row
                    .get("memory")
                    .map(crate::engine::observation::display)
                    .unwrap_or_else(|| "?".into());
                Some(Holder {
                    gpu,
                    pid: whole(row.get("pid")?)?,
                    command: row
                        .get("command")
                        .map(crate::engine::observation::display)
                        .unwrap_or_else(|| "?".into()),
                    memory: parse_bytes(&memory_text),
                    memory_text,
                    full: full_gpus.contains(&gpu),
                })
            })
            .collect(),
    )
}

/// A GPU index or a pid as a reading holds it: a number, or its digits as text.
fn whole(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `56.1 GiB` (as `bytes` writes it) back to a number of bytes, near enough to compare.
fn parse_bytes(text: &str) -> Option<u64> {
    let (number, unit) = text.trim().split_once(' ')?;
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "B" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    (number >= 0.0).then_some((number * scale as f64) as u64)
}

/// What `pid` is to oncall, when it is oncall itself, one of its parents or one of its children.
pub fn own_tree(pid: u32) -> Option<&'static str> {
    let me = std::process::id();
    if pid == me {
        Some("oncall itself")
    } else if ancestors(me).contains(&pid) {
        Some("a parent of oncall (the shell or session that runs it)")
    } else if ancestors(pid).contains(&me) {
        Some("a child of oncall")
    } else {
        None
    }
}

/// The chain of parents of a process, from /proc, up to the first process.
fn ancestors(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut current = pid;
    // A cycle cannot happen in /proc, but a bound keeps a damaged read from looping.
    while chain.len() < 4096 {
        let Some(parent) = parent(current).filter(|p| *p != 0) else {
            break;
        };
        chain.push(parent);
        current = parent;
    }
    chain
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesised command name: the state, then the parent's pid.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A pid as typed or rendered: a whole number above 1 (0 and 1 are never a GPU job).
fn parse_pid(text: &str) -> Result<u32, Error> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| Error::BadPid(text.trim().into()))
}

/// A named pid, if NVML lists it and it is not oncall's own tree.
fn named(pid: u32, holders: &[Holder]) -> Result<&Holder, Error> {
    if let Some(what) = own_tree(pid) {
        return Err(Error::OwnTree { pid, what });
    }
    holders
        .iter()
        .find(|h| h.pid == pid)
        .ok_or_else(|| Error::NotListed {
            pid,
            listed: list(holders),
        })
}

fn list(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "it lists none".into();
    }
    let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
    format!("it lists {}", pids.join(", "))
}

/// The rule's choice: the most memory where it looks, the first listed on a tie, never oncall's
/// own tree. The words say how many it chose from.
fn choose(rule: Rule, holders: &[Holder], full_above: f64) -> Result<(&Holder, String), Error> {
    let eligible: Vec<&Holder> = holders
        .iter()
        .filter(|h| rule.admits(h) && own_tree(h.pid).is_none())
        .collect();
    let chosen = eligible
        .iter()
        .copied()
        .rev()
        .max_by_key(|h| h.memory.unwrap_or(0))
        .ok_or_else(|| Error::NothingToEnd(rule.scope(full_above)))?;
    let why = format!(
        "chosen by choose: {}: the largest of {} process(es) {}",
        rule.key(),
        eligible.len(),
        rule.scope(full_above)
    );
    Ok((chosen, why))
}

impl GpuKill {
    fn rule(&self) -> Result<Rule, Error> {
        match &self.choose {
            None => Ok(Rule::LargestOnFullGpu),
            Some(word) => Rule::parse(&word.value).ok_or_else(|| Error::Spec {
                what: "choose",
                why: format!("'{}': use {}", word.value, Rule::NAMES),
            }),
        }
    }

    fn full_above(&self, ctx: &Value) -> Result<f64, BackendError> {
        let text = match self.full_above.as_ref().map(|f| &f.value) {
            None => return Ok(DEFAULT_FULL_ABOVE),
            Some(ScalarValue::Text(template)) => expr::render(template, ctx)?,
            Some(other) => other.to_json().to_string(),
        };
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                Error::Spec {
                    what: "full_above",
                    why: format!("'{text}' is not a percentage from 0 to 100"),
                }
                .into()
            })
    }
}

impl ActionSpec for GpuKill {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(word) = &self.choose
            && Rule::parse(&word.value).is_none()
        {
            let hint = match crate::spec::validate::closest(
                &word.value,
                ["largest_on_full_gpu", "largest"],
            ) {
                Some(near) => format!("did you mean '{near}'? choose: {}", Rule::NAMES),
                None => format!("choose: {}", Rule::NAMES),
            };
            v.problem(
                word,
                format!("no rule '{}' to choose a process by", word.value),
                Some(hint),
            );
        }
        if let Some(full) = &self.full_above {
            match &full.value {
                ScalarValue::Int(n) if (0..=100).contains(n) => {}
                ScalarValue::Float(f) if (0.0..=100.0).contains(f) => {}
                ScalarValue::Text(t) if t.contains("{{") => {
                    let at = S::new(t.clone(), full.referenced, full.defined);
                    v.template(&at, "`full_above`");
                }
                _ => v.problem(
                    full,
                    "`full_above` must be a percentage or a template".into(),
                    Some("the percent of a GPU's memory in use above which it is full, 0 to 100 (default 95)".into()),
                ),
            }
        }
        if let Some(pid) = &self.pid {
            v.template(pid, "field");
        }
        if let Some(grace) = &self.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let rule = self.rule()?;
        let full_above = self.full_above(ctx)?;
        let grace = duration(&self.grace, "grace")?.unwrap_or(DEFAULT_GRACE);
        let pid = match &self.pid {
            Some(template) => expr::render(&template.value, ctx)?,
            None => String::new(),
        };
        let holders = match with.systems {
            Some(systems) => listed(systems.gpu.snapshot().await?, full_above),
            None => recorded(&with.readings, full_above).ok_or_else(|| {
                Error::NotRead(format!(
                    "the largest process holding {}",
                    rule.scope(full_above)
                ))
            })?,
        };
        let (chosen, why) = match (with.pick, pid.trim()) {
            (Some(typed), _) => (
                named(parse_pid(typed)?, &holders)?,
                "typed at the prompt in place of the planned process".to_string(),
            ),
            (None, "") => choose(rule, &holders, full_above)?,
            (None, given) => (
                named(parse_pid(given)?, &holders)?,
                "named by the runbook's pid".to_string(),
            ),
        };
        let read = match with.systems {
            Some(_) => "as NVML listed it when planned".to_string(),
            None => "as the run's GPU checks recorded it".to_string(),
        };
        let plan = Plan {
            backend: "gpu".into(),
            request: format!(
                "kill -TERM {}, then kill -KILL after {}",
                chosen.pid,
                humanize(grace)
            ),
            changes: vec![format!("ends {}, {read}", chosen.describe()), why],
            ..Plan::default()
        };
        let kill = Kill {
            pid: chosen.pid,
            grace,
        };
        Ok(Prepared::new(plan, Request::GpuKill(kill)).with_pick(pick(chosen.pid, holders)))
    }
}

/// Another pid from what NVML lists, typed at the prompt: refused (with why) when it is not a
/// pid, not listed, or oncall's own tree.
fn pick(planned: u32, holders: Vec<Holder>) -> Pick {
    Pick {
        what: "or a pid from the table".into(),
        check: Arc::new(move |typed: &str| {
            let pid = parse_pid(typed).map_err(|_| {
                format!(
                    "'{}' is not an answer: type y, s, r or a, or a pid NVML lists ({})",
                    typed.trim(),
                    list(&holders)
                )
            })?;
            if pid == planned {
                return Err(format!(
                    "pid {pid} is the process planned: type y to end it"
                ));
            }
            named(pid, &holders)
                .map(|h| h.pid.to_string())
                .map_err(|e| e.to_string())
        }),
    }
}

/// An approved end of a GPU process: TERM, then KILL after the grace period.
pub struct Kill {
    pub pid: u32,
    pub grace: Duration,
}

impl Kill {
    pub(in crate::backends) async fn apply(&self) -> Result<String, Error> {
        let pid = self.pid;
        // Checked again at the last moment: the tree may have changed since the plan.
        if let Some(what) = own_tree(pid) {
            return Err(Error::OwnTree { pid, what });
        }
        signal(pid, libc::SIGTERM)?;
        let started = Instant::now();
        while started.elapsed() < self.grace {
            if !alive(pid) {
                return Ok(format!(
                    "pid {pid} ended after SIGTERM in {}",
                    humanize(started.elapsed())
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !alive(pid) {
            return Ok(format!("pid {pid} ended after SIGTERM"));
        }
        signal(pid, libc::SIGKILL)?;
        Ok(format!(
            "pid {pid} did not end within {} of SIGTERM: sent SIGKILL",
            humanize(self.grace)
        ))
    }
}

fn signal(pid: u32, sig: libc::c_int) -> Result<(), Error> {
    // SAFETY: kill(2) on a single positive pid (checked > 1 when parsed).
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        return Ok(());
    }
    Err(Error::Signal {
        pid,
        cause: std::io::Error::last_os_error().to_string(),
    })
}

/// Running, and not a zombie waiting for its parent to reap it.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    !stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(gpu: u32, pid: u32, gib: u64, full: bool) -> Holder {
        Holder {
            gpu,
            pid,
            command: format!("job{pid}"),
            memory: Some(gib << 30),
            memory_text: bytes(gib << 30),
            full,
        }
    }

    #[test]
    fn the_rule_takes_the_largest_where_it_looks_and_never_oncalls_own_tree() {
        let me = std::process::id();
        let holders = [
            holder(0, 2291734, 22, true),
            holder(0, 48211, 56, true),
            holder(1, 48377, 70, false),
            holder(0, me, 79, true),
        ];
        let (chosen, why) = choose(Rule::LargestOnFullGpu, &holders, 95.0).unwrap();
        assert_eq!(chosen.pid, 48211, "{why}");
        assert!(why.contains("largest of 2 process(es)"), "{why}");
        assert_eq!(choose(Rule::Largest, &holders, 95.0).unwrap().0.pid, 48377);
        let none = choose(Rule::LargestOnFullGpu, &holders[2..], 95.0).unwrap_err();
        assert_eq!(
            none.to_string(),
            "nothing to end: no process holds memory on a GPU above 95% of its memory"
        );
        let tie = [holder(0, 10, 5, true), holder(0, 11, 5, true)];
        assert_eq!(
            choose(Rule::Largest, &tie, 95.0).unwrap().0.pid,
            10,
            "first listed"
        );
    }

    #[test]
    fn a_named_pid_must_be_listed_and_not_oncall_itself_or_a_parent() {
        let holders = [holder(0, 48211, 56, true)];
        assert_eq!(named(48211, &holders).unwrap().pid, 48211);
        assert_eq!(
            named(4, &holders).unwrap_err().to_string(),
            "pid 4 is not among the processes NVML lists on a GPU (it lists 48211)"
        );
        let parent = std::os::unix::process::parent_id();
        assert!(
            named(parent, &holders)
                .unwrap_err()
                .to_string()
                .contains("a parent of oncall")
        );
        let check = pick(48211, holders.to_vec()).check;
        assert!(check("abc").unwrap_err().contains("'abc' is not an answer"));
        assert!(
            check("48211")
                .unwrap_err()
                .contains("is the process planned")
        );
    }

    #[test]
    fn memory_as_written_reads_back_near_enough_to_compare() {
        assert_eq!(
            parse_bytes("56.1 GiB"),
            Some((56.1 * (1u64 << 30) as f64) as u64)
        );
        assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("?"), None);
        assert!(parse_bytes("56.1 GiB") > parse_bytes("22.6 GiB"));
    }
}
