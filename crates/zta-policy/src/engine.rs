//! The compiled policy set: loading, the candidate index, and the decision procedure.

use std::{collections::HashMap, path::Path};

use sha2::{Digest as _, Sha256};
use smallvec::SmallVec;
use zta_core::{
    Attribute, AuthzRequest, Basis, Decision, Determining, Effect, Permissible, PolicyDigest, PolicyEngine,
    PolicyError, Principal, RuleName,
};

use crate::{
    compile::{Accessor, Cond, Expr, RegexCache, Rule, Test},
    diag::{Diagnostic, Diagnostics, Error, Severity},
    model::{FlowSpec, Model, Reader, RuleSpec},
    schema::Schema,
    source::{self, Format},
};

/// The determining rule name of a denied segment crossing.
pub const SEGMENT_BOUNDARY: &str = "segment-boundary";

/// The determining rule name of [`PolicySet::decide`]'s denial of a request that does not
/// conform to the policy's `schema` ([`PolicyEngine::evaluate`] reports it as
/// [`PolicyError::InvalidRequest`] instead).
pub const INVALID_REQUEST: &str = "invalid-request";

/// One policy text to load.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Where it came from (a file name), used in diagnostics.
    pub origin: &'a str,
    /// The text.
    pub text: &'a str,
    /// Its syntax.
    pub format: Format,
}

/// The candidate index: keys are policy literals, and lookups only decide which rules to test,
/// never the outcome.
pub(crate) type LiteralMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Which indexed attribute a rule is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Action,
    Agent,
    Resource,
}

/// Candidate lists, each sorted by (priority descending, deny first, name).
#[derive(Debug, Default)]
struct Index {
    by_action: LiteralMap<Box<[u32]>>,
    by_agent: LiteralMap<Box<[u32]>>,
    by_resource: LiteralMap<Box<[u32]>>,
    rest: Box<[u32]>,
}

#[derive(Debug, Clone)]
struct Flow {
    from: Box<str>,
    to: Box<str>,
    actions: Option<Box<[Box<str>]>>,
}

/// A compiled, indexed policy set: the native [`PolicyEngine`].
///
/// Load it from files ([`PolicySet::from_files`]) or text ([`PolicySet::from_sources`]); a
/// policy with any error does not load, and every error is reported. Decisions follow
/// POLICY.md: the request schema first (when the policy declares `schema`), then segment
/// boundaries (when it declares `segments`), then priority tiers from the highest down, deny
/// overriding allow within a tier, and a default deny.
#[derive(Debug)]
pub struct PolicySet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) specs: Vec<RuleSpec>,
    index: Index,
    flows: Option<Vec<Flow>>,
    pub(crate) schema: Option<Schema>,
    pub(crate) digest: PolicyDigest,
    warnings: Vec<Diagnostic>,
    segment_rule: RuleName,
    invalid_rule: RuleName,
}

/// Matched rule ids in the deciding tier (inline, so ordinary decisions do not allocate).
type Matches = SmallVec<[u32; 16]>;

