//! The canonical form of a model (for the digest and the duplicate check).

use super::*;

// ----- canonical form (for the digest and the duplicate check) -----
//
// Written directly as text (no intermediate JSON values): rules sorted by name, conditions by
// path, operators in a fixed order, strings JSON-escaped. Any deterministic function of the
// normalized model would do; this one is also readable.

pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Runs without anything to escape are copied whole; every escaped character is ASCII, so
    // the run boundaries are character boundaries.
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        // INVARIANT: `run..i` lies between ASCII bytes (or the ends), so on char boundaries.
        debug_assert!(s.is_char_boundary(run) && s.is_char_boundary(i));
        out.push_str(s.get(run..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b => out.push_str(&format!("\\u{b:04x}")),
        }
        run = i + 1;
    }
    debug_assert!(s.is_char_boundary(run));
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

pub(super) fn write_lit(out: &mut String, lit: &Lit) {
    match lit {
        Lit::Null => out.push_str("null"),
        Lit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Lit::Int(i) => out.push_str(&i.to_string()),
        Lit::Float(f) => out.push_str(&format!("{f:?}")),
        Lit::Str(s) => write_str(out, s),
        Lit::Time(_, s) => {
            out.push_str("{\"time\":");
            write_str(out, s);
            out.push('}');
        }
        Lit::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_lit(out, x);
            }
            out.push(']');
        }
    }
}

fn write_cond(out: &mut String, c: &CondSpec) {
    out.push('[');
    write_str(out, &c.path);
    for o in &c.ops {
        out.push(',');
        write_str(out, o.op.as_str());
        out.push(',');
        match &o.operand {
            Operand::Lit(l) => write_lit(out, l),
            // A map, which no literal is: `{"attr":path}`.
            Operand::Ref(r) => {
                out.push_str("{\"attr\":");
                write_str(out, &r.path);
                out.push('}');
            }
        }
    }
    out.push(']');
}

fn write_when(out: &mut String, w: &WhenSpec) {
    let list = |out: &mut String, tag: &str, v: &[WhenSpec]| {
        out.push_str(tag);
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_when(out, x);
        }
        out.push_str("]}");
    };
    match w {
        WhenSpec::All(v) => list(out, "{\"all\":[", v),
        WhenSpec::Any(v) => list(out, "{\"any\":[", v),
        WhenSpec::Not(x) => {
            out.push_str("{\"not\":");
            write_when(out, x);
            out.push('}');
        }
        WhenSpec::Cond(c) => write_cond(out, c),
    }
}

/// The canonical text of a rule's logic (effect, priority, conditions, `when`, obligations):
/// equal for rules that decide alike, whatever their names and descriptions.
pub(crate) fn logic_key(r: &RuleSpec) -> String {
    let mut out = String::with_capacity(128);
    out.push_str(match r.effect {
        Effect::Allow => "{\"effect\":\"allow\",\"priority\":",
        Effect::Deny => "{\"effect\":\"deny\",\"priority\":",
    });
    out.push_str(&r.priority.to_string());
    out.push_str(",\"conditions\":[");
    for (i, c) in r.conditions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_cond(&mut out, c);
    }
    out.push_str("],\"when\":");
    match &r.when {
        Some(w) => write_when(&mut out, w),
        None => out.push_str("null"),
    }
    out.push_str(",\"obligations\":[");
    for (i, o) in r.obligations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        write_str(&mut out, &o.name);
        out.push(',');
        out.push_str(&canonical_json(&o.params));
        out.push(']');
    }
    out.push_str("]}");
    out
}

/// JSON text with object keys sorted, whatever the `serde_json` map implementation.
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = map.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
