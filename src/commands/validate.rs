//! `oncall validate`: every problem as `file:line:column: message`, with a hint.

use super::Setup;
use crate::runbook::{self, Source, validate};
use crate::spec::validate::Problem;
use crate::view::{print_json, print_out};
use serde_json::json;

pub fn run(setup: &Setup, paths: &[std::path::PathBuf]) -> anyhow::Result<i32> {
    let sources: Vec<Source> = if paths.is_empty() {
        runbook::discover(&setup.search)
    } else {
        let mut sources = Vec::new();
        for path in paths {
            sources.push(
                Source::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            );
        }
        sources
    };
    let check = |source: &Source| {
        let mut problems = Vec::new();
        match validate::load(source) {
            Ok(rb) => {
                for scenario in runbook::scenarios(&rb.id.value, &setup.search) {
                    if let Err(mut more) = validate::load_scenario(&scenario.source, &rb) {
                        problems.append(&mut more);
                    }
                }
            }
            Err(mut found) => problems.append(&mut found),
        }
        (source.name.clone(), problems)
    };
    // Files are independent: check them on every core, reporting in their order.
    let results: Vec<(String, Vec<Problem>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| scope.spawn(move || check(source)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("validation does not panic"))
            .collect()
    });
    let failed = results.iter().filter(|(_, p)| !p.is_empty()).count();
    if setup.json() {
        let files: Vec<_> = results
            .iter()
            .map(|(file, problems)| {
                let problems: Vec<_> = problems
                    .iter()
                    .map(|p| json!({ "file": p.file, "line": p.line, "column": p.column, "message": p.message, "hint": p.hint }))
                    .collect();
                json!({ "file": file, "ok": problems.is_empty(), "problems": problems })
            })
            .collect();
        print_json(&json!({ "files": files, "invalid": failed }))?;
    } else {
        let mut text = String::new();
        for (_, problems) in &results {
            for p in problems {
                text.push_str(&format!("{p}\n"));
            }
        }
        print_out(&text)?;
        eprintln!(
            "{} file(s) checked, {} valid, {failed} invalid",
            results.len(),
            results.len() - failed
        );
    }
    Ok(if failed > 0 { 2 } else { 0 })
}
