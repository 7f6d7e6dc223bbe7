//! A private three-primary Redis Cluster on loopback for one test: `redis-server` processes in a
//! temporary directory, joined by `redis-cli --cluster create`, killed when the value is dropped
//! (passed or not). Nodes can be stopped and started again (same port, same `nodes.conf`, so the
//! same node id and slots; the data is not persisted, a restarted node comes back empty).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// How long starting the cluster, or a node, may take on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The cluster: its nodes, each a `redis-server` on a port of its own.
pub struct TestCluster {
    nodes: Vec<Node>,
    dir: TempDir,
    password: Option<String>,
}

struct Node {
    port: u16,
    bus_port: u16,
    process: Option<Child>,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

impl Node {
    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestCluster {
    /// Starts three primaries (no replicas), creates the cluster and waits until every node
    /// reports `cluster_state:ok`. Fails (never skips) when `redis-server` or `redis-cli` is
    /// missing.
    pub async fn start() -> Self {
        Self::start_with_password(None).await
    }

    /// [`start`](Self::start), every node requiring `password` (`requirepass`) when given.
    pub async fn start_with_password(password: Option<&str>) -> Self {
        for tool in ["redis-server", "redis-cli"] {
            if let Err(e) = Command::new(tool).arg("--version").stdout(Stdio::null()).status() {
                panic!(
                    "this test runs its own Redis Cluster with `redis-server` and `redis-cli`, \
                     and `{tool}` cannot be run (Debian: apt-get install redis-server): {e}"
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> =
            (0..3).map(|_| Node { port: free_port(), bus_port: free_port(), process: None }).collect();
        for node in &mut nodes {
            node.process = Some(spawn(dir.path(), node.port, node.bus_port, password));
        }
        let cluster = Self { nodes, dir, password: password.map(str::to_owned) };
        for i in 0..3 {
            cluster.wait_until_answering(i).await;
        }
        let mut create = Command::new("redis-cli");
        if let Some(password) = password {
            create.arg("--no-auth-warning").arg("-a").arg(password);
        }
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create.args(["--cluster-replicas", "0", "--cluster-yes"]).output().unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_ok().await;
        cluster
    }

    /// The URL of node `i` (with the password, if the cluster has one).
    pub fn url(&self, i: usize) -> String {
        let auth = self.password.as_ref().map(|p| format!(":{p}@")).unwrap_or_default();
        format!("redis://{auth}127.0.0.1:{}/", self.nodes[i].port)
    }

    /// The seed URL for the store: the first node.
    pub fn seed_url(&self) -> String {
        self.url(0)
    }

    /// Kills node `i` (a crash: no shutdown, nothing saved).
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its port with its `nodes.conf`, and waits until it answers.
    pub async fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.process.is_none(), "node {i} is running");
        node.process = Some(spawn(self.dir.path(), node.port, node.bus_port, self.password.as_deref()));
        self.wait_until_answering(i).await;
    }

    /// The node whose primary holds `key`'s slot (asked of the cluster: `CLUSTER KEYSLOT`, then
    /// the slot ranges of the primaries in `CLUSTER NODES`).
    pub fn node_of(&self, key: &str) -> usize {
        let running = self.nodes.iter().position(|n| n.process.is_some()).expect("every node is stopped");
        let mut con = self.connection(running);
        let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut con).unwrap();
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con).unwrap();
        // <id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slot ranges...>
        let owner = nodes
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| {
                fields.len() > 8
                    && fields[2].contains("master")
                    && fields[8..].iter().any(|range| {
                        let (first, last) = range.split_once('-').unwrap_or((range, range));
                        match (first.parse::<u16>(), last.parse::<u16>()) {
                            (Ok(first), Ok(last)) => (first..=last).contains(&slot),
                            _ => false,
                        }
                    })
            })
            .unwrap_or_else(|| panic!("no primary serves slot {slot}:\n{nodes}"));
        let port: u16 =
            owner[1].split(['@', ',']).next().unwrap().rsplit_once(':').unwrap().1.parse().unwrap();
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// Moves the slot of `key` (and the keys in it) from its node to node `to`, as a
    /// resharding does: `IMPORTING`/`MIGRATING`, `MIGRATE` of each key, then `SETSLOT NODE` on
    /// every node.
    pub fn move_slot_of(&self, key: &str, to: usize) {
        let from = self.node_of(key);
        assert_ne!(from, to, "`{key}` is already on node {to}");
        let id = |i: usize| -> String {
            redis::cmd("CLUSTER").arg("MYID").query(&mut self.connection(i)).unwrap()
        };
        let (from_id, to_id) = (id(from), id(to));
        let mut source = self.connection(from);
        let mut target = self.connection(to);
        let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut source).unwrap();
        let setslot = |state: &str, node: &str| {
            redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(node).to_owned()
        };
        setslot("IMPORTING", &from_id).query::<()>(&mut target).unwrap();
        setslot("MIGRATING", &to_id).query::<()>(&mut source).unwrap();
        let keys: Vec<String> =
            redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(1000).query(&mut source).unwrap();
        for k in keys {
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(self.nodes[to].port)
                .arg(&k)
                .arg(0)
                .arg(5000)
                .query::<()>(&mut source)
                .unwrap();
        }
        for i in 0..self.nodes.len() {
            setslot("NODE", &to_id).query::<()>(&mut self.connection(i)).unwrap();
        }
    }

