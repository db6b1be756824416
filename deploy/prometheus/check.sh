#!/usr/bin/env bash
# Checks StreamGate's Prometheus rules, their unit tests, the runbooks and the Grafana dashboard,
# from the repository root; offline once .venv/ exists (scripts/python-env.sh, for PyYAML):
#   1. promtool check rules on every rule file in deploy/prometheus/;
#   2. promtool test rules on every test file in deploy/prometheus/tests/;
#   3. that every alert has a `severity` of page or ticket, a summary, a description and a
#      runbook_url `docs/runbooks/<AlertName>.md` that exists; that every runbook in docs/runbooks/
#      belongs to an alert and docs/runbooks/README.md lists every alert; that every alert has a
#      promtool test where it fires and one where it must not;
#   4. that every metric a rule, a test or the dashboard reads is one StreamGate exports (a
#      `label: "streamgate_…"` in Sources/, with the right type: `_bucket`/`_sum`/`_count` only on
#      a histogram), one in PROPOSED_METRICS below, `up`, or one of the redis_exporter and
#      node_exporter names the alerts use; and every recording rule a query reads is defined
#      (the queries of the runbooks' ```promql blocks too);
#   5. that deploy/grafana/streamgate.json parses, has a Prometheus datasource variable that every
#      panel uses, and queries only what step 4 allows.
# Every problem is printed with its file; the script then exits 1. On success it prints
# "prometheus: rules valid". Needs promtool (Debian's prometheus package, scripts/bootstrap.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

failed=0
fail() { echo "prometheus: $*" >&2; failed=1; }

if ! command -v promtool >/dev/null 2>&1; then
  fail "promtool not found: install Debian's prometheus package (scripts/bootstrap.sh does)"
  exit 1
fi
scripts/python-env.sh

