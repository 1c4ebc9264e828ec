//! A private Docker daemon for tests, and docker-compose projects on it.
//!
//! `scripts/test.sh` starts one dockerd for the whole run and exports
//! `ONCALL_TEST_DOCKER_HOST=unix://...`; without it (a plain `cargo test`), [`docker_host`]
//! starts one itself, once per test process, exactly as the script does: its own socket, data
//! root and exec root under a short folder in /tmp (unix socket paths are limited to 108
//! bytes), no bridge and no iptables. That dockerd gets SIGTERM when the test process ends
//! (`PR_SET_PDEATHSIG`), and the folders of earlier processes are removed on the next start.
//!
//! No image can be pulled here: the test image [`IMAGE`] is imported from a folder holding the
//! static `/bin/busybox` and symlinks for its applets. Containers never get a network
//! (`network_mode: none`), and `init: true` makes stops quick (busybox sh ignores SIGTERM).
//!
//! Everything goes through the `docker` and `docker-compose` (v1) command lines, each call
//! bounded in time. Self-contained (std, libc and serde_json) so benches can include it.
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The image every Docker test runs.
pub const IMAGE: &str = "oncall-test-busybox:latest";
/// The environment variable through which scripts/test.sh hands over its dockerd.
pub const HOST_ENV: &str = "ONCALL_TEST_DOCKER_HOST";
/// The line the `trainer` service prints before exiting 137.
pub const OOM_LINE: &str = "CUDA error: out of memory";

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "printf", "true", "false", "touch", "rm", "ls", "wget", "nc",
    "httpd", "kill", "tail",
];
/// Where a dockerd of our own keeps everything: short, for the socket paths.
const DIR_PARENT: &str = "/tmp";
const DIR_PREFIX: &str = "ocd.r";
/// How long dockerd may take to answer after it starts.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// The longest any one docker or docker-compose command may take.
const COMMAND_WITHIN: Duration = Duration::from_secs(120);
/// How long a service may take to reach its expected state after `up`.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// How to reach the test dockerd.
#[derive(Clone, Debug)]
pub struct DockerHost {
    /// `unix:///tmp/.../docker.sock`, for `DOCKER_HOST` or `docker -H`.
    pub host: String,
}

/// The test dockerd: the script's (`ONCALL_TEST_DOCKER_HOST`) or one started by this process
/// on first use, with [`IMAGE`] built. Panics with the cause (and dockerd's log) if there is
/// no daemon to be had.
pub fn docker_host() -> DockerHost {
    static HOST: OnceLock<Result<DockerHost, String>> = OnceLock::new();
    match HOST.get_or_init(|| {
        let host = match std::env::var(HOST_ENV) {
            Ok(host) if !host.is_empty() => {
                let dh = DockerHost { host };
                dh.version()
                    .map_err(|e| format!("{HOST_ENV}={} does not answer: {e}", dh.host))?;
                dh
            }
            _ => start_private_dockerd()?,
        };
        host.ensure_image()?;
        Ok(host)
    }) {
        Ok(host) => host.clone(),
        Err(e) => panic!("no Docker daemon for the tests: {e}"),
    }
}

