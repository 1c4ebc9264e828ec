//! Proves the fake `libnvidia-ml.so.1` of `nvml.rs` through the client the backend uses,
//! nvml-wrapper: every query the GPU checks make, in every mode, and the errors for a library that
//! is missing or whose init fails.
//!
//! The fake reads `FAKE_NVML_MODE` and `FAKE_NVML_PIDS` from its process's environment, and tests
//! run as threads of one process, so each mode is checked in a fresh copy of this test binary
//! started with that environment (as oncall itself will be) rather than by changing this
//! process's environment under the other threads.

use std::ffi::CStr;
use std::process::Command;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

use super::nvml::*;

/// Set, to the case's name, in a child running one case of a test.
const CHILD_ENV: &str = "FAKE_NVML_SELFTEST_CHILD";
/// The fake's path, handed to the child so it does not build its own.
const LIB_ENV: &str = "FAKE_NVML_SELFTEST_LIB";

/// Runs `body` in a child copy of this test binary (running only `test`) whose environment has
/// `env` from the start. `body` gets the fake library's path.
fn in_child(test: &str, env: &[(&str, &str)], body: impl FnOnce(&str)) {
    in_case(test, test, env, body)
}

/// [`in_child`] for one of several children of a test, told apart by `case`.
fn in_case(test: &str, case: &str, env: &[(&str, &str)], body: impl FnOnce(&str)) {
    match std::env::var(CHILD_ENV) {
        Ok(running) if running == case => {
            let lib = std::env::var(LIB_ENV).expect("the parent passes the library path");
            body(&lib);
            return;
        }
        // A child for another case of the same test.
        Ok(_) => return,
        Err(_) => {}
    }
    let lib = fake_nvml_lib();
    // module_path!() is "cli::support::nvml_selftest"; test names leave out the crate.
    let module = module_path!().split_once("::").unwrap().1;
    let name = format!("{module}::{test}");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env_remove(MODE_ENV)
        .env_remove(PIDS_ENV)
        .env(CHILD_ENV, case)
        .env(LIB_ENV, &lib)
        .envs(env.iter().copied())
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} ({case}) with {env:?} failed in its child ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn init(lib: &str) -> Nvml {
    Nvml::builder()
        .lib_path(lib.as_ref())
        .init()
        .expect("the fake NVML initialises")
}

fn init_error(lib: &str) -> NvmlError {
    match Nvml::builder().lib_path(lib.as_ref()).init() {
        Ok(_) => panic!("init of {lib} succeeded"),
        Err(e) => e,
    }
}

fn pids_and_memory(nvml: &Nvml, index: u32) -> Vec<(u32, UsedGpuMemory)> {
    nvml.device_by_index(index)
        .unwrap()
        .running_compute_processes()
        .unwrap()
        .into_iter()
        .map(|p| (p.pid, p.used_gpu_memory))
        .collect()
}

#[test]
fn nvml_fake_two_gpus_is_the_default() {
    in_child("nvml_fake_two_gpus_is_the_default", &[], |lib| {
        let nvml = init(lib);
        assert_eq!(nvml.sys_driver_version().unwrap(), DRIVER_VERSION);
        assert_eq!(nvml.device_count().unwrap(), 2);

        let used = [GPU0_MEMORY_USED, GPU1_MEMORY_USED];
        for index in 0..2u32 {
            let i = index as usize;
            let gpu = nvml.device_by_index(index).unwrap();
            assert_eq!(gpu.name().unwrap(), GPU_NAME);
            assert_eq!(gpu.uuid().unwrap(), GPU_UUIDS[i]);
            assert_eq!(gpu.index().unwrap(), index);

            let memory = gpu.memory_info().unwrap();
            assert_eq!(memory.total, MEMORY_TOTAL);
            assert_eq!(memory.used, used[i]);
            assert_eq!(memory.free, MEMORY_TOTAL - used[i]);
            assert_eq!(memory.reserved, 0);

            let rates = gpu.utilization_rates().unwrap();
            assert_eq!((rates.gpu, rates.memory), UTILIZATION[i]);
            assert_eq!(
                gpu.temperature(TemperatureSensor::Gpu).unwrap(),
                TEMPERATURES[i]
            );
            assert!(gpu.running_graphics_processes().unwrap().is_empty());
        }

        // GPU 0 is 79.2 GiB of 80 GiB full: 99.0%, over any 95% threshold.
        let percent = GPU0_MEMORY_USED as f64 * 100.0 / MEMORY_TOTAL as f64;
        assert_eq!(format!("{percent:.1}"), "99.0");
        assert!(percent > 99.0);
        assert_eq!(
            format!("{:.1}", GPU0_MEMORY_USED as f64 / GIB as f64),
            "79.2"
        );

        let gpu0 = nvml.device_by_index(0).unwrap();
        assert_eq!(gpu0.running_compute_processes_count().unwrap(), 2);
        let processes = gpu0.running_compute_processes().unwrap();
        assert_eq!(processes.len(), 2);
        for (process, (pid, bytes, name)) in processes.iter().zip(PROCESSES) {
            assert_eq!(process.pid, pid);
            assert_eq!(process.used_gpu_memory, UsedGpuMemory::Used(bytes));
            assert_eq!(process.gpu_instance_id, None);
            assert_eq!(process.compute_instance_id, None);
            assert_eq!(nvml.sys_process_name(pid, 64).unwrap(), name);
        }
        assert_eq!(pids_and_memory(&nvml, 1), vec![]);
        assert_eq!(
            nvml.device_by_index(1)
                .unwrap()
                .running_compute_processes_count()
                .unwrap(),
            0
        );

        // Names are cropped to the buffer, as NVML documents; other pids come from /proc.
        assert_eq!(nvml.sys_process_name(4242, 8).unwrap(), "python3");
        let own = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            nvml.sys_process_name(std::process::id(), 64).unwrap(),
            own.trim_end()
        );
        assert!(matches!(
            nvml.sys_process_name(u32::MAX - 1, 64),
            Err(NvmlError::NotFound)
        ));

        assert_eq!(
            nvml.device_by_uuid(GPU_UUIDS[1]).unwrap().index().unwrap(),
            1
        );
        assert!(matches!(
            nvml.device_by_index(2),
            Err(NvmlError::InvalidArg)
        ));
        assert!(matches!(
            nvml.device_by_uuid("GPU-nope"),
            Err(NvmlError::NotFound)
        ));

        // The real library's messages, for a caller that asks NVML for them.
        let message = |code| unsafe { CStr::from_ptr(nvml.lib().nvmlErrorString(code)) };
        assert_eq!(message(9).to_str().unwrap(), "Driver Not Loaded");
        assert_eq!(message(0).to_str().unwrap(), "Success");
        assert_eq!(message(999).to_str().unwrap(), "Unknown Error");

        // A second handle shares the library (init is reference counted), then both shut down.
        let again = init(lib);
        assert_eq!(again.device_count().unwrap(), 2);
        again.shutdown().expect("the second handle shuts down");
        assert_eq!(nvml.device_count().unwrap(), 2);
        nvml.shutdown().expect("NVML shuts down");
    });
}

