//! A real PostgreSQL for tests, one per [`Postgres::start`], on a free 127.0.0.1 port, with
//! `pg_stat_statements` preloaded and created in the `postgres` database. Killed (immediate
//! shutdown), and its folder removed, on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb`, `postgres` and every
//! `psql` run as the `postgres` user (the Debian package creates it), switched to directly by
//! the spawn (no `runuser` in between, so killing a child kills the real process). The folder is
//! under `/tmp` (unix socket paths are limited to 108 bytes), mode 755 and owned by that user;
//! it is also the socket directory (`-k`).
//!
//! Authentication (`pg_hba.conf`): `postgres` is trusted (socket and 127.0.0.1); every other
//! role must give its password (scram-sha-256), so a wrong password is really rejected. Make such
//! a role with [`Postgres::with_password`].
//!
//! The lock scenario of the database runbook: [`Postgres::hold_row_lock`] keeps a transaction
//! open holding row 1 of `jobs`, [`Postgres::blocked_update`] starts an `UPDATE` of the same row
//! that blocks on it, and [`Postgres::wait_until_blocked`] polls `pg_blocking_pids` until it is.
//!
//! The server process is spawned from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG` (SIGQUIT: immediate shutdown), so it goes when the test process goes,
//! even if killed; folders left by dead test processes are removed on the next start.
//! Self-contained (std, libc): benches can include it.
#![allow(dead_code)]

use super::process::{free_port, run_bounded, spawn_tied, tail};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, mpsc};
use std::time::{Duration, Instant};

/// The PostgreSQL major version preferred (Debian bookworm's); any other installed one is used
/// if it is missing.
const PREFERRED_BIN: &str = "/usr/lib/postgresql/15/bin";
const VERSIONS_DIR: &str = "/usr/lib/postgresql";
const OS_USER: &str = "postgres";
/// Where the folders go: short, for the socket path, and traversable by the postgres user.
const DIR_PARENT: &str = "/tmp";
const DIR_PREFIX: &str = "oncall-postgres-";
/// From spawning `postgres` to accepting connections.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// The longest one `initdb` or `psql` may take.
const COMMAND_WITHIN: Duration = Duration::from_secs(60);
/// How long the lock scenario may take to reach its state.
const SCENARIO_WITHIN: Duration = Duration::from_secs(15);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// `application_name` of the session started by [`Postgres::hold_row_lock`].
pub const HOLDER_APP: &str = "oncall-test-lock-holder";
/// `application_name` of the session started by [`Postgres::blocked_update`].
pub const BLOCKED_APP: &str = "oncall-test-blocked-update";
/// The statement [`Postgres::blocked_update`] runs (and that blocks).
pub const BLOCKED_SQL: &str = "UPDATE jobs SET state='waiting' WHERE id=1";
/// The statement the lock holder ran inside its open transaction.
pub const HOLDER_SQL: &str = "UPDATE jobs SET state='held' WHERE id=1";

/// A running PostgreSQL. Killed, and its folder removed, on drop.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trusted, no password).
    pub url: String,
    pub port: u16,
    /// Holds `data/` (the cluster), the socket, and `postgres.log`.
    pub dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

