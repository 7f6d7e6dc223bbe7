//! Tooling around the engine, not part of the request path: the work behind
//! `zta policy check | eval | explain | test | what-can` (checking files, running test cases,
//! building a request or a principal from an attribute tree). The CLI only parses arguments and
//! prints what these return; editors and CI scripts may call them the same way.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use zta_core::{
    Action, ActionKind, AgentId, AuthMethod, AuthzRequest, Context, Effect, PolicyDigest, Principal, Request,
    Resource,
};

use crate::{
    Diagnostic, Error, Format, PolicySet, Severity,
    source::{self, Pos},
};

/// Reads a request file (YAML, or JSON for a `.json` name) with the policy reader, so a
/// repeated key is refused as in a policy file, and builds the request as
/// [`request_from_attributes`] does.
pub fn read_request_file(path: &Path) -> Result<AuthzRequest, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    let origin = path.display().to_string();
    let doc = source::parse(&text, Format::from_path(path))
        .map_err(|e| Error::Request(Diagnostic::syntax(&origin, e).to_string()))?;
    request_from_attributes(&doc.to_json()).map_err(|e| match e {
        Error::Request(m) => Error::Request(format!("`{origin}`: {m}")),
        other => other,
    })
}

/// Builds a request from an attribute tree, like the original project's context plus a
/// `principal` section.
///
/// ```json
/// {"agent_id": "research_bot", "action_type": "call_tool", "tool_name": "web_search",
///  "target_agent": "analyst", "target": {"segment": "analysis"},
///  "resource": {"type": "dataset", "id": "d1", "owner": "ana"},
///  "principal": {"roles": ["researcher"], "segment": "research"},
///  "message": {"type": "chat"}}
/// ```
///
/// `agent_id` and `action_type` are required. `action_type` maps to a core [`Action`]:
/// `call_tool` (needs `tool_name`) is a tool call, `send_message` a message named by
/// `message.type` (default `message`), `execute_task` a task named by `task.type` (default
/// `task`), `handoff` a handoff, `delegate` a delegation, anything else a custom action. The
/// `principal` section takes `roles`, `groups`, `segment`, `tenant`, `issuer`, `subject`,
/// `auth_method` and `delegation`. `source_agent`, if given, must equal `agent_id`. Every other
/// key is context; a context key naming a reserved attribute is refused.
pub fn request_from_attributes(attrs: &Value) -> Result<AuthzRequest, Error> {
    let bad = |m: String| Error::Request(m);
    let obj = attrs.as_object().ok_or_else(|| bad("the request must be a JSON object".into()))?;
    let string = |key: &str| -> Result<Option<&str>, Error> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(format!("`{key}` must be a string"))),
        }
    };
    let agent = string("agent_id")?.ok_or_else(|| bad("`agent_id` is required".into()))?;
    let agent_id = AgentId::new(agent).map_err(|e| bad(format!("`agent_id`: {e}")))?;
    if let Some(src) = string("source_agent")?
        && src != agent
    {
        return Err(bad(format!(
            "`source_agent` (`{src}`) must equal `agent_id` (`{agent}`): it is the verified sender"
        )));
    }
    let action_type = string("action_type")?.ok_or_else(|| bad("`action_type` is required".into()))?;
    let nested_str = |outer: &str, inner: &str| {
        obj.get(outer).and_then(|v| v.get(inner)).and_then(Value::as_str).map(str::to_owned)
    };
    let kind = ActionKind::from_verb(action_type);
    let action = match kind {
        Some(ActionKind::ToolCall) => Action::tool_call(
            string("tool_name")?.ok_or_else(|| bad("`call_tool` needs a `tool_name`".into()))?,
        ),
        Some(ActionKind::Message) => {
            Action::message(nested_str("message", "type").unwrap_or_else(|| "message".into()))
        }
        Some(ActionKind::Task) => Action::task(nested_str("task", "type").unwrap_or_else(|| "task".into())),
        Some(ActionKind::Handoff) => Action::handoff("handoff"),
        Some(ActionKind::Delegation) => Action::delegation("delegate"),
        Some(ActionKind::Custom) | None => Action::custom(action_type).map_err(|e| bad(e.to_string()))?,
    };
    if kind != Some(ActionKind::ToolCall) && string("tool_name")?.is_some() {
        return Err(bad("`tool_name` is only valid with `action_type: call_tool`".into()));
    }

    let principal = principal_from(agent_id, obj.get("principal"))?;

    let mut request = Request::new(action);
    if let Some(t) = string("target_agent")? {
        request = request.with_target(AgentId::new(t).map_err(|e| bad(format!("`target_agent`: {e}")))?);
    }
    let target_segment = match obj.get("target") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            if let Some(k) = t.keys().find(|k| *k != "segment") {
                return Err(bad(format!("unknown target attribute `{k}`; only `segment` is allowed")));
            }
            t.get("segment").and_then(Value::as_str).map(str::to_owned)
        }
        Some(_) => return Err(bad("`target` must be a map like `{segment: analysis}`".into())),
    };
    if target_segment.is_some() && request.target_agent.is_none() {
        return Err(bad("`target.segment` needs a `target_agent`".into()));
    }
    match obj.get("resource") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => {
            let kind = r
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`resource.type` is required".into()))?;
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            let mut resource = Resource::new(kind, id);
            for (k, v) in r.iter().filter(|(k, _)| *k != "type" && *k != "id") {
                resource = resource.with_attribute(k.clone(), v.clone());
            }
            request = request.with_resource(resource);
        }
        Some(_) => return Err(bad("`resource` must be a map".into())),
    }
    const TOP: &[&str] = &[
        "agent_id",
        "source_agent",
        "action_type",
        "tool_name",
        "target_agent",
        "target",
        "resource",
        "principal",
    ];
    let context: Context =
        obj.iter().filter(|(k, _)| !TOP.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    request.context = context;
    AuthzRequest::new(principal, request, target_segment).map_err(|e| bad(e.to_string()))
}

