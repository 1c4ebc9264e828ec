//! Bundles `runbooks/*.yaml` and `runbooks/scenarios/<runbook>/*.yaml` into the binary,
//! so `oncall` works from any folder after install.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

fn main() {
    // Read when the script runs, not baked in when it is compiled: cargo may reuse a compiled
    // build script for a checkout in another folder.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("runbooks");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::from("pub static RUNBOOKS: &[(&str, &str)] = &[\n");
    for file in yaml_files(&root) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        writeln!(out, "    ({name:?}, include_str!({:?})),", file.display()).unwrap();
    }
    out.push_str("];\npub static SCENARIOS: &[(&str, &str, &str)] = &[\n");
    let scenarios = root.join("scenarios");
    println!("cargo:rerun-if-changed={}", scenarios.display());
    let mut dirs: Vec<_> = fs::read_dir(&scenarios)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        let runbook = dir.file_name().unwrap().to_string_lossy().to_string();
        for file in yaml_files(&dir) {
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            writeln!(
                out,
                "    ({runbook:?}, {name:?}, include_str!({:?})),",
                file.display()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("bundled.rs"),
        out,
    )
    .unwrap();
}