impl PolicySet {
    /// Loads and compiles policy files (YAML, or JSON/TOML by extension). All errors in all
    /// files are reported together.
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, Error> {
        if paths.is_empty() {
            return Err(Error::NoFiles);
        }
        let mut texts = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_ref();
            let text =
                std::fs::read_to_string(p).map_err(|source| Error::Io { path: p.to_owned(), source })?;
            texts.push((p.display().to_string(), text, Format::from_path(p)));
        }
        let sources: Vec<Source<'_>> =
            texts.iter().map(|(origin, text, format)| Source { origin, text, format: *format }).collect();
        Self::from_sources(&sources)
    }

    /// Loads and compiles policy texts.
    pub fn from_sources(sources: &[Source<'_>]) -> Result<Self, Error> {
        let mut diags = Vec::new();
        let mut model = Model::default();
        for s in sources {
            match source::parse(s.text, s.format) {
                Ok(doc) => Reader::new(s.origin, &mut diags).read_document(&doc, &mut model),
                Err(e) => diags.push(Diagnostic::syntax(s.origin, e)),
            }
        }
        Self::build(model, diags)
    }

    /// Loads one YAML text (for tests and embedding).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        Self::from_sources(&[Source { origin: "<policy>", text, format: Format::Yaml }])
    }

    fn build(mut model: Model, mut diags: Vec<Diagnostic>) -> Result<Self, Error> {
        // Duplicate names, across all files (rules with errors included).
        let mut seen: foldhash::HashMap<&str, (&str, crate::source::Pos)> =
            foldhash::HashMapExt::with_capacity(model.names.len());
        for (name, file, pos) in &model.names {
            if let Some((first_file, first)) = seen.get(name.as_str()) {
                diags.push(
                    Diagnostic::new(Severity::Error, file, *pos, format!("duplicate rule name `{name}`"))
                        .with_rule(Some(name))
                        .with_hint(format!(
                            "the name is already used at {first_file}:{}:{}; rule names must be unique",
                            first.line, first.col
                        )),
                );
            } else {
                seen.insert(name, (file, *pos));
            }
        }
        let schema = model.schema.as_ref().map(|decls| crate::schema::merge(decls, &mut diags));
        crate::schema::check_references(&model.rules, schema.as_ref(), &mut diags);
        if !diags.is_empty() {
            diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(Error::Invalid(Diagnostics(diags)));
        }
        model.rules.sort_by(|a, b| a.name.cmp(&b.name));
        let logic: Vec<String> = model.rules.iter().map(crate::model::logic_key).collect();
        let schema_text = schema.as_ref().map(crate::schema::canonical);
        let digest =
            PolicyDigest(Sha256::digest(model.canonical(&logic, schema_text.as_deref()).as_bytes()).into());

        let mut cache = RegexCache::default();
        let mut rules = Vec::with_capacity(model.rules.len());
        for spec in &model.rules {
            match compile_rule(spec, &mut cache) {
                Ok(r) => rules.push(r),
                Err(e) => diags.push(
                    Diagnostic::new(Severity::Error, &spec.file, spec.pos, e)
                        .with_rule(Some(&spec.name))
                        .with_hint("fix the condition"),
                ),
            }
        }
        if !diags.is_empty() {
            return Err(Error::Invalid(Diagnostics(diags)));
        }
        let index = build_index(&mut rules);
        let flows = model.segments.as_ref().map(|flows| flows.iter().map(compile_flow).collect());
        let mut set = Self {
            rules,
            specs: model.rules,
            index,
            flows,
            schema: schema.as_ref().map(Schema::compile),
            digest,
            warnings: Vec::new(),
            segment_rule: RuleName::from(SEGMENT_BOUNDARY),
            invalid_rule: RuleName::from(INVALID_REQUEST),
        };
        set.warnings = crate::analysis::analyze(&set, &logic);
        Ok(set)
    }

    /// The content hash of the policy set (independent of rule order and file layout).
    pub fn digest(&self) -> PolicyDigest {
        self.digest
    }

    /// Warnings found at load: shadowed, dead and duplicate rules, and (when the policy has a
    /// `schema`) rule conditions on attributes the schema does not declare.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set has no rules (everything is denied by default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether segment boundaries are enforced (the policy has a `segments` section).
    pub fn enforces_segments(&self) -> bool {
        self.flows.is_some()
    }

    /// Whether the policy declares a request `schema`.
    pub fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    /// Checks `request` against the policy's `schema`: `Err(PolicyError::InvalidRequest)`,
    /// naming the first offending path, its declared type and what was found, when a declared
    /// attribute has another type, a required one is missing, or a map on the way to a
    /// declared path is something else. Allocates only to refuse.
    pub fn check_schema(&self, request: &AuthzRequest) -> Result<(), PolicyError> {
        match self.schema.as_ref().and_then(|s| s.violations(request).next()) {
            Some(v) => Err(PolicyError::InvalidRequest(v.to_string())),
            None => Ok(()),
        }
    }

    /// Decides `request`. Never fails and, without obligations, never allocates. A request
    /// that does not conform to the `schema` is denied before the segment check and every
    /// rule (basis `ExplicitDeny`, determining rule [`INVALID_REQUEST`]);
    /// [`PolicyEngine::evaluate`] reports it as an invalid request instead, which the guard
    /// denies with reason "invalid request".
    pub fn decide(&self, request: &AuthzRequest) -> Decision {
        if let Some(schema) = &self.schema
            && schema.violations(request).next().is_some()
        {
            let mut determining = Determining::new();
            determining.push(self.invalid_rule.clone());
            return Decision::new(Basis::ExplicitDeny, determining, self.digest);
        }
        self.decide_conforming(request)
    }

    /// Decides a request that conforms to the schema: segments, then rules.
    fn decide_conforming(&self, request: &AuthzRequest) -> Decision {
        if let Some(d) = self.segment_check(request) {
            return d;
        }
        let mut matches = Matches::new();
        let (effect, _) = self.decide_rules(request, &mut matches);
        let mut determining = Determining::new();
        let mut obligations = Vec::new();
        for &id in &matches {
            if let Some(r) = self.rules.get(id as usize) {
                determining.push(r.name.clone());
                if effect == Some(Effect::Allow) {
                    obligations.extend(r.obligations.iter().cloned());
                }
            }
        }
        let basis = match effect {
            None => Basis::DefaultDeny,
            Some(Effect::Deny) => Basis::ExplicitDeny,
            Some(Effect::Allow) => Basis::Permitted,
        };
        let mut d = Decision::new(basis, determining, self.digest);
        d.obligations = obligations;
        d
    }

    /// The segment boundary: `Some(deny)` when the request crosses segments without a flow.
    pub(crate) fn segment_check(&self, request: &AuthzRequest) -> Option<Decision> {
        match self.crossing(request)? {
            SegmentOutcome::Denied => {
                let mut determining = Determining::new();
                determining.push(self.segment_rule.clone());
                Some(Decision::new(Basis::ExplicitDeny, determining, self.digest))
            }
            SegmentOutcome::Same | SegmentOutcome::Flow(_) => None,
        }
    }

    /// How the request relates to segment boundaries; `None` when they are not enforced or the
    /// request has no target.
    pub(crate) fn crossing(&self, request: &AuthzRequest) -> Option<SegmentOutcome> {
        let flows = self.flows.as_ref()?;
        let target = request.target()?;
        let from = request.principal().segment.as_deref();
        let to = target.segment.as_deref();
        if from == to {
            return Some(SegmentOutcome::Same);
        }
        let (Some(from), Some(to)) = (from, to) else { return Some(SegmentOutcome::Denied) };
        let action = request.action().action_type();
        let found = flows.iter().position(|f| {
            *f.from == *from
                && *f.to == *to
                && f.actions.as_ref().is_none_or(|a| a.iter().any(|x| **x == *action))
        });
        Some(match found {
            Some(i) => SegmentOutcome::Flow(i),
            None => SegmentOutcome::Denied,
        })
    }

    /// The segments a flow lets an agent of segment `from` address, when segments are
    /// enforced.
    pub(crate) fn flows_from(&self, from: Option<&str>) -> Option<crate::what_can::SegmentReach> {
        let flows = self.flows.as_ref()?;
        let mut out: Vec<(String, Option<Vec<String>>)> = match from {
            Some(from) => flows
                .iter()
                .filter(|f| *f.from == *from && *f.to != *from)
                .map(|f| {
                    (f.to.to_string(), f.actions.as_ref().map(|a| a.iter().map(|x| x.to_string()).collect()))
                })
                .collect(),
            None => Vec::new(),
        };
        out.sort();
        Some(crate::what_can::SegmentReach { from: from.map(str::to_owned), flows: out })
    }

    pub(crate) fn flow_text(&self, i: usize) -> Option<String> {
        let f = self.flows.as_ref()?.get(i)?;
        Some(match &f.actions {
            Some(a) => format!("{} -> {} [{}]", f.from, f.to, a.join(", ")),
            None => format!("{} -> {} [any action]", f.from, f.to),
        })
    }

    /// Walks the tiers from the highest down; fills `matches` (sorted by name) with the
    /// matching rules of the winning effect in the deciding tier.
    #[inline]
    pub(crate) fn decide_rules(
        &self,
        req: &AuthzRequest,
        matches: &mut Matches,
    ) -> (Option<Effect>, Option<i64>) {
        fn lookup<'m>(map: &'m LiteralMap<Box<[u32]>>, key: Option<&str>) -> &'m [u32] {
            if map.is_empty() {
                return &[];
            }
            key.and_then(|k| map.get(k)).map_or(&[], |v| &**v)
        }
        let lists: [(&[u32], bool); 4] = [
            (lookup(&self.index.by_action, Some(req.action().action_type())), true),
            (lookup(&self.index.by_agent, Some(req.principal().agent_id.as_str())), true),
            (lookup(&self.index.by_resource, req.resource().map(|r| r.kind.as_str())), true),
            (&self.index.rest, false),
        ];
        let mut cursors = [0usize; 4];
        loop {
            // The next tier: the highest priority among the heads of the lists.
            let mut tier: Option<i64> = None;
            for ((list, _), cur) in lists.iter().zip(cursors.iter()) {
                if let Some(r) = list.get(*cur).and_then(|&id| self.rules.get(id as usize)) {
                    tier = Some(tier.map_or(r.priority, |t: i64| t.max(r.priority)));
                }
            }
            let Some(tier) = tier else { return (None, None) };
            for effect in [Effect::Deny, Effect::Allow] {
                for ((list, via_index), cur) in lists.iter().zip(cursors.iter_mut()) {
                    while let Some(&id) = list.get(*cur) {
                        let Some(r) = self.rules.get(id as usize) else { break };
                        if r.priority != tier || r.effect != effect {
                            break;
                        }
                        *cur += 1;
                        if r.matches(req, *via_index) {
                            matches.push(id);
                        }
                    }
                }
                if !matches.is_empty() {
                    // Rule ids are assigned in name order.
                    matches.sort_unstable();
                    return (Some(effect), Some(tier));
                }
            }
        }
    }
}