#[test]
fn nvml_fake_found_through_ld_library_path() {
    let dir = build_fake_nvml();
    in_child(
        "nvml_fake_found_through_ld_library_path",
        &[("LD_LIBRARY_PATH", dir.to_str().unwrap())],
        |_| {
            // nvml-wrapper's default name, libnvidia-ml.so.1, resolved by the dynamic loader.
            let nvml = Nvml::init().expect("the fake is found on LD_LIBRARY_PATH");
            assert_eq!(nvml.device_count().unwrap(), 2);
        },
    );
}

#[test]
fn nvml_fake_pids_can_be_replaced() {
    in_child(
        "nvml_fake_pids_can_be_replaced",
        &[(MODE_ENV, TWO_GPUS), (PIDS_ENV, "1234,5678")],
        |lib| {
            let nvml = init(lib);
            assert_eq!(
                pids_and_memory(&nvml, 0),
                vec![
                    (1234, UsedGpuMemory::Used(50 * GIB)),
                    (5678, UsedGpuMemory::Used(29 * GIB))
                ]
            );
            assert_eq!(nvml.sys_process_name(1234, 64).unwrap(), "python3 train.py");
            assert_eq!(nvml.sys_process_name(5678, 64).unwrap(), "vid-bench worker");
        },
    );
}

#[test]
fn nvml_fake_pids_can_be_one_or_none() {
    const TEST: &str = "nvml_fake_pids_can_be_one_or_none";
    in_case(TEST, "one pid", &[(PIDS_ENV, "31337")], |lib| {
        let nvml = init(lib);
        assert_eq!(
            pids_and_memory(&nvml, 0),
            vec![(31337, UsedGpuMemory::Used(50 * GIB))]
        );
    });
    in_case(TEST, "no pids", &[(PIDS_ENV, "")], |lib| {
        let nvml = init(lib);
        let gpu0 = nvml.device_by_index(0).unwrap();
        assert_eq!(gpu0.running_compute_processes_count().unwrap(), 0);
        assert!(gpu0.running_compute_processes().unwrap().is_empty());
        // Still 99% full: the memory does not follow the processes.
        assert_eq!(gpu0.memory_info().unwrap().used, GPU0_MEMORY_USED);
    });
}

#[test]
fn nvml_fake_no_devices() {
    in_child("nvml_fake_no_devices", &[(MODE_ENV, NO_DEVICES)], |lib| {
        let nvml = init(lib);
        assert_eq!(nvml.device_count().unwrap(), 0);
        assert_eq!(nvml.sys_driver_version().unwrap(), DRIVER_VERSION);
        assert!(matches!(
            nvml.device_by_index(0),
            Err(NvmlError::InvalidArg)
        ));
    });
}

#[test]
fn nvml_fake_init_fails() {
    in_child("nvml_fake_init_fails", &[(MODE_ENV, INIT_FAILS)], |lib| {
        let error = init_error(lib);
        assert!(matches!(error, NvmlError::DriverNotLoaded), "{error:?}");
        // nvml-wrapper's own text, not nvmlErrorString's "Driver Not Loaded".
        assert_eq!(error.to_string(), "NVIDIA driver is not loaded");
    });
}

#[test]
fn nvml_fake_rejects_an_unknown_mode() {
    in_child(
        "nvml_fake_rejects_an_unknown_mode",
        &[(MODE_ENV, "three_gpus")],
        |lib| {
            let error = init_error(lib);
            assert!(matches!(error, NvmlError::Unknown), "{error:?}");
            assert_eq!(error.to_string(), "an internal driver error occurred");
        },
    );
}

#[test]
fn nvml_missing_library_is_a_load_error() {
    let dir = std::env::temp_dir().join(format!("no-nvml-{}", std::process::id()));
    let path = dir.join("libnvidia-ml.so.1");
    let error = init_error(path.to_str().unwrap());
    assert!(matches!(error, NvmlError::LibloadingError(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "a libloading error occurred: {}: cannot open shared object file: No such file or directory",
            path.display()
        )
    );
}
