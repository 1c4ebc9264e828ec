//! NVIDIA GPUs through NVML (nvml-wrapper, loaded at run time): devices and the processes holding
//! them as checks (nvidia-smi, `fuser -v /dev/nvidia*`); ending such a process as an action.

use super::host::bytes;
use super::kinds::{ActionSpec, CheckSpec};
use super::reading::{Reading, Table, number};
use super::{BackendError, Live, Plan, PlanContext, Prepared, duration, humanize};
use crate::expr;
use crate::spec::validate::Validator;
use crate::spec::{S, bounds};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// `gpus: {}`: each GPU's memory, utilization and temperature (nvidia-smi).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpus {}

/// `gpu_processes: {}`: the processes holding GPU memory (`fuser -v /dev/nvidia*`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuProcesses {}

/// End a process holding GPU memory: TERM, then KILL after `grace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuKill {
    pub pid: S<String>,
    #[serde(default)]
    pub grace: Option<S<String>>,
}

impl CheckSpec for Gpus {
    const BACKEND: &'static str = "gpu";

    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn read(&self, live: &Live, _ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        devices(&live.systems.gpu).await
    }
}

impl CheckSpec for GpuProcesses {
    const BACKEND: &'static str = "gpu";

    fn validate(&self, _id: &S<String>, _v: &mut Validator) {}

    async fn read(&self, live: &Live, _ctx: &Value, _: Duration) -> Result<Reading, BackendError> {
        processes(&live.systems.gpu).await
    }
}

