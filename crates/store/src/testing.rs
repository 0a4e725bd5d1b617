//! Real `redis-server` processes for tests (feature `test-support`).
//!
//! Tests in this crate and in others (as a dev-dependency with
//! `features = ["test-support"]`) exercise the Redis backend against a real server
//! rather than a mock. Each [`RedisServer`] runs on its own free port on
//! 127.0.0.1 with persistence off and its files in a temporary directory, so tests
//! never touch a Redis the machine itself runs on 6379, and can run in parallel.
//! Nothing here installs software: without `redis-server` on the `PATH` a start fails
//! with a message saying how to install it (`.ci/run` installs it).
//!
//! These helpers panic on setup failure, with the server's log in the message:
//! a test cannot proceed without its server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a server may take to answer after being spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Redis' default `cluster-node-timeout`.
const DEFAULT_NODE_TIMEOUT_MS: u32 = 5000;
/// Spawn attempts when another process grabs the chosen port first.
const PORT_ATTEMPTS: usize = 5;

/// Options for [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    password: Option<String>,
    tls: bool,
    tls_client_auth: bool,
    /// As a cluster node: how long the cluster waits before failing it over, ms.
    cluster: Option<u32>,
}

impl RedisServerBuilder {
    /// Requires this password (`requirepass`); [`RedisServer::url`] includes it.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Serves TLS only, with a certificate signed by a CA generated for this
    /// server (with the `openssl` CLI); [`RedisServer::url`] is a `rediss://` URL
    /// that trusts that CA through `tls_ca`.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Like [`RedisServerBuilder::tls`], and also requires a client certificate;
    /// the URL carries one through `tls_cert` and `tls_key`.
    pub fn tls_client_auth(mut self) -> Self {
        self.tls = true;
        self.tls_client_auth = true;
        self
    }

    fn cluster_node(mut self, node_timeout_ms: u32) -> Self {
        self.cluster = Some(node_timeout_ms);
        self
    }

    /// Starts the server and waits until it answers; panics if it cannot.
    pub fn start(self) -> RedisServer {
        match self.try_start() {
            Ok(s) => s,
            Err(e) => panic!("cannot start redis-server for the test: {e}"),
        }
    }

    /// Starts the server and waits until it answers.
    pub fn try_start(self) -> Result<RedisServer, String> {
        ensure_installed("redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("seqless-redis-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        if self.tls {
            make_certificates(dir.path())?;
        }
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let bus_port = match self.cluster {
                Some(_) => Some(free_port()?),
                None => None,
            };
            let args = self.args(dir.path(), port, bus_port);
            match spawn_ready(&args, dir.path(), port, self.tls) {
                Ok(child) => {
                    return Ok(RedisServer {
                        port,
                        args,
                        pid: Mutex::new(child.id()),
                        child: Mutex::new(Some(child)),
                        config: self,
                        dir,
                    });
                }
                // Another process took the port between our probe and the bind.
                Err(e) if e.contains("Address already in use") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(format!(
            "no free port after {PORT_ATTEMPTS} attempts: {last_error}"
        ))
    }

    fn args(&self, dir: &Path, port: u16, bus_port: Option<u16>) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |k: &str, v: &str| {
            args.push(format!("--{k}"));
            args.push(v.to_owned());
        };
        push("bind", "127.0.0.1");
        push("save", "");
        push("appendonly", "no");
        push("dir", &dir.display().to_string());
        push("logfile", &dir.join("redis.log").display().to_string());
        push("protected-mode", "no");
        if self.tls {
            push("port", "0");
            push("tls-port", &port.to_string());
            push(
                "tls-cert-file",
                &dir.join("server.pem").display().to_string(),
            );
            push(
                "tls-key-file",
                &dir.join("server.key").display().to_string(),
            );
            push(
                "tls-ca-cert-file",
                &dir.join("ca.pem").display().to_string(),
            );
            push(
                "tls-auth-clients",
                if self.tls_client_auth { "yes" } else { "no" },
            );
        } else {
            push("port", &port.to_string());
        }
        if let Some(pw) = &self.password {
            push("requirepass", pw);
        }
        if let Some(bus) = bus_port {
            push("cluster-enabled", "yes");
            push("cluster-port", &bus.to_string());
            push(
                "cluster-config-file",
                &dir.join("nodes.conf").display().to_string(),
            );
            let timeout = self.cluster.unwrap_or(DEFAULT_NODE_TIMEOUT_MS);
            push("cluster-node-timeout", &timeout.to_string());
        }
        args
    }
}

/// A `redis-server` child process on a free 127.0.0.1 port, stopped on drop.
///
/// [`RedisServer::kill`] and [`RedisServer::restart`] (same port, same settings,
/// empty data: persistence is off) let tests check behaviour while Redis is down
/// and after it comes back.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    child: Mutex<Option<Child>>,
    pid: Mutex<u32>,
    config: RedisServerBuilder,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A plain server without password; panics if it cannot start.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options for a server with a password, TLS or client certificates.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The store URL for this server (with password, and TLS parameters).
    pub fn url(&self) -> String {
        let auth = self
            .config
            .password
            .as_deref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        if self.config.tls {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair(
                "tls_ca",
                &self.dir.path().join("ca.pem").display().to_string(),
            );
            if self.config.tls_client_auth {
                q.append_pair(
                    "tls_cert",
                    &self.dir.path().join("client.pem").display().to_string(),
                );
                q.append_pair(
                    "tls_key",
                    &self.dir.path().join("client.key").display().to_string(),
                );
            }
            format!("rediss://{auth}127.0.0.1:{}/?{}", self.port, q.finish())
        } else {
            format!("redis://{auth}127.0.0.1:{}", self.port)
        }
    }

