//! `oncall import FILE.md`: the runbook on stdout or in the `--to` file, and the report of what
//! became of each command on stderr (or, with `-o json`, all of it as JSON on stdout).

use super::Setup;
use crate::cli::Output;
use crate::import::{self, Imported};
use crate::runbook::{Origin, Source, validate};
use crate::view::{print_json, print_out};
use serde_json::json;
use std::path::Path;

pub fn run(setup: &Setup, file: &Path, to: Option<&Path>, id: Option<&str>) -> anyhow::Result<i32> {
    let page = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let to = to.filter(|p| p.as_os_str() != "-");
    // `--to runbooks/x.yaml` makes runbook x, so `oncall run x` finds it.
    let stem = to
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| import::valid_id(s));
    let id = id.or(stem.as_deref());
    let imported = import::import(&page, &file.display().to_string(), id)?;
    let source = Source {
        name: to.map_or("<imported>".into(), |p| p.display().to_string()),
        origin: Origin::File(to.map(Path::to_path_buf).unwrap_or_default()),
        text: imported.yaml.clone(),
    };
    let problems: Vec<String> = match validate::load(&source) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    };
    // A runbook that does not validate is not written where the catalog would load it.
    if let Some(path) = to.filter(|_| problems.is_empty()) {
        let partial = path.with_extension("yaml.partial");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&partial, &imported.yaml)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if setup.global.output == Output::Json {
        print_json(&json!({
            "file": file.display().to_string(),
            "id": imported.id,
            "report": imported.tally,
            "native_share": (imported.tally.native_share() * 10.0).round() / 10.0,
            "valid": problems.is_empty(),
            "problems": problems,
            "runbook": imported.yaml,
        }))?;
    } else {
        if to.is_none() {
            print_out(&imported.yaml)?;
        }
        // The page's text is in the report: no escape sequence of it reaches the terminal.
        let columns = crate::view::Fit::new(setup.global.wide, true).columns();
        eprint!(
            "{}",
            crate::view::wrap_lines(
                &crate::sanitize::text(&report(file, to, &imported, &problems)),
                columns
            )
        );
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}

fn report(file: &Path, to: Option<&Path>, imported: &Imported, problems: &[String]) -> String {
    let t = &imported.tally;
    let mut out = format!(
        "imported {} as runbook {}{}\n",
        file.display(),
        imported.id,
        to.map_or(String::new(), |p| format!(" in {}", p.display()))
    );
    out.push_str(&format!(
        "  {} command(s): {} native ({:.0}%): {} check(s), {} action(s)\n",
        t.commands,
        t.native_checks + t.native_actions,
        t.native_share(),
        t.native_checks,
        t.native_actions,
    ));
    out.push_str(&format!(
        "  not native: {} shell check(s), {} shell action(s), {} skipped\n",
        t.shell_checks.len(),
        t.shell_actions.len(),
        t.skipped.len()
    ));
    if t.messages > 0 || t.waits > 0 {
        out.push_str(&format!(
            "  {} message(s), {} wait(s)\n",
            t.messages, t.waits
        ));
    }
    for (title, found) in [
        ("shell checks (only read; review them)", &t.shell_checks),
        (
            "shell actions (asked before each; review them)",
            &t.shell_actions,
        ),
    ] {
        if !found.is_empty() {
            out.push_str(&format!("  {title}:\n"));
            for f in found {
                out.push_str(&format!("    line {}: {}\n", f.line, f.command));
                if let Some(why) = &f.why {
                    out.push_str(&format!("      asked because {why}\n"));
                }
            }
        }
    }
    if !t.secret_params.is_empty() {
        out.push_str("  secret params (credentials of the page, not written; give each with -p NAME=VALUE):\n");
        for s in &t.secret_params {
            out.push_str(&format!("    line {}: {} ({})\n", s.line, s.param, s.what));
        }
    }
    if !t.skipped.is_empty() {
        out.push_str("  skipped:\n");
        for s in &t.skipped {
            out.push_str(&format!("    line {}: {}: {}\n", s.line, s.command, s.why));
        }
    }
    for note in &t.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    if problems.is_empty() {
        let target = to.map_or(imported.id.clone(), |p| p.display().to_string());
        out.push_str(&format!(
            "  valid; next: oncall show {target} and oncall run {} --dry-run\n",
            imported.id
        ));
    } else {
        out.push_str("  the runbook does not validate, so nothing was written (oncall import should not make such a runbook: please report it):\n");
        for p in problems {
            out.push_str(&format!("    {p}\n"));
        }
    }
    out
}