/// The `principal` section of a request file (also a `--principal-file` of `what-can`): `roles`,
/// `groups`, `segment`, `tenant`, `issuer`, `subject`, `auth_method` and `delegation`; any other
/// key is refused.
pub fn principal_from_attributes(agent: &str, attrs: Option<&Value>) -> Result<Principal, Error> {
    let agent_id = AgentId::new(agent).map_err(|e| Error::Request(format!("`agent_id`: {e}")))?;
    principal_from(agent_id, attrs)
}

/// Reads a principal file (YAML, or JSON for a `.json` name) as [`principal_from_attributes`]
/// does, for `agent`.
pub fn read_principal_file(agent: &str, path: &Path) -> Result<Principal, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    let origin = path.display().to_string();
    let doc = source::parse(&text, Format::from_path(path))
        .map_err(|e| Error::Request(Diagnostic::syntax(&origin, e).to_string()))?;
    principal_from_attributes(agent, Some(&doc.to_json())).map_err(|e| match e {
        Error::Request(m) => Error::Request(format!("`{origin}`: {m}")),
        other => other,
    })
}

fn principal_from(agent_id: AgentId, section: Option<&Value>) -> Result<Principal, Error> {
    let bad = |m: String| Error::Request(m);
    let now = OffsetDateTime::now_utc();
    let p =
        section.map(|v| v.as_object().ok_or_else(|| bad("`principal` must be a map".into()))).transpose()?;
    let p_str = |key: &str| -> Result<Option<String>, Error> {
        match p.and_then(|p| p.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("`principal.{key}` must be a string"))),
        }
    };
    let p_list = |key: &str| -> Result<Vec<String>, Error> {
        match p.and_then(|p| p.get(key)) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(format!("`principal.{key}` must list strings")))
                })
                .collect(),
            Some(_) => Err(bad(format!("`principal.{key}` must be a list of strings"))),
        }
    };
    if let Some(p) = p {
        let known =
            ["roles", "groups", "segment", "tenant", "issuer", "subject", "auth_method", "delegation"];
        if let Some(k) = p.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(bad(format!("unknown principal attribute `{k}`; known: {}", known.join(", "))));
        }
    }
    let auth_method = match p_str("auth_method")? {
        Some(m) => serde_json::from_value::<AuthMethod>(Value::String(m.clone()))
            .map_err(|_| bad(format!("unknown `principal.auth_method` `{m}`")))?,
        None => AuthMethod::AgentKey,
    };
    let mut principal = Principal::new(
        agent_id,
        p_str("issuer")?.unwrap_or_else(|| "request-file".into()),
        auth_method,
        now,
        now + time::Duration::minutes(5),
    )
    .with_roles(p_list("roles")?)
    .with_groups(p_list("groups")?)
    .with_delegation(p_list("delegation")?);
    if let Some(s) = p_str("segment")? {
        principal = principal.with_segment(s);
    }
    if let Some(t) = p_str("tenant")? {
        principal = principal.with_tenant(t);
    }
    if let Some(s) = p_str("subject")? {
        principal = principal.with_subject(s);
    }
    Ok(principal)
}

