//! The README's console examples that need no infrastructure (`list`, `show`, `validate`, `drill`,
//! errors), run against the real binary by trycmd. Parts that change from run to run are written
//! `[..]` (in a line) and `...` (whole lines); examples that need servers are marked `ignore`.
use super::support::{Sandbox, bin};

#[test]
fn the_readme_examples_hold() {
    let sb = Sandbox::new();
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    // Run in a folder of its own: no ./runbooks of the repository, the README's own files.
    let case = sb.work().join("README.md");
    std::fs::copy(&readme, &case).unwrap();
    // trycmd runs the commands of `X.md` in `X.in`.
    let folder = sb.work().join("README.in");
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["broken.yaml", "misspelt.yaml", "api-down.md"] {
        let from = super::support::fixture(&format!("readme/{file}"));
        std::fs::copy(from, folder.join(file)).unwrap();
    }
    trycmd::TestCases::new()
        .register_bin("oncall", bin())
        .register_bin("cat", std::path::Path::new("/bin/cat"))
        .env(
            "HOME",
            sb.state().parent().unwrap().join("home").to_string_lossy(),
        )
        .env(
            "XDG_CONFIG_HOME",
            sb.state()
                .parent()
                .unwrap()
                .join("config")
                .to_string_lossy(),
        )
        .env("ONCALL_STATE_DIR", sb.state().to_string_lossy())
        .env("ONCALL_USER", "alice")
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .case(&case);
    // `ONCALL_README_OUT=FILE` keeps the README as trycmd saw it (with `TRYCMD=overwrite`: as it would write it).
    if let Ok(out) = std::env::var("ONCALL_README_OUT") {
        std::fs::copy(&case, out).unwrap();
    }
}