    /// Whether node `i` itself holds `key` (a plain connection to that node, no redirection: a
    /// node that does not serve the key's slot answers `MOVED`, which is "no").
    pub fn holds(&self, i: usize, key: &str) -> bool {
        match redis::cmd("EXISTS").arg(key).query(&mut self.connection(i)) {
            Ok(n) => n,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) => false,
            Err(e) => panic!("EXISTS {key} on node {i}: {e}"),
        }
    }

    /// A plain (non-cluster) connection to node `i`.
    pub fn connection(&self, i: usize) -> redis::Connection {
        redis::Client::open(self.url(i)).unwrap().get_connection().unwrap()
    }

    fn cluster_state_ok(&self, i: usize) -> bool {
        let Ok(mut con) = redis::Client::open(self.url(i)).and_then(|c| c.get_connection()) else {
            return false;
        };
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap_or_default();
        info.lines().any(|line| line.trim() == "cluster_state:ok")
    }

    /// Polls every node until each says `cluster_state:ok`.
    pub async fn wait_until_ok(&self) {
        let deadline = Instant::now() + START_LIMIT;
        while !(0..self.nodes.len()).all(|i| self.cluster_state_ok(i)) {
            assert!(Instant::now() < deadline, "the test cluster did not reach cluster_state:ok");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_until_answering(&self, i: usize) {
        let deadline = Instant::now() + START_LIMIT;
        let client = redis::Client::open(self.url(i)).unwrap();
        loop {
            let pong = client.get_connection().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start: {pong:?}",
                self.nodes[i].port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A cluster-enabled `redis-server` on loopback `port` (cluster bus on `bus_port`), its
/// `nodes.conf` in `dir`, persisting nothing; `--cluster-require-full-coverage no` so the
/// other nodes keep serving their slots while one is stopped.
fn spawn(dir: &Path, port: u16, bus_port: u16, password: Option<&str>) -> Child {
    let nodes_conf: PathBuf = dir.join(format!("nodes-{port}.conf"));
    let mut command = Command::new("redis-server");
    if let Some(password) = password {
        command.args(["--requirepass", password, "--masterauth", password]);
    }
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
        .args(["--cluster-port", &bus_port.to_string(), "--cluster-config-file"])
        .arg(&nodes_conf)
        .args(["--cluster-require-full-coverage", "no", "--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test runs its own `redis-server` (Debian: apt-get install redis-server): {e}")
        })
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `attempt` until it gives `Some`, for at most a minute; `what` names the wait.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