/// The outcome of `zta policy check`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The files checked.
    pub files: Vec<PathBuf>,
    /// Load errors (the policy would not load).
    pub errors: Vec<Diagnostic>,
    /// Analysis warnings.
    pub warnings: Vec<Diagnostic>,
    /// The digest, when the policy loads.
    pub digest: Option<PolicyDigest>,
    /// The number of rules, when the policy loads.
    pub rules: usize,
}

impl CheckReport {
    /// Whether the files load (warnings allowed). The CLI exits non-zero otherwise.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.errors.iter().chain(&self.warnings) {
            writeln!(f, "{d}")?;
        }
        let (e, w) = (self.errors.len(), self.warnings.len());
        match self.digest {
            Some(digest) => writeln!(
                f,
                "ok: {} rule{} in {} file{}, {w} warning{}, digest {digest}",
                self.rules,
                plural(self.rules),
                self.files.len(),
                plural(self.files.len()),
                plural(w)
            ),
            None => writeln!(f, "failed: {e} error{}, {w} warning{}", plural(e), plural(w)),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Checks policy files together (as they would be loaded): every error and warning.
pub fn check_files<P: AsRef<Path>>(paths: &[P]) -> CheckReport {
    let files: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_owned()).collect();
    let mut report = CheckReport { files, errors: Vec::new(), warnings: Vec::new(), digest: None, rules: 0 };
    match PolicySet::from_files(paths) {
        Ok(set) => {
            report.warnings = set.warnings().to_vec();
            report.digest = Some(set.digest());
            report.rules = set.len();
        }
        Err(Error::Invalid(d)) => report.errors = d.0,
        Err(Error::Io { path, source }) => report.errors.push(Diagnostic::new(
            Severity::Error,
            &path.display().to_string(),
            Pos::default(),
            format!("cannot read the file: {source}"),
        )),
        Err(e) => report.errors.push(Diagnostic::new(Severity::Error, "", Pos::default(), e.to_string())),
    }
    report
}

/// One test case's result.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The expected effect.
    pub expected: Effect,
    /// The decided effect (`None` if the request was invalid).
    pub actual: Option<Effect>,
    /// The expected determining rules, if the case names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_determining: Option<Vec<String>>,
    /// The determining rules of the decision.
    pub actual_determining: Vec<String>,
    /// Why the case could not run, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of `zta policy test`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TestReport {
    /// The digest of the policy tested.
    pub digest: PolicyDigest,
    /// One result per case, in file order.
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    /// Whether every case passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(|c| c.passed)
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.cases.iter().map(|c| c.name.chars().count()).max().unwrap_or(4).max(4);
        let eff = |e: Option<Effect>| match e {
            Some(Effect::Allow) => "allow",
            Some(Effect::Deny) => "deny",
            None => "error",
        };
        writeln!(f, "{:<6}  {:<width$}  {:<8}  {:<8}  determining", "result", "case", "expected", "actual")?;
        for c in &self.cases {
            let det = c.actual_determining.join(", ");
            let mut note = String::new();
            if let Some(exp) = &c.expected_determining
                && *exp != c.actual_determining
            {
                note = format!("  (expected: {})", exp.join(", "));
            }
            if let Some(e) = &c.error {
                note = format!("  ({e})");
            }
            writeln!(
                f,
                "{:<6}  {:<width$}  {:<8}  {:<8}  {det}{note}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                eff(Some(c.expected)),
                eff(c.actual),
            )?;
        }
        let failed = self.cases.iter().filter(|c| !c.passed).count();
        writeln!(f, "{} passed, {failed} failed", self.cases.len() - failed)
    }
}

