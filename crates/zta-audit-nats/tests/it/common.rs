//! The server under test, and streams that are deleted when the test ends.

use std::sync::Mutex;

use zta_audit_nats::NatsConfig;

/// The NATS server (with JetStream) to test against: `ZTA_TEST_NATS_URL`, by default the one
/// this machine kind runs on 127.0.0.1:4222. The tests fail when it does not answer.
pub(crate) fn url() -> String {
    std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Streams made by one test, deleted by [`Streams::delete_all`].
#[derive(Debug, Default)]
pub(crate) struct Streams(Mutex<Vec<String>>);

impl Streams {
    /// A config for a stream of its own, named after `tag` (any text).
    pub(crate) fn config(&self, tag: &str) -> NatsConfig {
        let clean: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
        let name = format!("ZTA_TEST_{clean}");
        let mut config = NatsConfig::new(url());
        config.stream.clone_from(&name);
        config.subject_prefix = format!("zta_test.{clean}");
        let mut streams = self.0.lock().unwrap();
        if !streams.contains(&name) {
            streams.push(name);
        }
        config
    }

    pub(crate) async fn delete_all(&self) {
        let names = std::mem::take(&mut *self.0.lock().unwrap());
        let context = async_nats::jetstream::new(async_nats::connect(url()).await.unwrap());
        for name in names {
            let _ = context.delete_stream(&name).await;
        }
    }
}
