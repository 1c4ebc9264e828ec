# Recipes for working on oncall. `just` is optional: every recipe is a plain command you can
# copy, and `bash scripts/test.sh` needs nothing but Rust (it installs Prometheus if missing).

# List the recipes
default:
    @{{ just_executable() }} --list --justfile {{ justfile() }}

# Build the release binary (target/release/oncall)
build:
    cargo build --release

# Everything CI runs: cargo test, cargo fmt --check, clippy (installs Prometheus if missing)
test:
    bash scripts/test.sh

# Formatting and lints, without the tests
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Format the code
fmt:
    cargo fmt

# Benchmarks: the engine (parallel checks, start-up, memory), Kubernetes (5,000 pods, 100 MB of logs, beside kubectl, the sweep at 0 and 50 ms round trips), Docker (beside docker-compose)
bench:
    cargo bench --bench engine
    cargo bench --bench kube
    cargo bench --bench docker
    cargo bench --bench store

# Regenerate completions/ for every shell (a test checks they are current)
completions:
    #!/usr/bin/env bash
    set -euo pipefail
    for s in bash zsh fish elvish powershell; do
        case "$s" in
            bash) file=oncall.bash ;;
            zsh) file=_oncall ;;
            fish) file=oncall.fish ;;
            elvish) file=oncall.elv ;;
            powershell) file=_oncall.ps1 ;;
        esac
        cargo run --quiet -- completions "$s" > "completions/$file"
    done

# Rehearse error-budget on a scenario, no infrastructure needed (queue-overflow exits 1: its checks fail)
drill scenario="queue-overflow":
    cargo run --release -- drill error-budget --scenario {{ scenario }}

# Validate every runbook (bundled, config dir, $ONCALL_RUNBOOK_PATH, ./runbooks) and its scenarios
validate:
    cargo run --quiet -- validate

# Fuzz the loader, validator, show and drills with mutated runbooks, scenarios and configs for
# SECONDS (release build); failing inputs are saved under fuzz-failures/ (replay: cd there,
# `oncall --config config.yaml validate runbooks/fuzz.yaml`, or drill its runbook with `--scenario case`)
fuzz seconds="600":
    ONCALL_FUZZ_SECONDS={{ seconds }} cargo test --release --test cli trust::fuzz::fuzz_for_as_long_as_asked -- --ignored --nocapture
