//! The fake NVIDIA driver library: `tests/fixtures/fake_nvml.c` compiled once per test process into
//! a `libnvidia-ml.so.1` that nvml-wrapper loads like the real one. Its behaviour comes from the
//! environment of the process that loads it:
//!
//! - [`MODE_ENV`] = `two_gpus` (the default), `no_devices` or `init_fails`;
//! - [`PIDS_ENV`] = `"1234,5678"` replaces GPU 0's compute process pids (at most three; `""` means
//!   none), so a test can point them at processes it started itself;
//! - [`MIB_ENV`] = `"20480,51200"` replaces the memory of those process slots, in MiB, in order.
//!
//! The constants below are what the fake reports in `two_gpus` mode.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Selects the fake's behaviour: [`TWO_GPUS`], [`NO_DEVICES`] or [`INIT_FAILS`].
pub const MODE_ENV: &str = "FAKE_NVML_MODE";
/// Comma-separated pids replacing GPU 0's processes (4242 and 4343).
pub const PIDS_ENV: &str = "FAKE_NVML_PIDS";
/// Comma-separated MiB replacing the memory of GPU 0's process slots.
pub const MIB_ENV: &str = "FAKE_NVML_MIB";

pub const TWO_GPUS: &str = "two_gpus";
pub const NO_DEVICES: &str = "no_devices";
pub const INIT_FAILS: &str = "init_fails";

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

pub const DRIVER_VERSION: &str = "550.54.15";
pub const GPU_NAME: &str = "NVIDIA A100-SXM4-80GB";
pub const GPU_UUIDS: [&str; 2] = [
    "GPU-6f1d2c4a-8b3e-4f5a-9c7d-0e1f2a3b4c50",
    "GPU-6f1d2c4a-8b3e-4f5a-9c7d-0e1f2a3b4c51",
];
pub const MEMORY_TOTAL: u64 = 80 * GIB;
/// 79.2 GiB: 99.0% (a hair over) of GPU 0's memory.
pub const GPU0_MEMORY_USED: u64 = 81101 * MIB;
pub const GPU1_MEMORY_USED: u64 = 4 * GIB;
/// (gpu %, memory %) utilization of GPU 0 and GPU 1.
pub const UTILIZATION: [(u32, u32); 2] = [(97, 88), (3, 1)];
/// Degrees Celsius of GPU 0 and GPU 1.
pub const TEMPERATURES: [u32; 2] = [71, 38];
/// GPU 0's compute processes by default: pid, memory used, and the name NVML gives the pid.
/// With [`PIDS_ENV`] set, the pids change but each slot keeps its memory and name; a third pid
/// takes [`THIRD_PROCESS`]'s slot.
pub const PROCESSES: [(u32, u64, &str); 2] = [
    (4242, 50 * GIB, "python3 train.py"),
    (4343, 29 * GIB, "vid-bench worker"),
];
/// The memory and name of a third pid in [`PIDS_ENV`].
pub const THIRD_PROCESS: (u64, &str) = (10 * GIB, "jupyter kernel");

/// The folder holding the fake `libnvidia-ml.so.1` (for `LD_LIBRARY_PATH`), built on first use.
pub fn build_fake_nvml() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_builds(base);
        let dir = base.join(format!("fake-nvml-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_nvml.c");
        let output = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(dir.join("libnvidia-ml.so.1"))
            .arg(&source)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the fake NVML library needs a C compiler, but `cc` could not be run ({e}); \
                     install gcc or clang so that `cc` is on PATH"
                )
            });
        assert!(
            output.status.success(),
            "cc failed to build {} ({}):\n{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
    .clone()
}

/// The fake library's file path (for `--nvml-library` or nvml-wrapper's `lib_path`).
pub fn fake_nvml_lib() -> PathBuf {
    build_fake_nvml().join("libnvidia-ml.so.1")
}

/// Removes the builds of earlier test processes that have exited.
fn remove_stale_builds(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fake-nvml-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