/// The session holding the row lock: `psql` with an open transaction that updated row 1 of
/// `jobs`. Dropping it ends `psql` (the transaction is rolled back if the backend still lives).
pub struct LockHolder {
    /// The backend pid of the holding session (`pg_backend_pid()`).
    pub pid: i32,
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A blocked query as `pg_stat_activity` and `pg_blocking_pids` show it.
#[derive(Clone, Debug)]
pub struct Blocked {
    /// The backend pid of the blocked session.
    pub pid: i32,
    /// The pids blocking it (the lock holder's among them).
    pub blocked_by: Vec<i32>,
    /// Its query text, as `pg_stat_activity.query` shows it.
    pub query: String,
}

impl Postgres {
    /// Runs initdb, starts the server and creates `pg_stat_statements`; returns once it accepts
    /// connections. Panics with the cause (and the server's log) otherwise.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let user = os_user();
        static CLEAN: Once = Once::new();
        CLEAN.call_once(remove_stale_dirs);
        let dir = unique_dir();
        // From here on, Drop removes the folder (and kills the server) even if we panic.
        let mut pg = Postgres {
            url: String::new(),
            port: 0,
            dir: dir.clone(),
            bin,
            user,
            child: None,
        };
        if let Some((uid, gid)) = user {
            chown(&dir, uid, gid);
        }
        let data = dir.join("data");
        let mut initdb = pg.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=trust"])
            .args(["--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"]);
        let out = run_bounded(initdb, COMMAND_WITHIN, None)
            .unwrap_or_else(|e| panic!("initdb in {}: {e}", data.display()));
        assert!(
            out.status.success(),
            "initdb -D {} failed ({}):\n{}{}",
            data.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // First match wins: postgres is trusted, every other role needs its password.
        fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("writing pg_hba.conf");

        let deadline = Instant::now() + READY_WITHIN;
        // The free port can be taken between our probe and the server's bind: retry on that.
        for attempt in 1.. {
            let port = free_port();
            pg.port = port;
            pg.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            match pg.spawn_server(deadline) {
                Ok(()) => break,
                Err(log) if attempt < 4 && log.contains("already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
        pg.psql("CREATE EXTENSION pg_stat_statements");
        pg
    }

    /// Starts `postgres` on `self.port` over the cluster in `dir/data` and waits until it is
    /// ready; `Err` says why not, with the server's log.
    fn spawn_server(&mut self, deadline: Instant) -> Result<(), String> {
        let data = self.dir.join("data");
        let log_path = self.dir.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("opening postgres.log");
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(&data).arg("-k").arg(&self.dir);
        for setting in [
            "listen_addresses=127.0.0.1".to_string(),
            format!("port={}", self.port),
            "shared_preload_libraries=pg_stat_statements".to_string(),
            "pg_stat_statements.track=all".to_string(),
            "fsync=off".to_string(),
            "synchronous_commit=off".to_string(),
            "full_page_writes=off".to_string(),
            "shared_buffers=32MB".to_string(),
            "max_parallel_workers_per_gather=0".to_string(),
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log);
        let child = spawn_tied(cmd, libc::SIGQUIT)
            .unwrap_or_else(|e| panic!("starting {}/postgres: {e}", self.bin.display()));
        self.child = Some(child);
        match self.wait_ready(&data, deadline) {
            Ok(()) => Ok(()),
            Err(Some(status)) => Err(format!(
                "postgres exited before it was ready ({status}); its log:\n{}",
                tail(&log_path)
            )),
            Err(None) => Err(format!(
                "postgres on port {} not ready within {READY_WITHIN:?}; its log:\n{}",
                self.port,
                tail(&log_path)
            )),
        }
    }

    /// Turns TLS on with a certificate for 127.0.0.1 signed by a CA of its own (both made by
    /// `openssl`), and makes `role` connect over TCP only with TLS. Returns the CA's certificate,
    /// the file a client trusts.
    pub fn require_tls_for(&self, role: &str) -> PathBuf {
        let file = |name: &str| self.dir.join(name);
        let (ca, ca_key) = (file("ca.crt"), file("ca.key"));
        let (cert, key, csr, ext) = (
            file("server.crt"),
            file("server.key"),
            file("server.csr"),
            file("server.ext"),
        );
        fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").expect("writing server.ext");
        let openssl = |args: &[&std::ffi::OsStr]| {
            let mut cmd = Command::new("openssl");
            cmd.args(args);
            let out = run_bounded(cmd, COMMAND_WITHIN, None)
                .unwrap_or_else(|e| panic!("openssl (install the Debian package `openssl`): {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let s = |t: &'static str| std::ffi::OsStr::new(t);
        openssl(&[
            s("req"),
            s("-x509"),
            s("-newkey"),
            s("rsa:2048"),
            s("-nodes"),
            s("-days"),
            s("1"),
            s("-subj"),
            s("/CN=oncall test CA"),
            s("-keyout"),
            ca_key.as_os_str(),
            s("-out"),
            ca.as_os_str(),
        ]);
        openssl(&[
            s("req"),
            s("-newkey"),
            s("rsa:2048"),
            s("-nodes"),
            s("-subj"),
            s("/CN=127.0.0.1"),
            s("-keyout"),
            key.as_os_str(),
            s("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            s("x509"),
            s("-req"),
            s("-days"),
            s("1"),
            s("-in"),
            csr.as_os_str(),
            s("-CA"),
            ca.as_os_str(),
            s("-CAkey"),
            ca_key.as_os_str(),
            s("-CAcreateserial"),
            s("-extfile"),
            ext.as_os_str(),
            s("-out"),
            cert.as_os_str(),
        ]);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod the key");
        fs::set_permissions(&cert, fs::Permissions::from_mode(0o644)).expect("chmod the cert");
        if let Some((uid, gid)) = self.user {
            chown(&key, uid, gid);
            chown(&cert, uid, gid);
        }
        let hba = self.dir.join("data/pg_hba.conf");
        let rules = fs::read_to_string(&hba).expect("reading pg_hba.conf");
        fs::write(
            &hba,
            format!(
                "hostnossl all {role} 127.0.0.1/32 reject\n\
                 hostssl all {role} 127.0.0.1/32 scram-sha-256\n{rules}"
            ),
        )
        .expect("writing pg_hba.conf");
        // One statement each: ALTER SYSTEM cannot run inside psql -c's one transaction.
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            cert.display()
        ));
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            key.display()
        ));
        self.psql("ALTER SYSTEM SET ssl = on");
        self.psql("SELECT pg_reload_conf()");
        let started = Instant::now();
        while self.psql("SHOW ssl") != "on" {
            assert!(
                started.elapsed() < SCENARIO_WITHIN,
                "ssl not on after reload; log:\n{}",
                tail(&self.dir.join("postgres.log"))
            );
            std::thread::sleep(POLL_EVERY);
        }
        ca
    }

    /// Stops the server (a fast shutdown: what was committed is kept) and waits until it is
    /// gone; the port then refuses connections until [`Postgres::restart`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let started = Instant::now();
        while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            assert!(
                started.elapsed() < COMMAND_WITHIN,
                "postgres did not stop within {COMMAND_WITHIN:?}"
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Starts the stopped server again, on the same port with the same data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() of a running server");
        let _ = fs::remove_file(self.dir.join("data/postmaster.pid"));
        let deadline = Instant::now() + READY_WITHIN;
        self.spawn_server(deadline)
            .unwrap_or_else(|why| panic!("restarting postgres: {why}"));
    }

    /// Runs SQL (one or more statements) with `psql -X -At -v ON_ERROR_STOP=1` as `postgres`
    /// over the socket; returns its stdout without the trailing newline. Panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql failed on {sql:?}:\n{e}"))
    }

    /// As [`Postgres::psql`], in another database of the cluster.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!(
                "{} dbname={}",
                self.conninfo("postgres"),
                conninfo_quote(database)
            ))
            .arg("-c")
            .arg(sql);
        finish(run_bounded(cmd, COMMAND_WITHIN, None).unwrap_or_else(|e| panic!("psql: {e}")))
            .unwrap_or_else(|e| panic!("psql failed on {sql:?} in {database}:\n{e}"))
    }

