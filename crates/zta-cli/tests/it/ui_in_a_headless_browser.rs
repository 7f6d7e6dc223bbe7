//! `zta serve`'s `/ui` in a real browser: Debian's `chromium`, headless, driven over the
//! WebDriver protocol through `chromedriver` on loopback (both installed by
//! `cargo run -p xtask -- services`; without them this test fails, it does not skip).
//!
//! The crew works through the AuthZEN API, then writer_bot turns hostile (a tool it was never
//! granted, a message across its segment boundary, a tool named like markup), and the monitor
//! suspends it on its third denial. An operator logs in at `/ui`: the table shows those
//! decisions, a filter narrows it to writer_bot's denials, the graph has red edges from
//! writer_bot, the monitor's alert and suspension are listed, the markup in a tool name stays
//! text, and the Reinstate button lifts the suspension, after which writer_bot's next request
//! is allowed again. Screenshots go to `<target>/zta-artifacts/ui/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};

use crate::common::{post, spawn_server, write_config};

/// A child process killed when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const AGENTS: [(&str, Option<&str>); 4] = [
    ("research_bot", Some("research")),
    ("analysis_bot", Some("analysis")),
    ("writer_bot", Some("writing")),
    ("ops_bot", None),
];

fn secret(agent: &str) -> String {
    format!("{agent} correct horse battery staple")
}

fn credential(agent: &str) -> Value {
    json!({"username": agent, "password": secret(agent)})
}

/// A tool name that would run script if the page put it in as markup.
const HOSTILE_TOOL: &str = "<img src=x onerror=\"document.title='pwned'\">";

/// Where the screenshots go: `<target>/zta-artifacts/ui/`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // <target>/<profile>/zta
        Path::new(env!("CARGO_BIN_EXE_zta")).parent().unwrap().parent().unwrap().to_owned()
    });
    let dir = target.join("zta-artifacts").join("ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` until it gives a value, for at most `limit`; panics saying what it waited for.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver session of chromedriver.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Killed,
}

impl Browser {
    async fn start() -> Self {
        let driver = which("chromedriver");
        let chromium = which("chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        eventually("chromedriver to answer", Duration::from_secs(20), || async {
            let status = http.get(format!("{base}/status")).send().await.ok()?.json::<Value>().await.ok()?;
            (status["value"]["ready"] == true).then_some(())
        })
        .await;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1600"],
            },
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver made no session: {answer}"))
            .to_owned();
        Self { http, session: format!("{base}/session/{session}"), _driver: driver }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The elements `css` selects now (their WebDriver ids).
    async fn all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css})))
            .await;
        found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element `css` selects, waiting for it to appear.
    async fn one(&self, css: &str) -> String {
        eventually(&format!("an element `{css}`"), Duration::from_secs(15), || async {
            self.all(css).await.into_iter().next()
        })
        .await
    }

    async fn text(&self, element: &str) -> String {
        let text = self.call(reqwest::Method::GET, &format!("/element/{element}/text"), None).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn click(&self, element: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    async fn type_in(&self, element: &str, text: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text})))
            .await;
    }

    /// Runs `script` in the page (WebDriver's own channel, which the page's policy does not
    /// govern) and returns its value.
    async fn eval(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let path = artifacts().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn end(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// The path of `binary` on PATH; a clear failure when it is not there.
fn which(binary: &str) -> String {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(binary)).find(|p| p.is_file()));
    found
        .unwrap_or_else(|| {
            panic!(
                "the /ui browser test needs `{binary}` (Debian's chromium and chromium-driver); \
             `cargo run -p xtask -- services` installs them"
            )
        })
        .to_string_lossy()
        .into_owned()
}

/// `agent` asks the service over AuthZEN: whether it was allowed.
fn ask(addr: &str, agent: &str, action: Value, resource: Value) -> bool {
    let body = json!({
        "subject": {"type": "agent", "properties": {"credential": credential(agent)}},
        "action": action,
        "resource": resource,
    });
    let (status, answer) = post(addr, "/access/v1/evaluation", &body);
    assert_eq!(status, 200, "{answer}");
    answer["decision"] == true
}

fn tool(addr: &str, agent: &str, name: &str) -> bool {
    ask(addr, agent, json!({"name": "call_tool"}), json!({"type": "tool", "id": name}))
}

