//! "What may this agent do?" as a policy engine answers it for code that holds only the
//! [`PolicyEngine`](crate::PolicyEngine) trait: which action types, tools and target agents
//! some allow rule may permit a principal. Not on the request path: an enforcement point uses
//! it to choose what to offer or to try (a gateway's tool list, an action search), and still
//! decides each request in full.

/// The values of one request attribute that some allow rule may permit. Never narrower than
/// the truth: a value it does not admit is never allowed; one it admits may still be denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// Any value except these (sorted, deduplicated), which are never allowed.
    AnyExcept(Vec<String>),
    /// Only these (sorted, deduplicated; empty: none).
    Only(Vec<String>),
}

impl Candidates {
    /// `Only`, sorted and deduplicated.
    pub fn only(values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::Only(sorted(values))
    }

    /// `AnyExcept`, sorted and deduplicated.
    pub fn any_except(values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::AnyExcept(sorted(values))
    }

    /// Whether `value` may be permitted.
    pub fn admits(&self, value: &str) -> bool {
        match self {
            Self::AnyExcept(except) => except.binary_search_by(|v| v.as_str().cmp(value)).is_err(),
            Self::Only(only) => only.binary_search_by(|v| v.as_str().cmp(value)).is_ok(),
        }
    }

    /// What either admits.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        match (self, other) {
            (Self::Only(a), Self::Only(b)) => Self::only(a.into_iter().chain(b)),
            (Self::AnyExcept(e), Self::Only(o)) | (Self::Only(o), Self::AnyExcept(e)) => {
                Self::AnyExcept(e.into_iter().filter(|v| o.binary_search(v).is_err()).collect())
            }
            (Self::AnyExcept(a), Self::AnyExcept(b)) => {
                Self::AnyExcept(a.into_iter().filter(|v| b.binary_search(v).is_ok()).collect())
            }
        }
    }
}

fn sorted(values: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().map(Into::into).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// What some allow rule of a policy may permit one principal, from
/// [`PolicyEngine::permissible`](crate::PolicyEngine::permissible). Each part may be wider
/// than the truth (conditions on arguments, context and resources are not solved), never
/// narrower: a request with an action type, tool or target it does not admit is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permissible {
    /// The action types (`call_tool`, `send_message`, a custom verb, ...).
    pub actions: Candidates,
    /// The tools of `call_tool` requests.
    pub tools: Candidates,
    /// The target agents of requests that have one.
    pub targets: Candidates,
}

impl Permissible {
    /// An answer from its three parts.
    pub fn new(actions: Candidates, tools: Candidates, targets: Candidates) -> Self {
        Self { actions, tools, targets }
    }

    /// Whether calling `tool` may be permitted (a tool list offers only such tools).
    pub fn may_call_tool(&self, tool: &str) -> bool {
        self.actions.admits("call_tool") && self.tools.admits(tool)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::Candidates;

    #[test]
    fn union_admits_what_either_admits() {
        let sets = [
            Candidates::only(["b", "a", "a"]),
            Candidates::only(Vec::<String>::new()),
            Candidates::any_except(["a", "c"]),
            Candidates::any_except(["c", "d"]),
        ];
        for x in &sets {
            for y in &sets {
                let u = x.clone().union(y.clone());
                for v in ["a", "b", "c", "d", "e"] {
                    assert_eq!(u.admits(v), x.admits(v) || y.admits(v), "{x:?} | {y:?} at {v}");
                }
            }
        }
        assert_eq!(Candidates::only(["b", "a", "a"]), Candidates::Only(vec!["a".into(), "b".into()]));
    }
}