    /// The port the server listens on (its TLS port for a TLS server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the current (or last) server process.
    pub fn pid(&self) -> u32 {
        *lock(&self.pid)
    }

    /// The directory holding the server's log, config and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL (no shutdown, like a crash) and reaps it.
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            // Errors mean it already exited, which is the goal.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, and starts it again on the same port with the
    /// same settings; panics if it cannot.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match spawn_ready(&self.args, self.dir.path(), self.port, self.config.tls) {
                Ok(child) => {
                    *lock(&self.pid) = child.id();
                    *lock(&self.child) = Some(child);
                    if let Err(e) = self.wait_rejoined(deadline) {
                        panic!("restarted cluster node did not rejoin: {e}");
                    }
                    return;
                }
                Err(e) if e.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot restart redis-server on port {}: {e}", self.port),
            }
        }
    }

    /// For a cluster node, waits until it serves its slots again.
    fn wait_rejoined(&self, deadline: Instant) -> Result<(), String> {
        if self.config.cluster.is_some() {
            wait_cluster_ok(self, deadline)
        } else {
            Ok(())
        }
    }

    /// The number of keys in the server's database 0 (`DBSIZE`): 0 once every query has
    /// cleaned up. Panics if the server does not answer.
    pub fn dbsize(&self) -> u64 {
        let reply = self.command(&[b"DBSIZE"]).expect("DBSIZE");
        let text = String::from_utf8_lossy(&reply);
        (text.trim().strip_prefix(':').and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("DBSIZE answered {text:?}"))
    }

    /// Sends one command over a plain connection and returns the raw reply, for
    /// tests that plant foreign data (e.g. `RPUSH`); not available with TLS.
    pub fn command(&self, args: &[&[u8]]) -> Result<Vec<u8>, String> {
        if self.config.tls {
            return Err("raw commands need a plain (non-TLS) server".into());
        }
        let mut request = Vec::new();
        if let Some(pw) = &self.config.password {
            request.extend(resp(&[b"AUTH", pw.as_bytes()]));
        }
        request.extend(resp(args));
        let replies = if self.config.password.is_some() { 2 } else { 1 };
        raw_request(self.port, &request, replies)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of `n` primaries (no replicas), each a [`RedisServer`], with
/// all 16384 slots assigned; stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n >= 3` nodes (the minimum `redis-cli --cluster create` accepts),
    /// joins them, and waits until every node reports `cluster_state:ok`; panics
    /// if it cannot.
    pub fn start(n: usize) -> Self {
        match Self::try_start(n) {
            Ok(c) => c,
            Err(e) => panic!("cannot start a Redis Cluster for the test: {e}"),
        }
    }

    /// As [`RedisCluster::start`], returning the failure.
    pub fn try_start(n: usize) -> Result<Self, String> {
        Self::try_start_with_replicas(n, 0, DEFAULT_NODE_TIMEOUT_MS)
    }

    /// `primaries >= 3` primaries with `replicas` replicas each, which fail over
    /// `node_timeout_ms` after their primary stops answering; panics if they cannot start.
    pub fn start_with_replicas(primaries: usize, replicas: usize, node_timeout_ms: u32) -> Self {
        match Self::try_start_with_replicas(primaries, replicas, node_timeout_ms) {
            Ok(c) => c,
            Err(e) => panic!("cannot start a Redis Cluster for the test: {e}"),
        }
    }

    fn try_start_with_replicas(
        primaries: usize,
        replicas: usize,
        node_timeout_ms: u32,
    ) -> Result<Self, String> {
        if primaries < 3 {
            return Err(format!(
                "a Redis Cluster needs at least 3 primaries, not {primaries}"
            ));
        }
        ensure_installed("redis-cli")?;
        let nodes = (0..primaries * (1 + replicas))
            .map(|_| {
                RedisServer::builder()
                    .cluster_node(node_timeout_ms)
                    .try_start()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for node in &nodes {
            cmd.arg(format!("127.0.0.1:{}", node.port));
        }
        cmd.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let out = cmd.output().map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in &nodes {
            wait_cluster_ok(node, deadline)?;
        }
        // A replica that has not synchronised with its primary will not take over from it.
        for node in &nodes {
            wait_replica_in_sync(node, deadline)?;
        }
        Ok(Self { nodes })
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The nodes, e.g. to plant data on one of them.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes that are primaries now (`INFO replication` says `role:master`); a node
    /// that does not answer is not one.
    pub fn primaries(&self) -> Vec<&RedisServer> {
        self.nodes
            .iter()
            .filter(|n| {
                n.command(&[b"INFO", b"replication"])
                    .is_ok_and(|r| String::from_utf8_lossy(&r).contains("role:master"))
            })
            .collect()
    }
}

/// Waits until `node`, if it is a replica, reports its link to its primary up.
fn wait_replica_in_sync(node: &RedisServer, deadline: Instant) -> Result<(), String> {
    loop {
        let info = node.command(&[b"INFO", b"replication"]).unwrap_or_default();
        let info = String::from_utf8_lossy(&info);
        if info.contains("role:master") || info.contains("master_link_status:up") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "replica {} never synchronised with its primary: {info}",
                node.port
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `node` reports `cluster_state:ok`.
fn wait_cluster_ok(node: &RedisServer, deadline: Instant) -> Result<(), String> {
    loop {
        let info = node.command(&[b"CLUSTER", b"INFO"]).unwrap_or_default();
        if String::from_utf8_lossy(&info).contains("cluster_state:ok") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "node {} never reported cluster_state:ok: {}",
                node.port,
                String::from_utf8_lossy(&info)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Checks that `program` (`redis-server`, or `redis-cli` from the redis-tools package that
/// redis-server depends on) is on the `PATH`, with an error saying how to install it.
pub fn ensure_installed(program: &str) -> Result<(), String> {
    if on_path(program) {
        Ok(())
    } else {
        Err(format!(
            "`{program}` is not installed; these tests need a real Redis: \
             install it with `apt-get install redis-server` (.ci/run does)"
        ))
    }
}

/// Spawns redis-server with `args` and waits until it serves on `port`.
fn spawn_ready(args: &[String], dir: &Path, port: u16, tls: bool) -> Result<Child, String> {
    let log = dir.join("redis.log");
    // Start each life with a fresh log so a failure shows this start's messages.
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning redis-server: {e}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            return Err(format!(
                "redis-server exited with {status}: {stderr}{}",
                read_log(&log)
            ));
        }
        if answers(port, tls) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server did not answer on port {port} within {READY_TIMEOUT:?}: {}",
                read_log(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Whether a server answers on `port`: a PING reply for plain servers (`-NOAUTH`
/// counts: the server is up), an accepted connection for TLS ones.
fn answers(port: u16, tls: bool) -> bool {
    if tls {
        return TcpStream::connect(("127.0.0.1", port)).is_ok();
    }
    raw_request(port, b"PING\r\n", 1)
        .is_ok_and(|r| r.starts_with(b"+PONG") || r.starts_with(b"-NOAUTH"))
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).into_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends `request` and reads until `replies` complete top-level replies arrived
/// (simple, error, integer or bulk; enough for these helpers); returns the last.
fn raw_request(port: u16, request: &[u8], replies: usize) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(last) = split_replies(&buf, replies) {
            return Ok(last);
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// If `buf` holds `count` complete replies, the last one.
fn split_replies(buf: &[u8], count: usize) -> Option<Vec<u8>> {
    let mut at = 0;
    let mut last = None;
    for _ in 0..count {
        let line_end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let end = if buf.get(at) == Some(&b'$') {
            let len: i64 = std::str::from_utf8(&buf[at + 1..line_end])
                .ok()?
                .parse()
                .ok()?;
            if len < 0 {
                line_end + 2
            } else {
                let end = line_end + 2 + usize::try_from(len).ok()? + 2;
                if buf.len() < end {
                    return None;
                }
                end
            }
        } else {
            line_end + 2
        };
        last = Some(buf[at..end].to_vec());
        at = end;
    }
    last
}

/// Writes a CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, all with the `openssl` CLI.
fn make_certificates(dir: &Path) -> Result<(), String> {
    ensure_openssl()?;
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .map_err(|e| format!("writing {}: {e}", ext.display()))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=seqless-test-ca",
    ]);
    run(&ca)?;
    for name in ["server", "client"] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
        run(&req)?;
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ])?;
    }
    Ok(())
}

fn ensure_openssl() -> Result<(), String> {
    if on_path("openssl") {
        Ok(())
    } else {
        Err("TLS tests need the `openssl` command (apt-get install -y openssl)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_framing() {
        assert_eq!(split_replies(b"+PONG\r\n", 1), Some(b"+PONG\r\n".to_vec()));
        assert_eq!(split_replies(b"+PO", 1), None);
        assert_eq!(
            split_replies(b"$3\r\nabc\r\n", 1),
            Some(b"$3\r\nabc\r\n".to_vec())
        );
        assert_eq!(split_replies(b"$3\r\nab", 1), None);
        assert_eq!(split_replies(b"+OK\r\n:1\r\n", 2), Some(b":1\r\n".to_vec()));
        assert_eq!(split_replies(b"$-1\r\n", 1), Some(b"$-1\r\n".to_vec()));
    }
}
