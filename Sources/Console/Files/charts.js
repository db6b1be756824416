// The health view's figures: this server's /metrics sampled every 2 s, turned into rates the
// way the Prometheus rules in deploy/prometheus compute them, and drawn as small line charts.

/// Samples of a Prometheus text exposition: [{name, labels, value}].
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function total(samples, name, test = () => true) {
  return samples.filter((s) => s.name === name && test(s.labels)).reduce((sum, s) => sum + s.value, 0);
}

/// Cumulative bucket counts by upper bound, summed over every series of `names`.
function buckets(samples, names) {
  const byBound = new Map();
  for (const s of samples) {
    if (!names.some((n) => s.name === `${n}_bucket`)) continue;
    const bound = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    byBound.set(bound, (byBound.get(bound) || 0) + s.value);
  }
  return [...byBound.entries()].sort((a, b) => a[0] - b[0]);
}

/// The 95th percentile from the growth of cumulative buckets between two samples, interpolated
/// within its bucket as histogram_quantile does.
function p95(before, after) {
  const start = new Map(before);
  const grown = after.map(([bound, count]) => [bound, count - (start.get(bound) || 0)]);
  const count = grown.length ? grown[grown.length - 1][1] : 0;
  if (count <= 0) return null;
  const rank = 0.95 * count;
  let lower = 0, below = 0;
  for (const [bound, cumulative] of grown) {
    if (cumulative >= rank) {
      if (bound === Infinity) return lower;
      return lower + (bound - lower) * ((rank - below) / Math.max(1, cumulative - below));
    }
    lower = bound;
    below = cumulative;
  }
  return lower;
}

/// What one sample of /metrics says, for differencing with the next.
export function snapshot(text, at) {
  const samples = parseMetrics(text);
  const requests = ["streamgate_origin_requests_total", "streamgate_api_requests_total"];
  return {
    at,
    requests: requests.reduce((sum, n) => sum + total(samples, n), 0),
    errors: requests.reduce((sum, n) => sum + total(samples, n, (l) => /^5/.test(l.status || "")), 0),
    lookups: total(samples, "streamgate_origin_cache_total", (l) => l.level === "l1"),
    hits: total(samples, "streamgate_origin_cache_total", (l) => l.result === "hit"),
    latency: buckets(samples, ["streamgate_origin_request_duration_seconds", "streamgate_api_request_duration_seconds"]),
  };
}

/// Rates between two snapshots; null where nothing happened in between.
export function rates(before, after) {
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  const requests = after.requests - before.requests;
  const lookups = after.lookups - before.lookups;
  return {
    rate: requests / seconds,
    errorRatio: requests > 0 ? (after.errors - before.errors) / requests : null,
    p95: p95(before.latency, after.latency),
    hitRatio: lookups > 0 ? (after.hits - before.hits) / lookups : null,
  };
}

/// A small chart: title, the latest value, a line of the last points and, when given, the
/// objective as a dashed line; `breach(value)` marks the value when the objective is missed.
export class Chart {
  constructor(container, { title, format, objective = null, breach = () => false, points = 60 }) {
    Object.assign(this, { format, objective, breach, points, values: [] });
    this.element = document.createElement("figure");
    this.element.className = "chart";
    this.element.innerHTML = `<h3></h3><div class="value" aria-live="off">–</div>
      <svg viewBox="0 0 100 40" preserveAspectRatio="none" role="img"><polyline points=""></polyline></svg>`;
    this.element.querySelector("h3").textContent = title;
    this.element.querySelector("svg").setAttribute("aria-label", `${title} over the last ${points * 2} seconds`);
    container.append(this.element);
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > this.points) this.values.shift();
    const shown = this.element.querySelector(".value");
    shown.textContent = value === null || value === undefined ? "–" : this.format(value);
    shown.classList.toggle("breach", value !== null && value !== undefined && this.breach(value));
    const known = this.values.filter((v) => v !== null && v !== undefined);
    const top = Math.max(...known, this.objective ?? 0, 1e-9) * 1.15;
    const step = 100 / Math.max(1, this.points - 1);
    const offset = this.points - this.values.length;
    const line = this.values
      .map((v, i) => (v === null || v === undefined ? null : `${((offset + i) * step).toFixed(2)},${(40 - (v / top) * 40).toFixed(2)}`))
      .filter(Boolean)
      .join(" ");
    this.element.querySelector("polyline").setAttribute("points", line);
    const svg = this.element.querySelector("svg");
    svg.querySelector("line")?.remove();
    if (this.objective !== null) {
      const y = (40 - (this.objective / top) * 40).toFixed(2);
      const mark = document.createElementNS("http://www.w3.org/2000/svg", "line");
      Object.entries({ x1: 0, x2: 100, y1: y, y2: y }).forEach(([k, v]) => mark.setAttribute(k, v));
      svg.append(mark);
    }
  }
}
