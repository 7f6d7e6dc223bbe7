//! Records as the guard writes them, a sink that keeps them, and a clock the tests move.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicI64, Ordering},
};

use async_trait::async_trait;
use time::OffsetDateTime;
use zta_core::{
    Action, AgentId, AuditError, AuditEvent, AuditRecord, AuditSink, Basis, Durability, Effect,
    MemoryStateStore, StateStore,
};
use zta_monitor::{Monitor, MonitorConfig, MonitoredSink};

/// Keeps what it is given.
#[derive(Debug, Default)]
pub struct Kept(Mutex<Vec<AuditRecord>>);

impl Kept {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.0.lock().unwrap().clone()
    }
    /// The records of `event`.
    pub fn of(&self, event: AuditEvent) -> Vec<AuditRecord> {
        self.records().into_iter().filter(|r| r.event == event).collect()
    }
}

#[async_trait]
impl AuditSink for Kept {
    async fn append(&self, record: AuditRecord, _: Durability) -> Result<(), AuditError> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

/// A clock in whole seconds that tests set, for the records' times; it starts at the start of a day (a bucket start
/// for every window that divides a day).
#[derive(Debug, Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn new() -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Self(Arc::new(AtomicI64::new(now - now.rem_euclid(86_400))))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

/// A monitored sink over a fresh memory store, its records kept.
pub struct Setup {
    pub sink: MonitoredSink,
    pub kept: Arc<Kept>,
    pub state: Arc<dyn StateStore>,
    pub clock: TestClock,
}

pub fn setup(yaml_json: serde_json::Value) -> Setup {
    setup_on(yaml_json, Arc::new(MemoryStateStore::new()))
}

pub fn setup_on(config: serde_json::Value, state: Arc<dyn StateStore>) -> Setup {
    let config: MonitorConfig = serde_json::from_value(config).unwrap();
    let kept = Arc::new(Kept::default());
    let clock = TestClock::new();
    let monitor = Monitor::new(config, state.clone(), kept.clone()).unwrap();
    let sink = MonitoredSink::with_monitor(kept.clone(), Arc::new(monitor));
    Setup { sink, kept, state, clock }
}

pub fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// A policy denial of `agent` calling `tool`, as the guard records it.
pub fn denial(agent_id: &str, tool: &str) -> AuditRecord {
    let mut r = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
        .with_reason("no policy allows this")
        .with_detail("denial", "default_deny");
    r.agent_id = Some(agent(agent_id));
    r.action = Some(Action::tool_call(tool));
    r.basis = Some(Basis::DefaultDeny);
    r
}

/// A permit of `agent` calling `tool`.
pub fn permit(agent_id: &str, tool: &str) -> AuditRecord {
    let mut r = AuditRecord::new(AuditEvent::Authorization, Effect::Allow);
    r.agent_id = Some(agent(agent_id));
    r.action = Some(Action::tool_call(tool));
    r.basis = Some(Basis::Permitted);
    r
}

/// A failed authentication whose credential claimed `claimed`.
pub fn failed_login(claimed: &str) -> AuditRecord {
    AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
        .with_reason("invalid credential: wrong secret")
        .with_detail("denial", "invalid_credential")
        .with_detail("claimed_agent", claimed)
}

/// Appends `record` `times` times, stamped with the test clock's time as the guard stamps it.
pub async fn feed(s: &Setup, mut record: AuditRecord, times: usize) {
    record.time = s.clock.now();
    for _ in 0..times {
        s.sink.append(record.clone(), Durability::Queued).await.unwrap();
    }
}

/// A failed authentication from `source` whose credential claimed `claimed`.
pub fn failed_login_from(claimed: &str, source: &str) -> AuditRecord {
    failed_login(claimed).with_detail("source", source)
}
