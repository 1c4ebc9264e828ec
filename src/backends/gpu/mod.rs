//! NVIDIA GPUs through NVML (nvml-wrapper, loaded at run time): devices and the processes holding
//! them as checks (nvidia-smi, `fuser -v /dev/nvidia*`); ending such a process as an action (`kill`).

mod kill;

pub use kill::{GpuKill, Kill};

use super::host::bytes;
use super::kinds::CheckSpec;
use super::reading::{Reading, Table, number};
use super::{BackendError, Live};
use crate::spec::S;
use crate::spec::validate::Validator;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// `gpus: {}`: each GPU's memory, utilization and temperature (nvidia-smi).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpus {}

/// `gpu_processes: {}`: the processes holding GPU memory (`fuser -v /dev/nvidia*`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuProcesses {}

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
    /// A pid named (by the runbook or at the prompt) that NVML does not list on any GPU.
    #[error("pid {pid} is not among the processes NVML lists on a GPU ({listed})")]
    NotListed { pid: u32, listed: String },
    #[error("pid {pid} is {what}: oncall never ends its own process tree")]
    OwnTree { pid: u32, what: &'static str },
    /// The rule chose nothing: no process holds memory where it looks.
    #[error("nothing to end: no process holds memory {0}")]
    NothingToEnd(String),
    /// A drill or `show` with no GPU reading to choose from.
    #[error("the process is chosen when the GPUs are read: {0}")]
    NotRead(String),
    #[error("invalid {what}: {why}")]
    Spec { what: &'static str, why: String },
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

impl Device {
    /// Memory used in percent, to one decimal, as the `gpus` check shows it.
    fn percent_used(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.used as f64 * 1000.0 / self.total as f64).round() / 10.0
        }
    }
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

/// The driver's version and how many GPUs it sees: what `oncall doctor` asks.
pub async fn driver(gpu: &Gpu) -> Result<String, super::BackendError> {
    let snap = gpu.snapshot().await?;
    Ok(format!(
        "driver {}, {} GPU(s): {}",
        snap.driver,
        snap.devices.len(),
        snap.devices
            .iter()
            .map(|d| d.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    ))
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
            let pct = d.percent_used();
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