fn to_agent(addr: &str, agent: &str, verb: &str, name: &str, target: &str) -> bool {
    ask(
        addr,
        agent,
        json!({"name": verb, "properties": {"name": name}}),
        json!({"type": "agent", "id": target}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_crew_and_reinstates_an_agent_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = crate::common::zta(&["keygen", "--out", "keys"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let mut agents = String::from("    agents:\n");
    for (agent, segment) in AGENTS {
        let hash = zta::identity::static_agents::hash_secret(&secret(agent)).unwrap();
        let segment = segment.map(|s| format!(", segment: {s}")).unwrap_or_default();
        agents.push_str(&format!("      - {{id: {agent}{segment}, secret_hash: '{hash}'}}\n"));
    }
    let monitor = "monitor:\n  detectors:\n    - {name: probing, detect: denials, window: 5m, threshold: 3, \
                   respond: [suspend]}\n";
    write_config(dir.path(), &agents, &format!("server:\n  operators: [ops_bot]\n{monitor}"));
    let (child, addr, stdout) =
        spawn_server(&["serve", "--config", "zta.yaml", "--listen", "127.0.0.1:0"], dir.path());
    let _server = (Killed(child), stdout);

    // The crew at work.
    assert!(tool(&addr, "research_bot", "web_search"));
    assert!(to_agent(&addr, "research_bot", "send_message", "findings", "analysis_bot"));
    assert!(tool(&addr, "analysis_bot", "run_python"));
    assert!(to_agent(&addr, "analysis_bot", "handoff", "report", "writer_bot"));
    assert!(tool(&addr, "writer_bot", "write_document"));
    // writer_bot turns hostile; its third denial has the monitor suspend it.
    assert!(!tool(&addr, "writer_bot", "run_python"));
    assert!(!to_agent(&addr, "writer_bot", "send_message", "instructions", "research_bot"));
    assert!(!tool(&addr, "writer_bot", HOSTILE_TOOL));
    assert!(!tool(&addr, "writer_bot", "write_document"), "suspended by the monitor");

    let browser = Browser::start().await;
    let ui = format!("http://{addr}/ui");
    browser.go(&ui).await;
    let field = browser.one("#credential").await;
    browser.screenshot("01-login.png").await;
    browser.type_in(&field, &credential("ops_bot").to_string()).await;
    let button = browser.one("#login-button").await;
    browser.click(&button).await;
    browser.one("body[data-loaded='true']").await;
    let operator = browser.one("#operator").await;
    assert_eq!(browser.text(&operator).await, "operator: ops_bot");

    // The table holds the crew's decisions, writer_bot's denials among them.
    let rows = eventually("the decisions in the table", Duration::from_secs(15), || async {
        let rows = browser.all("#decisions tbody tr.decision").await;
        (rows.len() >= 9).then_some(rows)
    })
    .await;
    let mut table = String::new();
    for row in &rows {
        table.push_str(&browser.text(row).await);
        table.push('\n');
    }
    for expected in ["web_search", "findings", "run_python", "write_document", "instructions"] {
        assert!(table.contains(expected), "{expected} in the table:\n{table}");
    }
    let denials =
        browser.all("#decisions tbody tr.decision[data-agent='writer_bot'][data-effect='deny']").await;
    assert!(denials.len() >= 4, "writer_bot's denials: {table}");
    // The markup in the tool name is text, and ran nothing.
    assert!(table.contains(HOSTILE_TOOL), "{table}");
    assert_eq!(browser.eval("return document.querySelectorAll('img').length").await, json!(0));
    assert_eq!(browser.eval("return document.title").await, json!("ZTA monitor"));

    // The graph: segments drawn, red edges from writer_bot, green ones along the pipeline.
    for segment in ["research", "analysis", "writing"] {
        browser.one(&format!("#graph rect.segment[data-segment='{segment}']")).await;
    }
    browser.one("#graph path.edge.deny[data-from='writer_bot'][data-to='research_bot']").await;
    browser.one("#graph path.edge.deny[data-from='writer_bot'][data-to='run_python']").await;
    browser.one("#graph path.edge.allow[data-from='research_bot'][data-to='analysis_bot']").await;
    browser.one("#graph path.edge.allow[data-from='analysis_bot'][data-to='writer_bot']").await;
    let suspended = browser.one("#suspended tbody tr[data-agent='writer_bot']").await;
    assert!(browser.text(&suspended).await.contains("monitor:probing"), "{}", browser.text(&suspended).await);
    browser.one("#events tbody tr.event.alert").await;
    let shot = browser.screenshot("02-crew-and-suspension.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot");

    // The filters narrow the table to writer_bot's denials.
    let agent = browser.one("#filters input[name='agent']").await;
    browser.type_in(&agent, "writer_bot").await;
    browser
        .eval("document.querySelector(\"#filters select[name='effect']\").value = 'deny'; return null")
        .await;
    let filter = browser.one("#filters button").await;
    browser.click(&filter).await;
    eventually("only writer_bot's denials in the table", Duration::from_secs(15), || async {
        let all = browser.all("#decisions tbody tr.decision").await.len();
        let theirs = browser
            .all("#decisions tbody tr.decision[data-agent='writer_bot'][data-effect='deny']")
            .await
            .len();
        (all > 0 && all == theirs).then_some(())
    })
    .await;
    browser.screenshot("03-filtered.png").await;

    // Reinstating from the page takes effect.
    let reinstate = browser.one("button.reinstate[data-agent='writer_bot']").await;
    browser.click(&reinstate).await;
    eventually("writer_bot gone from the suspended agents", Duration::from_secs(15), || async {
        browser.all("#suspended tbody tr[data-agent='writer_bot']").await.is_empty().then_some(())
    })
    .await;
    browser.one("#events tbody tr.event.reinstatement").await;
    browser.screenshot("04-reinstated.png").await;
    browser.end().await;
    assert!(tool(&addr, "writer_bot", "write_document"), "writer_bot is allowed again");
    // The reinstatement is on record, made by the operator who clicked.
    let (status, session) = post(&addr, "/zta/v1/login", &credential("ops_bot"));
    assert_eq!(status, 200, "{session}");
    let ops = session["access_token"].as_str().unwrap();
    let found: Value = reqwest::Client::new()
        .get(format!("http://{addr}/zta/v1/audit?event=reinstatement&agent=writer_bot"))
        .bearer_auth(ops)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["records"][0]["detail"]["by"], "agent:ops_bot", "{found}");
    assert_eq!(found["records"][0]["reason"], "reinstated from /ui", "{found}");
}