/// How a request relates to the segment boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentOutcome {
    /// Both sides in the same segment (or both unknown).
    Same,
    /// A crossing permitted by the flow with this index.
    Flow(usize),
    /// A crossing no flow permits.
    Denied,
}

impl PolicyEngine for PolicySet {
    /// Refuses a request that does not conform to the `schema` with
    /// [`PolicyError::InvalidRequest`] before any rule runs; decides the others.
    fn evaluate(&self, request: &AuthzRequest) -> Result<Decision, PolicyError> {
        self.check_schema(request)?;
        Ok(self.decide_conforming(request))
    }

    fn digest(&self) -> PolicyDigest {
        self.digest
    }

    /// From [`PolicySet::what_can`]: the action types, tools and targets of its allow rules,
    /// less the values an unconditional deny always overrides.
    fn permissible(&self, principal: &Principal) -> Option<Permissible> {
        Some(self.what_can(principal).permissible())
    }
}

fn compile_rule(spec: &RuleSpec, cache: &mut RegexCache) -> Result<Rule, String> {
    let conds = spec.conditions.iter().map(|c| Cond::new(c, cache)).collect::<Result<Box<[Cond]>, _>>()?;
    let when = spec.when.as_ref().map(|w| Expr::new(w, cache)).transpose()?;
    Ok(Rule {
        name: RuleName::from(spec.name.as_str()),
        effect: spec.effect,
        priority: spec.priority,
        conds,
        when,
        obligations: spec.obligations.clone().into_boxed_slice(),
        indexed_cond: None,
    })
}