/// Runs the cases in `text` (YAML, JSON or TOML) against `policy`.
///
/// ```yaml
/// policy: crew.yaml            # used by run_test_file; ignored here
/// cases:
///   - name: researchers may search the web
///     request: {agent_id: research_bot, action_type: call_tool, tool_name: web_search,
///               principal: {segment: research}}
///     expect: allow
///     determining: [research_tools]    # optional, compared as a sorted list
/// ```
pub fn run_tests(policy: &PolicySet, text: &str, format: Format, origin: &str) -> Result<TestReport, Error> {
    let cases = parse_cases(text, format, origin)?.1;
    Ok(run_cases(policy, &cases))
}

/// Runs a test file whose `policy:` key names the policy file(s), relative to the test file.
pub fn run_test_file(path: &Path) -> Result<TestReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    let origin = path.display().to_string();
    let (policies, cases) = parse_cases(&text, Format::from_path(path), &origin)?;
    if policies.is_empty() {
        return Err(Error::TestFile {
            path: origin,
            message: "no `policy` key naming the policy file(s)".into(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = policies.iter().map(|p| dir.join(p)).collect();
    let set = PolicySet::from_files(&files)?;
    Ok(run_cases(&set, &cases))
}

struct Case {
    name: String,
    request: Value,
    expect: Effect,
    determining: Option<Vec<String>>,
}

fn parse_cases(text: &str, format: Format, origin: &str) -> Result<(Vec<String>, Vec<Case>), Error> {
    let bad = |message: String| Error::TestFile { path: origin.to_owned(), message };
    let doc = source::parse(text, format).map_err(|e| bad(Diagnostic::syntax(origin, e).to_string()))?;
    let doc = doc.to_json();
    let obj = doc.as_object().ok_or_else(|| bad("the file must be a map with `cases`".into()))?;
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "policy" | "cases")) {
        return Err(bad(format!("unknown key `{k}`; a test file has `policy` and `cases`")));
    }
    let policies = match obj.get("policy") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(_) => return Err(bad("`policy` must be a file name or a list of them".into())),
    };
    let items =
        obj.get("cases").and_then(Value::as_array).ok_or_else(|| bad("`cases` must be a list".into()))?;
    let mut cases = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let o = item.as_object().ok_or_else(|| bad(format!("case {} must be a map", i + 1)))?;
        if let Some(k) =
            o.keys().find(|k| !matches!(k.as_str(), "name" | "request" | "expect" | "determining"))
        {
            return Err(bad(format!(
                "case {}: unknown key `{k}`; a case has name, request, expect, determining",
                i + 1
            )));
        }
        let name =
            o.get("name").and_then(Value::as_str).map_or_else(|| format!("case {}", i + 1), str::to_owned);
        let expect = match o.get("expect").and_then(Value::as_str) {
            Some("allow") => Effect::Allow,
            Some("deny") => Effect::Deny,
            _ => return Err(bad(format!("case `{name}`: `expect` must be `allow` or `deny`"))),
        };
        let request =
            o.get("request").cloned().ok_or_else(|| bad(format!("case `{name}` has no `request`")))?;
        let determining = match o.get("determining") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(a)) => {
                let mut v: Vec<String> = a.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                v.sort();
                Some(v)
            }
            Some(_) => return Err(bad(format!("case `{name}`: `determining` must list rule names"))),
        };
        cases.push(Case { name, request, expect, determining });
    }
    Ok((policies, cases))
}

fn run_cases(policy: &PolicySet, cases: &[Case]) -> TestReport {
    let results = cases
        .iter()
        .map(|c| match request_from_attributes(&c.request) {
            Ok(req) => {
                let d = policy.decide(&req);
                let actual_determining: Vec<String> = d.determining.iter().map(|n| n.to_string()).collect();
                let passed =
                    d.effect == c.expect && c.determining.as_ref().is_none_or(|e| *e == actual_determining);
                CaseResult {
                    name: c.name.clone(),
                    passed,
                    expected: c.expect,
                    actual: Some(d.effect),
                    expected_determining: c.determining.clone(),
                    actual_determining,
                    error: None,
                }
            }
            Err(e) => CaseResult {
                name: c.name.clone(),
                passed: false,
                expected: c.expect,
                actual: None,
                expected_determining: c.determining.clone(),
                actual_determining: Vec::new(),
                error: Some(e.to_string()),
            },
        })
        .collect();
    TestReport { digest: policy.digest(), cases: results }
}
