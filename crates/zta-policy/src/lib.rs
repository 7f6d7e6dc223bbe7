//! The native policy engine of ZTA: the heart of least privilege and microsegmentation.
//!
//! A [`PolicySet`] is loaded from YAML (the original project's files load unchanged, including
//! its whole config file with rules under `policies: policies:`), JSON or TOML, checked with
//! every error reported at `file:line:column` with a hint, analysed for rules that can never
//! decide, and compiled into typed predicates behind a candidate index. It implements
//! [`zta_core::PolicyEngine`]; [`PolicyWatcher`] adds hot reload.
//!
//! ```
//! use zta_policy::PolicySet;
//!
//! let policy = PolicySet::from_yaml(
//!     "policies:\n  - {name: tasks, effect: allow, conditions: {action_type: execute_task}}\n",
//! )?;
//! assert!(policy.warnings().is_empty());
//! assert_eq!(policy.len(), 1);
//! # Ok::<(), zta_policy::Error>(())
//! ```
//!
//! # The language
//!
//! ```yaml
//! segments:                       # optional; present = segment boundaries are enforced
//!   names: [research, analysis]   # optional; flows must then name declared segments
//!   flows:
//!     - {from: research, to: analysis, actions: [send_message, handoff]}
//! policies:
//!   - name: allow_research_tools         # unique
//!     effect: allow                      # allow | deny, nothing else
//!     priority: 100                      # integer, default 0
//!     description: research agents may search the web
//!     conditions:                        # attribute path -> literal or operator map
//!       principal.segment: research
//!       action_type: call_tool
//!       tool_name: {in: [web_search, fetch_url]}
//!     when:                              # optional: all / any / not over condition maps
//!       not: {principal.roles: suspended}
//!     obligations: [audit_tool_output]   # allow rules only; or {name, params}
//! ```
//!
//! A condition is a literal (equality) or a map of one or more operators, **all** of which must
//! hold: `eq ne gt gte lt lte in not_in contains regex starts_with ends_with glob cidr exists`.
//! `in`/`not_in` take a list (a string operand is a load error). `regex` is linear-time,
//! anchored at the start like Python's `re.match`, and `$` means the end of the text (no
//! trailing-newline quirk). `glob` matches the whole value (`*`, `?`, `[abc]`). `cidr` takes a
//! network or a list of them. Comparisons are between numbers, or between RFC 3339 times
//! (operand a time, attribute a time string); across types every operator is false.
//!
//! **Absent attributes** satisfy exactly the negative operators (`ne`, `not_in`,
//! `exists: false`) and no positive one.
//!
//! **Attribute references:** an operand `{attr: path}` names another attribute of the same
//! request (`resource.owner: {eq: {attr: agent_id}}`). `eq ne gt gte lt lte in not_in contains
//! starts_with ends_with` take one; the referenced value stands where a literal would, with the
//! same typing (`in`/`not_in` need it to be a list, `contains` takes it as the element), and a
//! value of a type the operator does not take makes the positive operator false and its
//! negative twin true. An absent referenced attribute satisfies exactly `ne` and `not_in`.
//! References are resolved to accessors at load; an unknown reserved path, an operator that
//! takes no reference, a self-reference and two types that can never match (reserved types are
//! fixed, others come from the `schema`) are load errors. [`PolicySet::what_can`] answers the
//! reverse question: what a principal could be allowed to do.
//!
//! **Attributes** are those of [`zta_core::AuthzRequest::attribute`]: `agent_id`,
//! `source_agent` and `principal.*` come only from the verified principal; `action_type`,
//! `action.kind`, `action.name`, `tool_name`, `target_agent`, `target.segment`,
//! `resource.type`, `resource.id`, `resource.<path>` from the request; anything else walks the
//! context (`message.type`). A path under a reserved root that names no attribute
//! (`principal.rolez`) is a load error.
//!
//! # Lists
//!
//! Some attributes are lists (`principal.roles`, `principal.groups`, `principal.delegation`,
//! or a JSON array in the context). Positive operators hold when **any element** satisfies
//! them, and each negative operator is the exact negation of its positive twin:
//!
//! | operator | on a list attribute |
//! |---|---|
//! | literal / `eq x` | membership: some element equals `x` |
//! | `ne x` | no element equals `x` |
//! | `in [a, b]` | some element is `a` or `b` |
//! | `not_in [a, b]` | no element is `a` or `b` |
//! | `contains x` | membership (on a string attribute: substring) |
//! | `regex` `starts_with` `ends_with` `glob` `cidr` `gt`... | some element matches |
//! | `exists` | the list is present (even if empty) |
//! | a list literal `[a, b]` | the whole list equals `[a, b]`, in order |
//!
//! # Schema
//!
//! A `schema` section declares the types of request attributes per action type, so that a
//! request cannot dodge a rule by giving an attribute another shape (`message: {type:
//! {nested: system}}` or `message: {type: [system]}` against a deny on `message.type:
//! {regex: "^system$"}`):
//!
//! ```yaml
//! schema:
//!   send_message:                       # an action type, or "*" (quoted) for every action
//!     message.type: {type: string, required: true}
//!     message.priority: number          # shorthand for {type: number}
//!   call_tool:
//!     arguments: object
//!     resource.owner: string            # a resource attribute
//!   "*":
//!     trace_id: string
//! ```
//!
//! Types: `string`, `number` (integer or float), `boolean`, `object` (a map), `time` (an RFC
//! 3339 string), `list`, `list<T>` with `T` one of the others. Paths are context paths or
//! `resource.<path>`; a reserved attribute, an unknown type, a path declared twice with two
//! types (for one action, or for one action and `"*"`, in one file or across files) and a
//! path declared inside one that is not an `object` are load errors. A request whose action
//! type has declarations (its own, or `"*"`'s) conforms when every declared path that is
//! present has its type (`null` has none), every required path is present, and every map on
//! the way to a declared path is a map. Undeclared attributes are allowed. A request that
//! does not conform is refused before the segment check and every rule:
//! [`zta_core::PolicyEngine::evaluate`] returns `PolicyError::InvalidRequest` naming the path,
//! the declared type and what was found (the guard denies it as an invalid request), and
//! [`PolicySet::decide`] denies it with determining rule [`INVALID_REQUEST`]. When a policy
//! has a schema, loading warns about each rule condition on a context or resource attribute
//! the schema does not declare for the action types the rule can apply to. The schema is
//! part of the digest.
//!
//! # Combining
//!
//! 0. **Schema** (when the policy has a `schema` section): a request that does not conform is
//!    refused as invalid, above everything else.
//! 1. **Segments** (when the policy has a `segments` section): a request with a target agent
//!    whose `principal.segment` differs from `target.segment` (one side unknown and the other
//!    known counts as different; both unknown counts as the same) is denied with basis
//!    `ExplicitDeny` and determining rule [`SEGMENT_BOUNDARY`], before and above every rule,
//!    unless a flow matches: `from` and `to` equal the two segments and the action type is in
//!    `actions` (omitted: any action). A permitted crossing still needs an allow rule.
//! 2. Rules are grouped by priority; the highest priority with a matching rule decides.
//! 3. Within that tier, deny overrides allow.
//! 4. No matching rule: deny (`DefaultDeny`).
//! 5. The result never depends on the order of rules or files; the digest neither.
//!
//! A decision names the matching rules of the winning effect in the deciding tier (sorted by
//! name) and carries the obligations of the determining allow rules; the guard refuses an allow
//! whose obligations it cannot discharge.

mod analysis;
pub mod cli;
mod compile;
mod diag;
mod engine;
mod explain;
mod model;
mod pattern;
mod schema;
mod watch;
mod what_can;

use zta_source as source;

pub use diag::{Diagnostic, Diagnostics, Error, Severity};
pub use engine::{INVALID_REQUEST, PolicySet, SEGMENT_BOUNDARY, Source};
pub use explain::{ConditionTrace, Explanation, ReferenceTrace, RuleTrace, SegmentTrace, WhenTrace};
pub use source::Format;
pub use watch::{PolicyConfig, PolicyWatcher, ReloadOutcome};
pub use what_can::{OpenCondition, RuleReach, SegmentReach, Values, WhatCan};
