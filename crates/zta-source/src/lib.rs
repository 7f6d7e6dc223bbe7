//! Positioned documents: YAML, JSON and TOML text read into one tree whose every key and value
//! knows its line and column, with repeated keys refused and sizes bounded; and serde over that
//! tree, so a policy or config error names the exact `line:column` it is about.
//!
//! Both the policy loader and the `zta.yaml` config reader use it: one reader, one set of rules.

mod de;
mod document;

pub use de::{DeError, from_node, from_str, split_tag};
pub use document::{Format, Key, Node, Pos, SyntaxError, Value, parse};