    /// As [`Postgres::psql`], the error (psql's stderr) instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo("postgres"))
            .arg("-c")
            .arg(sql);
        finish(run_bounded(cmd, COMMAND_WITHIN, None)?)
    }

    /// Runs SQL as `user` with `password` over TCP (127.0.0.1), as a client with a password
    /// would: `Err` holds psql's stderr (e.g. `password authentication failed for user "app"`).
    pub fn psql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-At", "-w", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!(
                "host=127.0.0.1 port={} user={} dbname=postgres connect_timeout=10",
                self.port,
                conninfo_quote(user)
            ))
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", password);
        finish(run_bounded(cmd, COMMAND_WITHIN, None)?)
    }

    /// Creates a login role with a password (scram-sha-256), member of `pg_monitor` (so it sees
    /// every session and statement), and returns its URL:
    /// `postgres://ROLE:PASSWORD@127.0.0.1:PORT/postgres`. Any other password is rejected.
    pub fn with_password(&self, role: &str, password: &str) -> String {
        let ident = format!("\"{}\"", role.replace('"', "\"\""));
        self.psql(&format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE {ident} LOGIN PASSWORD '{}'; GRANT pg_monitor TO {ident};",
            password.replace('\'', "''")
        ));
        format!(
            "postgres://{}:{}@127.0.0.1:{}/postgres",
            percent_encode(role),
            percent_encode(password),
            self.port
        )
    }

    /// The same URL with a password for `postgres` (which is trusted, so any password works).
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/postgres",
            percent_encode(user),
            percent_encode(password),
            self.port
        )
    }

    /// Starts a `psql` session (application_name [`HOLDER_APP`]) that makes sure table
    /// `jobs(id int primary key, state text)` has row 1, then `BEGIN; UPDATE jobs SET
    /// state='held' WHERE id=1;` and keeps that transaction open. Returns once it holds the lock.
    /// Only one holder at a time (a second would block on the first).
    pub fn hold_row_lock(&self) -> LockHolder {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo(HOLDER_APP))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child =
            spawn_tied(cmd, libc::SIGKILL).unwrap_or_else(|e| panic!("starting psql: {e}"));
        let mut stdin = child.stdin.take().expect("psql's stdin");
        let stdout = child.stdout.take().expect("psql's stdout");
        let mut stderr = child.stderr.take().expect("psql's stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let script = format!(
            "CREATE TABLE IF NOT EXISTS jobs(id int primary key, state text);\n\
             INSERT INTO jobs VALUES (1, 'queued') ON CONFLICT (id) DO NOTHING;\n\
             SELECT 'pid:' || pg_backend_pid();\n\
             BEGIN;\n\
             {HOLDER_SQL};\n\
             SELECT 'locked';\n"
        );
        stdin
            .write_all(script.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to the lock holder's psql: {e}"));
        let mut holder = LockHolder {
            pid: 0,
            child,
            stdin: Some(stdin),
        };
        let deadline = Instant::now() + SCENARIO_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "locked" && holder.pid > 0 => return holder,
                Ok(line) => {
                    if let Some(pid) = line.strip_prefix("pid:") {
                        holder.pid = pid.trim().parse().unwrap_or(0);
                    }
                }
                Err(e) => {
                    // psql ended (stdout closed) or is stuck: say why.
                    let _ = holder.child.kill();
                    let _ = holder.child.wait();
                    holder.stdin = None;
                    let stderr = errors.join().unwrap_or_default();
                    panic!(
                        "the lock holder did not take the lock within {SCENARIO_WITHIN:?} ({e}); \
                         psql said:\n{stderr}\nserver log:\n{}",
                        tail(&self.dir.join("postgres.log"))
                    );
                }
            }
        }
    }

    /// Starts `psql -c "UPDATE jobs SET state='waiting' WHERE id=1"` (application_name
    /// [`BLOCKED_APP`]), which blocks while a [`LockHolder`] holds the row. Its stdout and
    /// stderr are piped; it ends by itself once the lock goes (or the server does).
    pub fn blocked_update(&self) -> Child {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo(BLOCKED_APP))
            .arg("-c")
            .arg(BLOCKED_SQL)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        spawn_tied(cmd, libc::SIGKILL).unwrap_or_else(|e| panic!("starting psql: {e}"))
    }

    /// Polls `pg_stat_activity` and `pg_blocking_pids` until the session of
    /// [`Postgres::blocked_update`] is blocked; panics after 15 s with what the server shows.
    pub fn wait_until_blocked(&self) -> Blocked {
        let sql = format!(
            "SELECT pid, array_to_string(pg_blocking_pids(pid), ','), \
             replace(query, E'\\n', ' ') FROM pg_stat_activity \
             WHERE application_name = '{BLOCKED_APP}' AND cardinality(pg_blocking_pids(pid)) > 0"
        );
        let started = Instant::now();
        loop {
            let out = self.psql(&sql);
            if let Some(line) = out.lines().next() {
                let mut cols = line.splitn(3, '|');
                let pid = cols.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let blocked_by = cols
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .collect();
                let query = cols.next().unwrap_or("").to_string();
                return Blocked {
                    pid,
                    blocked_by,
                    query,
                };
            }
            if started.elapsed() > SCENARIO_WITHIN {
                panic!(
                    "no session of {BLOCKED_APP} was blocked within {SCENARIO_WITHIN:?}; \
                     pg_stat_activity:\n{}",
                    self.psql(
                        "SELECT pid, application_name, state, wait_event_type, \
                         pg_blocking_pids(pid), query FROM pg_stat_activity"
                    )
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Whether a backend with this pid is in `pg_stat_activity`.
    pub fn backend_exists(&self, pid: i32) -> bool {
        self.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        )) != "0"
    }

    /// Polls until no backend has this pid (e.g. after it was terminated); panics after 15 s.
    pub fn wait_backend_gone(&self, pid: i32) {
        let started = Instant::now();
        while self.backend_exists(pid) {
            assert!(
                started.elapsed() < SCENARIO_WITHIN,
                "backend {pid} still in pg_stat_activity after {SCENARIO_WITHIN:?}"
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// libpq connection string over the socket as `postgres`.
    fn conninfo(&self, application_name: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres application_name={}",
            conninfo_quote(&self.dir.to_string_lossy()),
            self.port,
            conninfo_quote(application_name)
        )
    }

    /// One of the server's programs, run as the postgres user when we are root, with a clean
    /// environment (no PG* variables from the caller).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.dir)
            .env("LC_ALL", "C")
            .env("PGTZ", "UTC")
            .current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Polls `postmaster.pid` until its status line says `ready` (what `pg_ctl -w` waits for).
    /// `Err(Some(status))` if the server exited, `Err(None)` at the deadline.
    fn wait_ready(&mut self, data: &Path, deadline: Instant) -> Result<(), Option<String>> {
        let pid_file = data.join("postmaster.pid");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(Some(status.to_string()));
            }
            if let Ok(text) = fs::read_to_string(&pid_file)
                && text.lines().nth(7).is_some_and(|l| l.trim() == "ready")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(None);
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Never panics. SIGQUIT is the immediate shutdown: no waiting for clients.
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
            let started = Instant::now();
            while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        self.stdin = None; // EOF: psql quits, rolling back.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bin folder of the preferred (or newest installed) PostgreSQL.
fn bin_dir() -> PathBuf {
    let preferred = PathBuf::from(PREFERRED_BIN);
    if preferred.join("initdb").exists() {
        return preferred;
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(VERSIONS_DIR)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "{PREFERRED_BIN}/initdb not found: install the Debian package `postgresql` \
             (scripts/test.sh does this), e.g. `apt-get install -y --no-install-recommends postgresql`"
        )
    })
}

/// The uid and gid to run PostgreSQL as: the `postgres` user when we are root, else ourselves.
fn os_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next() != Some(OS_USER) {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    });
    Some(ids.unwrap_or_else(|| {
        panic!(
            "PostgreSQL refuses to run as root and there is no `{OS_USER}` user: \
             install the Debian package `postgresql` (it creates the user)"
        )
    }))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {} to {OS_USER}: {e}", path.display()));
}

/// `0` (no error) -> stdout without its final newline; otherwise stderr (and the status).
fn finish(out: Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        Ok(stdout.strip_suffix('\n').unwrap_or(&stdout).to_string())
    } else {
        Err(format!(
            "{} ({}){}",
            String::from_utf8_lossy(&out.stderr).trim_end(),
            out.status,
            if stdout.is_empty() {
                String::new()
            } else {
                format!("\nstdout: {stdout}")
            }
        ))
    }
}

/// A value for a libpq `key=value` connection string.
fn conninfo_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL user info).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `/tmp/oncall-postgres-PID-N`, mode 755.
fn unique_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(DIR_PARENT).join(format!(
        "{DIR_PREFIX}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod 755 {}: {e}", dir.display()));
    dir
}

/// Removes the folders of test processes that no longer run.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(DIR_PARENT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = unsafe { libc::kill(owner, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if owner != std::process::id() as i32 && !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
