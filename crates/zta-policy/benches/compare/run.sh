#!/usr/bin/env bash
# Runs the native bench and both comparisons one after the other and prints the medians.
# Usage: crates/zta-policy/benches/compare/run.sh   (from anywhere; honours CARGO_TARGET_DIR)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target"
args=("${@}")
(cd "$root" && cargo bench -p zta-policy --bench decision -- "${args[@]}") || echo "native bench failed (is the workspace loadable?)"
(cd "$here/cedar" && cargo bench --bench cedar -- "${args[@]}")
(cd "$here/agent-governance" && cargo bench --bench governance -- "${args[@]}")
median() {
  local f="$target/criterion/$1/new/estimates.json"
  [ -f "$f" ] && python3 -c "import json,sys; print('%.1f' % json.load(open(sys.argv[1]))['median']['point_estimate'])" "$f" || echo "-"
}
printf '\n%-12s %10s %12s %12s %22s %18s\n' "median (ns)" "zta" "zta|cedar" "cedar" "zta|agent_governance" "agent_governance"
for n in 21 2001; do
  printf '%-12s %10s %12s %12s %22s %18s\n' "$n rules" "$(median "decide_${n}_rules/zta")" \
    "$(median "vs_cedar_${n}_rules/ref_zta")" "$(median "vs_cedar_${n}_rules/cedar")" \
    "$(median "vs_agent_governance_${n}_rules/ref_zta")" "$(median "vs_agent_governance_${n}_rules/agent_governance")"
done
printf '%-20s %14s\n' "compile_2001_rules" "$(median compile_2001_rules/zta)"