shopt -s nullglob
rule_files=(deploy/prometheus/*.yml)
test_files=(deploy/prometheus/tests/*.yml)
((${#rule_files[@]})) || fail "deploy/prometheus: no rule files"
((${#test_files[@]})) || fail "deploy/prometheus/tests: no test files"

# 1. Syntax, PromQL and duplicate rules.
for file in "${rule_files[@]}"; do
  if ! output="$(promtool check rules "$file" 2>&1)"; then
    fail "$file: promtool check rules failed:"$'\n'"$output"
  fi
done

# 2. Unit tests (each names the rule files it loads, relative to itself).
for file in "${test_files[@]}"; do
  if ! output="$(promtool test rules "$file" 2>&1)"; then
    fail "$file: promtool test rules failed:"$'\n'"$output"
  fi
done

# 3–5.
if ! .venv/bin/python - "${rule_files[@]}" -- "${test_files[@]}" <<'PY'; then
import json
import re
import sys
from pathlib import Path

import yaml

# Metrics the rules and the dashboard use that StreamGate does not export yet: name -> (type,
# labels, where to record it). Remove an entry once the metric is in Sources/ (the check says so).
PROPOSED_METRICS = {}

# Other exporters' metrics the rules may read.
EXTERNAL_METRICS = {
    "up",
    "redis_memory_used_bytes", "redis_memory_max_bytes",  # redis_exporter
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes",  # node_exporter
}

argv = sys.argv[1:]
split = argv.index("--")
rule_paths, test_paths = [Path(p) for p in argv[:split]], [Path(p) for p in argv[split + 1:]]
runbooks = Path("docs/runbooks")
dashboard_path = Path("deploy/grafana/streamgate.json")
problems = []


def problem(path, message):
    problems.append(f"prometheus: {path}: {message}")


def load_yaml(path):
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        problem(path, f"cannot read: {error}")
        return {}


# What Sources/ exports: `label: "streamgate_…"` in a swift-metrics constructor, and its type.
exported = {}
definition = re.compile(r'\b(Counter|FloatingPointCounter|Gauge|Meter|Timer|Recorder)\(\s*label:\s*"(streamgate_\w+)"([^)]*)\)')
for source in Path("Sources").rglob("*.swift"):
    for kind, name, rest in definition.findall(source.read_text(errors="replace")):
        if kind in ("Counter", "FloatingPointCounter"):
            exported[name] = "counter"
        elif kind == "Timer" or (kind == "Recorder" and re.search(r"aggregate:\s*true", rest)):
            exported[name] = "histogram"
        else:
            exported[name] = "gauge"
for name in sorted(set(PROPOSED_METRICS) & set(exported)):
    print(f"prometheus: note: {name} is in Sources/ now; drop it from PROPOSED_METRICS in deploy/prometheus/check.sh")
known = {**{n: t for n, (t, _, _) in PROPOSED_METRICS.items()}, **exported}

# Rules.
alerts, recorded = {}, set()
queries = []  # (file, where, expr)
for path in rule_paths:
    for group in load_yaml(path).get("groups", []) or []:
        for rule in group.get("rules", []) or []:
            expr = str(rule.get("expr", ""))
            if "record" in rule:
                recorded.add(rule["record"])
                queries.append((path, f"record {rule['record']}", expr))
                continue
            name = rule.get("alert", "?")
            queries.append((path, f"alert {name}", expr))
            alerts.setdefault(name, path)
            labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
            if labels.get("severity") not in ("page", "ticket"):
                problem(path, f"alert {name}: label severity must be page or ticket, not {labels.get('severity')!r}")
            for key in ("summary", "description", "runbook_url"):
                if not str(annotations.get(key, "")).strip():
                    problem(path, f"alert {name}: annotation {key} is missing")
            want = f"docs/runbooks/{name}.md"
            if annotations.get("runbook_url") and annotations["runbook_url"] != want:
                problem(path, f"alert {name}: runbook_url must be {want}, not {annotations['runbook_url']}")
            if not Path(want).is_file() and not any(want in line for line in problems):
                problem(path, f"alert {name}: its runbook {want} does not exist")
if not alerts:
    problem("deploy/prometheus", "no alerts found")

# Runbooks.
for page in sorted(runbooks.glob("*.md")):
    if page.name != "README.md" and page.stem not in alerts:
        problem(page, "no alert has this runbook (alert names and runbook files must match)")
index = runbooks / "README.md"
index_text = index.read_text() if index.is_file() else ""
if not index_text:
    problem(index, "missing: it indexes the runbooks and states the SLOs")
for name in sorted(alerts):
    if index_text and f"{name}.md" not in index_text:
        problem(index, f"does not link {name}.md")

# The runbooks' ```promql blocks are checked like the rules (a line each; `#` starts a comment).
for page in sorted(runbooks.glob("*.md")):
    for block in re.findall(r"```promql\n(.*?)```", page.read_text(), re.S):
        for line in block.splitlines():
            expr = re.sub(r"\s+#.*$", "", line).strip()
            if expr:
                queries.append((page, "promql", expr))

# Tests: every alert fires in one case and stays quiet in another.
fires, quiet = set(), set()
for path in test_paths:
    document = load_yaml(path)
    for test in document.get("tests", []) or []:
        for series in test.get("input_series", []) or []:
            name = str(series.get("series", "")).split("{")[0].strip()
            queries.append((path, "input series", name))
        for case in test.get("alert_rule_test", []) or []:
            name = case.get("alertname")
            if name not in alerts:
                problem(path, f"a test names {name!r}, which no rule file defines")
            (fires if case.get("exp_alerts") else quiet).add(name)
        for case in test.get("promql_expr_test", []) or []:
            queries.append((path, "promql_expr_test", str(case.get("expr", ""))))
for name in sorted(alerts):
    if name not in fires:
        problem(alerts[name], f"alert {name}: no promtool test expects it to fire")
    if name not in quiet:
        problem(alerts[name], f"alert {name}: no promtool test expects it to stay quiet")

# Dashboard.
try:
    dashboard = json.loads(dashboard_path.read_text())
except (OSError, ValueError) as error:
    problem(dashboard_path, f"cannot parse: {error}")
    dashboard = {}
if dashboard:
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list", [])}
    if (variables.get("datasource") or {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        problem(dashboard_path, "needs a templating variable `datasource` of type datasource, query prometheus")

    def panels(items):
        for item in items or []:
            yield item
            yield from panels(item.get("panels"))

    targets = 0
    for panel in panels(dashboard.get("panels")):
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "?")
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problem(dashboard_path, f"panel {title!r}: datasource must be ${{datasource}}")
        for target in panel.get("targets") or []:
            targets += 1
            if not str(target.get("expr", "")).strip():
                problem(dashboard_path, f"panel {title!r}: a target has no expr")
            queries.append((dashboard_path, f"panel {title!r}", str(target.get("expr", ""))))
    if not targets:
        problem(dashboard_path, "no panel queries anything")

# Metric names in PromQL: drop strings, label matchers, ranges, grouping clauses and offsets;
# what is left that is an identifier not followed by "(" and not a keyword is a metric name.
KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "inf", "nan"}


def metric_names(expr):
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[\w$]+", " ", text)
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        name = match.group(0)
        if name.lower() in KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue
        yield name


for path, where, expr in queries:
    for name in metric_names(expr):
        if ":" in name:
            if name not in recorded:
                problem(path, f"{where}: reads {name}, which no recording rule defines")
            continue
        if name in EXTERNAL_METRICS:
            continue
        if not name.startswith("streamgate_"):
            problem(path, f"{where}: reads {name}, which is neither StreamGate's nor an allowed exporter metric")
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and known.get(base) == "histogram":
            continue
        kind = known.get(name)
        if kind is None:
            problem(path, f"{where}: reads {name}, which Sources/ does not export and PROPOSED_METRICS does not list")
        elif kind == "histogram":
            problem(path, f"{where}: {name} is a histogram: read {name}_bucket, _sum or _count")

for line in problems:
    print(line, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  failed=1
fi

if ((failed)); then
  exit 1
fi
echo "prometheus: rules valid"