impl ActionSpec for GpuKill {
    fn validate(&self, _id: &S<String>, v: &mut Validator) {
        if let Some(grace) = &self.grace {
            v.duration(grace, "`grace`", bounds::GRACE);
        }
        v.template(&self.pid, "field");
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let pid = expr::render(&self.pid.value, ctx)?;
        let kill = kill_request(&pid, duration(&self.grace, "grace")?)?;
        let plan = kill.plan(with.systems.map(|s| &s.gpu)).await;
        Ok(Prepared::new(plan, super::Request::GpuKill(kill)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no NVIDIA driver on this host (cannot load {library}: {cause})")]
    NoDriver { library: String, cause: String },
    #[error("the NVIDIA driver did not start: {0}")]
    Init(String),
    #[error("the NVIDIA driver reports no GPU")]
    NoDevices,
    #[error("NVML: {0}")]
    Nvml(String),
    #[error("pid '{0}' is not a process id")]
    BadPid(String),
    #[error("cannot signal pid {pid}: {cause}")]
    Signal { pid: u32, cause: String },
}

/// Where NVML is loaded from: `--nvml-library`, or the driver's library on the loader's path.
#[derive(Clone, Default)]
pub struct Gpu {
    pub library: Option<PathBuf>,
}

struct Device {
    index: u32,
    name: String,
    used: u64,
    total: u64,
    util: u32,
    temp: u32,
    processes: Vec<(u32, String, Option<u64>)>,
}

struct Snapshot {
    driver: String,
    devices: Vec<Device>,
}

impl Gpu {
    fn library(&self) -> String {
        self.library
            .as_ref()
            .map_or(DEFAULT_LIBRARY.into(), |p| p.display().to_string())
    }

    /// Reads every device once; NVML is a blocking C library, so this runs off the async threads.
    async fn snapshot(&self) -> Result<Snapshot, Error> {
        let library = self.library();
        tokio::task::spawn_blocking(move || read(&library))
            .await
            .map_err(|e| Error::Nvml(e.to_string()))?
    }
}

fn nvml_err(e: NvmlError) -> Error {
    Error::Nvml(e.to_string())
}

fn read(library: &str) -> Result<Snapshot, Error> {
    let nvml = Nvml::builder()
        .lib_path(std::ffi::OsStr::new(library))
        .init()
        .map_err(|e| match e {
            NvmlError::LibloadingError(cause) => Error::NoDriver {
                library: library.into(),
                cause: cause.to_string(),
            },
            NvmlError::FailedToLoadSymbol(cause) => Error::NoDriver {
                library: library.into(),
                cause,
            },
            other => Error::Init(other.to_string()),
        })?;
    let driver = nvml.sys_driver_version().map_err(nvml_err)?;
    let count = nvml.device_count().map_err(nvml_err)?;
    if count == 0 {
        return Err(Error::NoDevices);
    }
    let mut devices = Vec::new();
    for index in 0..count {
        let device = nvml.device_by_index(index).map_err(nvml_err)?;
        let memory = device.memory_info().map_err(nvml_err)?;
        let util = device.utilization_rates().map_err(nvml_err)?;
        let temp = device
            .temperature(TemperatureSensor::Gpu)
            .map_err(nvml_err)?;
        let processes = device
            .running_compute_processes()
            .map_err(nvml_err)?
            .into_iter()
            .map(|p| {
                let name = nvml
                    .sys_process_name(p.pid, 256)
                    .unwrap_or_else(|_| "?".into());
                let used = match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                };
                (p.pid, name, used)
            })
            .collect();
        devices.push(Device {
            index,
            name: device.name().map_err(nvml_err)?,
            used: memory.used,
            total: memory.total,
            util: util.gpu,
            temp,
            processes,
        });
    }
    Ok(Snapshot { driver, devices })
}

/// nvidia-smi: per device, memory used of total, utilization and temperature; each row's value is
/// its memory used in percent, so `fail_if: value > 95` judges each GPU.
pub async fn devices(gpu: &Gpu) -> Result<Reading, super::BackendError> {
    let snap = gpu.snapshot().await?;
    let columns = [
        "gpu",
        "name",
        "memory",
        "util %",
        "temp C",
        "processes",
        "value",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<serde_json::Value>> = snap
        .devices
        .iter()
        .map(|d| {
            let pct = if d.total == 0 {
                0.0
            } else {
                (d.used as f64 * 1000.0 / d.total as f64).round() / 10.0
            };
            vec![
                d.index.into(),
                d.name.clone().into(),
                format!("{} / {}", bytes(d.used), bytes(d.total)).into(),
                d.util.into(),
                d.temp.into(),
                d.processes.len().into(),
                number(pct),
            ]
        })
        .collect();
    let text = format!("driver {}, {} GPU(s)", snap.driver, snap.devices.len());
    Ok(Reading {
        value: serde_json::Value::Null,
        table: Some(Table::new(columns, rows)),
        text: Some(text),
        verdict: None,
        took_ms: None,
    })
}

/// `fuser -v /dev/nvidia*`: the processes holding GPU memory; the value is their number.
pub async fn processes(gpu: &Gpu) -> Result<Reading, super::BackendError> {
    let snap = gpu.snapshot().await?;
    let columns = ["gpu", "pid", "command", "memory"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<serde_json::Value>> = snap
        .devices
        .iter()
        .flat_map(|d| {
            d.processes.iter().map(move |(pid, name, used)| {
                vec![
                    d.index.into(),
                    (*pid).into(),
                    name.clone().into(),
                    used.map_or("?".into(), bytes).into(),
                ]
            })
        })
        .collect();
    let count = rows.len();
    Ok(Reading {
        value: count.into(),
        table: Some(Table::new(columns, rows)),
        text: Some(format!("driver {}", snap.driver)),
        verdict: None,
        took_ms: None,
    })
}

/// An approved end of a GPU process: TERM, then KILL after the grace period.
pub struct Kill {
    pub pid: u32,
    pub grace: Duration,
}

pub fn kill_request(pid: &str, grace: Option<Duration>) -> Result<Kill, Error> {
    let pid = pid
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| Error::BadPid(pid.into()))?;
    Ok(Kill {
        pid,
        grace: grace.unwrap_or(DEFAULT_GRACE),
    })
}

impl Kill {
    /// Names the process, its command and its GPU memory, as NVML reports them (when it can).
    pub async fn plan(&self, gpu: Option<&Gpu>) -> Plan {
        let mut plan = Plan {
            backend: "gpu".into(),
            request: format!(
                "kill -TERM {}, then kill -KILL after {}",
                self.pid,
                humanize(self.grace)
            ),
            ..Plan::default()
        };
        let found = match gpu {
            Some(gpu) => gpu.snapshot().await.ok().and_then(|s| {
                s.devices.into_iter().find_map(|d| {
                    d.processes
                        .into_iter()
                        .find(|p| p.0 == self.pid)
                        .map(|p| (d.index, p.1, p.2))
                })
            }),
            None => None,
        };
        plan.changes.push(match found {
            Some((index, name, used)) => format!(
                "ends pid {} ({name}) holding {} on GPU {index}",
                self.pid,
                used.map_or("?".into(), bytes)
            ),
            None => format!("ends pid {} (not seen on a GPU now)", self.pid),
        });
        plan
    }

    pub(super) async fn apply(&self) -> Result<String, Error> {
        let pid = self.pid;
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