fn compile_flow(f: &FlowSpec) -> Flow {
    Flow {
        from: f.from.as_str().into(),
        to: f.to.as_str().into(),
        actions: f.actions.as_ref().map(|a| a.iter().map(|s| Box::from(s.as_str())).collect()),
    }
}

/// The keys a single-test condition proves, when it is a literal string equality or a list
/// of strings (`in`).
fn index_keys(cond: &Cond) -> Option<Vec<&str>> {
    let [test] = &*cond.tests else { return None };
    match test.lit()? {
        Test::Eq(crate::compile::Scalar::Str(s)) => Some(vec![&**s]),
        Test::In(set) => set
            .iter()
            .map(|s| match s {
                crate::compile::Scalar::Str(s) => Some(&**s),
                _ => None,
            })
            .collect::<Option<Vec<&str>>>()
            .map(|mut v| {
                v.sort_unstable();
                v.dedup();
                v
            }),
        _ => None,
    }
}

/// Where a rule may be filed in one family: the condition and the keys it proves.
type IndexOption = (usize, Vec<Box<str>>);

fn build_index(rules: &mut [Rule]) -> Index {
    const FAMILIES: [Family; 3] = [Family::Action, Family::Agent, Family::Resource];
    // Where each rule could be filed: per family, the condition and the keys it proves.
    let options: Vec<[Option<IndexOption>; 3]> = rules
        .iter()
        .map(|rule| {
            FAMILIES.map(|family| {
                rule.conds.iter().enumerate().find_map(|(i, c)| {
                    let ok = match family {
                        Family::Action => c.accessor == Accessor::Reserved(Attribute::ActionType),
                        Family::Agent => c.accessor == Accessor::Reserved(Attribute::AgentId),
                        Family::Resource => c.accessor == Accessor::Reserved(Attribute::ResourceType),
                    };
                    if ok { index_keys(c).map(|k| (i, k.into_iter().map(Box::from).collect())) } else { None }
                })
            })
        })
        .collect();
    // How many rules could share each key: a rule is filed where its largest bucket is smallest
    // (an agent id usually beats `action_type: call_tool`).
    let mut counts: [foldhash::HashMap<&str, usize>; 3] = Default::default();
    for opts in &options {
        for (opt, count) in opts.iter().zip(counts.iter_mut()) {
            for k in opt.iter().flat_map(|(_, keys)| keys) {
                *count.entry(&**k).or_default() += 1;
            }
        }
    }
    let mut by: [foldhash::HashMap<Box<str>, Vec<u32>>; 3] = Default::default();
    let mut rest = Vec::new();
    for (id, (rule, opts)) in rules.iter_mut().zip(&options).enumerate() {
        let id = u32::try_from(id).unwrap_or(u32::MAX);
        let best = opts
            .iter()
            .zip(counts.iter())
            .enumerate()
            .filter_map(|(f, (opt, count))| {
                let (i, keys) = opt.as_ref()?;
                let worst = keys.iter().map(|k| count.get(&**k).copied().unwrap_or(0)).max().unwrap_or(0);
                Some((worst, f, *i, keys))
            })
            .min_by_key(|(worst, f, _, _)| (*worst, *f));
        match best {
            Some((_, f, i, keys)) => {
                if let Some(map) = by.get_mut(f) {
                    for k in keys {
                        map.entry(k.clone()).or_default().push(id);
                    }
                }
                rule.indexed_cond = Some(i);
            }
            None => rest.push(id),
        }
    }
    let order = |rules: &[Rule], list: &mut Vec<u32>| {
        list.sort_by_key(|&id| {
            let r = rules.get(id as usize);
            (
                std::cmp::Reverse(r.map_or(i64::MIN, |r| r.priority)),
                r.map_or(1, |r| u8::from(r.effect == Effect::Allow)),
                id,
            )
        });
    };
    let finish = |map: foldhash::HashMap<Box<str>, Vec<u32>>| -> LiteralMap<Box<[u32]>> {
        map.into_iter()
            .map(|(k, mut v)| {
                order(rules, &mut v);
                (k, v.into_boxed_slice())
            })
            .collect()
    };
    let [a, b, c] = by;
    let (by_action, by_agent, by_resource) = (finish(a), finish(b), finish(c));
    order(rules, &mut rest);
    Index { by_action, by_agent, by_resource, rest: rest.into_boxed_slice() }
}