impl DockerHost {
    /// `docker -H HOST ARGS...`, bounded in time, whatever its exit status.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.arg("-H").arg(&self.host).args(args);
        run_bounded(cmd, COMMAND_WITHIN, None)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// `docker -H HOST ARGS...`, its stdout; panics with stderr if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker inspect` of one object, parsed.
    pub fn inspect(&self, id: &str) -> Value {
        let text = self.run(&["inspect", id]);
        let mut all: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("docker inspect {id} is not JSON ({e}): {text}"));
        all[0].take()
    }

    /// The server's API version, or why it does not answer.
    fn version(&self) -> Result<String, String> {
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(&self.host)
            .args(["version", "--format", "{{.Server.APIVersion}}"]);
        let out = run_bounded(cmd, Duration::from_secs(10), None)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Imports [`IMAGE`] unless the daemon has it already.
    fn ensure_image(&self) -> Result<(), String> {
        if self.docker(&["image", "inspect", IMAGE]).status.success() {
            return Ok(());
        }
        let meta = fs::metadata(BUSYBOX).map_err(|e| {
            format!("{BUSYBOX}: {e}: install busybox-static (scripts/test.sh does this)")
        })?;
        if !meta.is_file() {
            return Err(format!("{BUSYBOX} is not a file"));
        }
        let rootfs = unique_dir("oncall-docker-rootfs");
        let result = (|| {
            fs::create_dir_all(rootfs.join("bin")).map_err(|e| e.to_string())?;
            fs::create_dir_all(rootfs.join("tmp")).map_err(|e| e.to_string())?;
            fs::copy(BUSYBOX, rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
            for applet in APPLETS {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                    .map_err(|e| e.to_string())?;
            }
            let mut tar = Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .args(["-c", "."])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("starting tar: {e}"))?;
            let mut import = Command::new("docker");
            import.arg("-H").arg(&self.host).args([
                "import",
                "-c",
                r#"CMD ["/bin/sh"]"#,
                "-",
                IMAGE,
            ]);
            let stdin = Stdio::from(tar.stdout.take().expect("tar's stdout"));
            let out = run_bounded(import, COMMAND_WITHIN, Some(stdin));
            let _ = tar.wait();
            let out = out?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "docker import of {IMAGE} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })();
        let _ = fs::remove_dir_all(&rootfs);
        result
    }
}

/// Starts dockerd as scripts/test.sh does, from a thread that lives as long as the process:
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, and test threads end
/// with their test.
fn start_private_dockerd() -> Result<DockerHost, String> {
    remove_stale_dirs();
    let dir = PathBuf::from(DIR_PARENT).join(format!("{DIR_PREFIX}{}", std::process::id()));
    // A folder with our pid is left from an earlier process that had it.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let sock = dir.join("docker.sock");
    let host = DockerHost {
        host: format!("unix://{}", sock.display()),
    };
    let log_path = dir.join("dockerd.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("creating dockerd.log: {e}"))?;
    let mut cmd = Command::new("dockerd");
    cmd.arg("--host")
        .arg(&host.host)
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("x"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and raise are async-signal-safe, and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The test process may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel::<Result<u32, String>>();
    std::thread::Builder::new()
        .name("oncall-test-dockerd".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                // Keep this thread (the parent of dockerd for PDEATHSIG) alive until dockerd ends.
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(format!(
                    "starting dockerd: {e}: install docker.io (scripts/test.sh does this)"
                )));
            }
        })
        .map_err(|e| format!("spawning the dockerd thread: {e}"))?;
    let pid = rx
        .recv()
        .map_err(|_| "the dockerd thread ended".to_string())??;
    let started = Instant::now();
    loop {
        if host.version().is_ok() {
            return Ok(host);
        }
        let alive = pid_alive(pid as i32);
        if !alive || started.elapsed() > READY_WITHIN {
            if alive {
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "the private dockerd {} (it needs root, or CAP_SYS_ADMIN and cgroups); \
                 the tests cannot run without it. Its log ({}):\n{}",
                if alive {
                    format!("did not answer within {READY_WITHIN:?}")
                } else {
                    "exited".to_string()
                },
                log_path.display(),
                tail.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Whether a process exists and is not a zombie (one not yet reaped counts as gone).
fn pid_alive(pid: i32) -> bool {
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || last_errno() == libc::EPERM)
        && !is_zombie(pid as u32)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Removes the folders of dockerds that earlier test processes started and left behind: only
/// when neither that process nor its dockerd lives and nothing is mounted inside.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(DIR_PARENT) else {
        return;
    };
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let dockerd = fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .unwrap_or(0);
        if owner == std::process::id() as i32 || pid_alive(owner) || pid_alive(dockerd) {
            continue;
        }
        let inside = format!("{}/", dir.display());
        if mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .any(|m| m.starts_with(&inside))
        {
            continue;
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Runs a command with the given stdin (or none), collecting its output; kills it after
/// `within`.
fn run_bounded(mut cmd: Command, within: Duration, stdin: Option<Stdio>) -> Result<Output, String> {
    cmd.stdin(stdin.unwrap_or_else(Stdio::null))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child: Child = cmd
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > within => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not finish within {within:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

fn unique_dir(prefix: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The compose file of every test project: three services in the states the playbook's
/// scenarios start from.
pub const COMPOSE_FILE: &str = r#"version: "2.4"
services:
  benchmark:
    image: oncall-test-busybox:latest
    network_mode: none
    init: true
    command: ["sleep", "86400"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 5s
      retries: 1
  trainer:
    image: oncall-test-busybox:latest
    network_mode: none
    init: true
    restart: "no"
    command: ["sh", "-c", "echo 'loading model'; echo 'CUDA error: out of memory'; exit 137"]
  api:
    image: oncall-test-busybox:latest
    network_mode: none
    init: true
    command: ["sleep", "86400"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 5s
      retries: 1
"#;

/// A docker-compose (v1) project on the test dockerd, brought up from [`COMPOSE_FILE`]:
///
/// | service | state once `up` returns |
/// |---|---|
/// | `benchmark` | running, healthy (`sleep`, healthcheck `true` every 1 s) |
/// | `trainer` | exited 137 after printing `loading model` and [`OOM_LINE`] |
/// | `api` | running, unhealthy (healthcheck `false` every 1 s, 1 retry) |
///
/// Dropping it runs `docker-compose down -t 1` and removes its folder.
pub struct ComposeProject {
    /// The compose project name (label `com.docker.compose.project`), unique per project.
    pub name: String,
    /// The folder holding `docker-compose.yml`.
    pub dir: PathBuf,
    host: String,
}

impl ComposeProject {
    /// Brings a project up under a unique name starting with `name` (lowercase letters,
    /// digits, `-` and `_` kept), and returns once every service is in its state above.
    pub fn up(name: &str) -> ComposeProject {
        static N: AtomicUsize = AtomicUsize::new(0);
        let host = docker_host();
        let prefix: String = name
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let name = format!(
            "{}{}-{}",
            if prefix.is_empty() { "oncall" } else { &prefix },
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = unique_dir(&format!("oncall-compose-{name}"));
        fs::write(dir.join("docker-compose.yml"), COMPOSE_FILE)
            .expect("writing docker-compose.yml");
        // From here on, Drop takes the project down even if bringing it up fails.
        let project = ComposeProject {
            name,
            dir,
            host: host.host,
        };
        let out = project.compose(&["up", "-d"]);
        assert!(
            out.status.success(),
            "docker-compose -p {} up -d failed ({}):\n{}{}",
            project.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        project.wait_for("benchmark", "healthy", |s| {
            s["Health"]["Status"] == "healthy"
        });
        project.wait_for("trainer", "exited", |s| s["Status"] == "exited");
        project.wait_for("api", "unhealthy", |s| s["Health"]["Status"] == "unhealthy");
        project
    }

    /// The test dockerd this project runs on.
    pub fn docker_host(&self) -> DockerHost {
        DockerHost {
            host: self.host.clone(),
        }
    }

    /// `docker-compose -p NAME -f DIR/docker-compose.yml ARGS...` with `DOCKER_HOST` set,
    /// bounded in time.
    pub fn compose(&self, args: &[&str]) -> Output {
        run_bounded(self.compose_command(args), COMMAND_WITHIN, None)
            .unwrap_or_else(|e| panic!("docker-compose {}: {e}", args.join(" ")))
    }

    fn compose_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(self.dir.join("docker-compose.yml"))
            .args(args)
            .current_dir(&self.dir)
            .env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME");
        cmd
    }

    /// The full id of the (first) container of a service, running or not.
    pub fn container_id(&self, service: &str) -> String {
        let project = format!("label=com.docker.compose.project={}", self.name);
        let svc = format!("label=com.docker.compose.service={service}");
        let out = self.docker_host().run(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &project,
            "--filter",
            &svc,
        ]);
        out.lines()
            .next()
            .map(str::to_string)
            .unwrap_or_else(|| panic!("project {} has no container for {service}", self.name))
    }

    /// `State.StartedAt` of the service's container (RFC 3339, nanoseconds).
    pub fn started_at(&self, service: &str) -> String {
        let state = self.state(service);
        state["StartedAt"]
            .as_str()
            .unwrap_or_else(|| panic!("no State.StartedAt for {service}: {state}"))
            .to_string()
    }

    /// `State` of the service's container as `docker inspect` gives it (`Status`,
    /// `ExitCode`, `Health.Status`, `StartedAt`...).
    pub fn state(&self, service: &str) -> Value {
        let id = self.container_id(service);
        self.docker_host().inspect(&id)["State"].take()
    }

    /// Everything the service's container printed (stdout and stderr).
    pub fn logs(&self, service: &str) -> String {
        let id = self.container_id(service);
        let out = self.docker_host().docker(&["logs", &id]);
        assert!(out.status.success(), "docker logs {service} failed");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }

    /// Polls the service's `State` until `ok` holds; panics after [`SETTLE_WITHIN`].
    pub fn wait_for(&self, service: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let state = self.state(service);
            if ok(&state) {
                return state;
            }
            assert!(
                started.elapsed() < SETTLE_WITHIN,
                "{service} of project {} was not {what} within {SETTLE_WITHIN:?}: {state:#}",
                self.name
            );
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        // Never panics (a panic in a drop during a failing test would abort the run).
        let _ = run_bounded(
            self.compose_command(&["down", "-t", "1"]),
            COMMAND_WITHIN,
            None,
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}
