// The StreamGate console: a client of the job API (/v1) like any other, signed in by an HttpOnly
// session cookie; every change carries the session's CSRF token. Views are plain DOM, no framework.
import { upload } from "/console/tus.js";
import { Chart, rates, snapshot } from "/console/charts.js";

const $ = (selector, root = document) => root.querySelector(selector);
const session = { csrf: null };
const views = ["upload", "jobs", "assets", "asset", "farm", "health"];
let leaveView = () => {};

// MARK: - API

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (response.status === 401 && path !== "/v1/session") {
    showSignIn("Your session has ended: sign in again.");
    throw new Error("signed out");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
  return data;
}

function notify(message, bad = false) {
  const notice = $("#notice");
  notice.textContent = message;
  notice.classList.toggle("bad", bad);
  notice.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => (notice.hidden = true), 6000);
}

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const clock = (seconds) => {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
};
const bytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

// MARK: - Sign-in

function showSignIn(message = "") {
  session.csrf = null;
  leaveView();
  leaveView = () => {};
  document.querySelectorAll(".view").forEach((v) => (v.hidden = true));
  $("#nav").hidden = $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message;
  $("#api-key").focus();
}

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const answer = await api("/v1/session", { method: "POST", body: { api_key: $("#api-key").value } });
    $("#api-key").value = "";
    signedIn(answer.csrf_token);
  } catch (error) {
    $("#sign-in-error").textContent = error.message;
  }
});

$("#sign-out").addEventListener("click", async () => {
  await api("/v1/session", { method: "DELETE" }).catch(() => {});
  showSignIn("Signed out.");
});

function signedIn(csrf) {
  session.csrf = csrf;
  $("#sign-in").hidden = true;
  $("#nav").hidden = $("#sign-out").hidden = false;
  route();
}

// MARK: - Routing

function route() {
  if (!session.csrf) return;
  const [, name = "jobs", raw] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) || [];
  let argument;
  try { argument = raw === undefined ? undefined : decodeURIComponent(raw); } catch { argument = undefined; }
  const view = views.includes(name) ? name : "jobs";
  leaveView();
  leaveView = () => {};
  document.querySelectorAll(".view").forEach((v) => (v.hidden = v.id !== `view-${view}`));
  document.querySelectorAll("nav a").forEach((a) => {
    const current = a.getAttribute("href") === `#/${view === "asset" ? "assets" : view}`;
    current ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current");
  });
  const enter = { upload: enterUpload, jobs: enterJobs, assets: enterAssets, asset: enterAsset, farm: enterFarm, health: enterHealth }[view];
  const leave = enter(argument);
  leaveView = typeof leave === "function" ? leave : () => {};
  document.title = `${view[0].toUpperCase()}${view.slice(1)} · StreamGate console`;
}
window.addEventListener("hashchange", route);

// MARK: - Upload

function enterUpload() {}

function startUploads(files) {
  const form = $("#upload-form");
  if (!form.reportValidity()) return;
  for (const file of files) {
    const bar = element("progress", { max: 100, value: 0 });
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const status = element("span", { className: "hint", textContent: "starting" });
    const item = element("li", {}, element("strong", { textContent: file.name }), " ", status, bar);
    $("#uploads").prepend(item);
    const fields = { profile: $("#upload-profile").value, asset_id: $("#upload-asset").value };
    upload(file, fields, {
      headers: () => ({ "X-CSRF-Token": session.csrf }),
      onProgress: (sent, size) => {
        bar.value = (100 * sent) / size;
        status.textContent = `${bytes(sent)} of ${bytes(size)}`;
      },
      onRetry: (error, wait) => (status.textContent = `connection lost (${error.message}); resuming in ${wait / 1000} s`),
    }).then(
      (job) => {
        status.textContent = "uploaded; ";
        status.append(element("a", { href: "#/jobs", textContent: job ? `job ${job}` : "see jobs" }));
        item.dataset.job = job || "";
      },
      (error) => {
        status.textContent = `failed: ${error.message}`;
        status.className = "error";
      },
    );
  }
}

$("#upload-files").addEventListener("change", (event) => {
  startUploads([...event.target.files]);
  event.target.value = "";
});
const drop = $("#drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  startUploads([...event.dataTransfer.files]);
});
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("#upload-files").click(); }
});

// MARK: - Jobs

const jobs = new Map();

function jobRow(job) {
  const row = element("tr", { id: `job-${job.id}` });
  row.dataset.state = job.state;
  const percent = job.state === "succeeded" ? 100 : job.progress ?? 0;
  const bar = element("progress", { max: 100, value: percent });
  bar.setAttribute("aria-label", `Progress of job ${job.id}`);
  const figures = [
    `${Math.round(percent)} %`,
    job.fps ? `${job.fps.toFixed(0)} fps` : null,
    job.speed ? `${job.speed.toFixed(2)}×` : null,
    job.state === "running" && job.eta_s !== undefined ? `ETA ${clock(job.eta_s)}` : null,
    job.stage && job.state === "running" ? job.stage : null,
  ].filter(Boolean).join(" · ");
  const actions = element("td");
  if (["queued", "running", "retrying"].includes(job.state)) {
    actions.append(element("button", { type: "button", className: "quiet", textContent: "Cancel", onclick: () => act(`/v1/jobs/${job.id}`, "DELETE", `Cancelling ${job.id}`) }));
  } else if (["failed", "dead", "cancelled"].includes(job.state)) {
    actions.append(element("button", { type: "button", className: "quiet", textContent: "Retry", onclick: () => act(`/v1/jobs/${job.id}/retry`, "POST", `Retrying ${job.id}`) }));
  }
  const asset = job.asset_id ? element("a", { href: `#/asset/${encodeURIComponent(job.asset_id)}`, textContent: job.asset_id }) : "–";
  row.append(
    element("td", {}, element("code", { textContent: job.id })),
    element("td", {}, asset),
    element("td", { className: `state state-${job.state}`, textContent: job.state }),
    element("td", { className: "num", textContent: `${job.attempts}/${job.max_attempts}` }),
    element("td", { textContent: job.worker || "–" }),
    element("td", { className: "progress-cell" }, bar, element("small", { textContent: figures }), job.error ? element("div", { className: "job-error", textContent: job.error }) : null),
    actions,
  );
  return row;
}

async function act(path, method, message) {
  try {
    const answer = await api(path, { method });
    notify(answer && answer.job_id && method === "POST" ? `${message}: new job ${answer.job_id}` : message);
    await loadJobs();
  } catch (error) {
    notify(error.message, true);
  }
}

function showsJob(job) {
  const state = $("#job-state").value, search = $("#job-search").value.trim().toLowerCase();
  return (!state || job.state === state) && (!search || job.id.toLowerCase().includes(search) || (job.asset_id || "").toLowerCase().includes(search));
}

function renderJobs() {
  const body = $("#jobs tbody");
  const shown = [...jobs.values()].filter(showsJob).sort((a, b) => (b.created_at || 0) - (a.created_at || 0)).slice(0, 200);
  body.replaceChildren(...shown.map(jobRow));
  if (!shown.length) body.append(element("tr", {}, element("td", { colSpan: 7, textContent: "No jobs." })));
}

function updateJob(job) {
  jobs.set(job.id, job);
  // The list shows the newest 200; what falls far behind is forgotten.
  if (jobs.size > 1000) [...jobs.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0)).slice(0, jobs.size - 1000).forEach((j) => jobs.delete(j.id));
  const row = document.getElementById(`job-${job.id}`);
  if (row && showsJob(job)) row.replaceWith(jobRow(job));
  else renderJobs();
}

async function loadJobs() {
  const [list, dead] = await Promise.all([api("/v1/jobs?limit=200"), api("/v1/dead")]);
  list.jobs.forEach((job) => jobs.set(job.id, job));
  renderJobs();
  $("#dead").replaceChildren(...dead.dead.map((d) => element("li", {}, element("code", { textContent: d.job || d.id }), ` ${d.reason || ""}`)));
  if (!dead.dead.length) $("#dead").append(element("li", { className: "hint", textContent: "None." }));
}

function enterJobs() {
  loadJobs().catch((error) => notify(error.message, true));
  const events = new EventSource("/v1/events");
  let opened = 0;
  events.addEventListener("open", () => {
    $("#live-state").textContent = "live";
    // Changes made while the feed was away are read whole once it is back.
    if (opened++) loadJobs().catch(() => {});
  });
  events.addEventListener("error", () => {
    $("#live-state").textContent = events.readyState === EventSource.CLOSED ? "not live: reload the page" : "reconnecting…";
  });
  events.addEventListener("job", (event) => updateJob(JSON.parse(event.data)));
  return () => events.close();
}
$("#job-state").addEventListener("change", renderJobs);
$("#job-search").addEventListener("input", renderJobs);
$("#job-filters").addEventListener("submit", (event) => event.preventDefault());

// MARK: - Assets

async function enterAssets() {
  const list = $("#assets");
  try {
    const { assets } = await api("/v1/assets");
    list.replaceChildren(...assets.map((asset) => {
      const poster = element("img", { src: `/v/${encodeURIComponent(asset.asset_id)}/poster.jpg`, alt: "", loading: "lazy" });
      poster.addEventListener("error", () => poster.replaceWith(element("div", { className: "blank" })));
      return element("li", {}, element("a", { href: `#/asset/${encodeURIComponent(asset.asset_id)}` }, poster,
        element("span", {}, element("strong", { textContent: asset.asset_id }), element("br"), element("small", { className: "hint", textContent: `${asset.state} · ${asset.version}` }))));
    }));
    if (!assets.length) list.append(element("li", { className: "hint", textContent: "Nothing is published yet." }));
  } catch (error) {
    notify(error.message, true);
  }
}

/// Seek previews: the storyboard's WebVTT cues (`sheet.jpg#xywh=x,y,w,h`) shown over the scrubber.
async function loadStoryboard(path) {
  const text = await (await fetch(path)).text();
  const base = new URL(path, location.href);
  const seconds = (t) => t.split(":").reduce((sum, part) => sum * 60 + Number(part), 0);
  return [...text.matchAll(/([\d:.]+)\s+-->\s+([\d:.]+)\s*\n([^\n#]+)#xywh=(\d+),(\d+),(\d+),(\d+)/g)].map((m) => ({
    start: seconds(m[1]), end: seconds(m[2]), url: new URL(m[3].trim(), base).href, x: +m[4], y: +m[5], w: +m[6], h: +m[7],
  }));
}

function enterAsset(id) {
  const video = $("#player"), scrubber = $("#scrubber"), preview = $("#preview");
  // Answers that arrive after this view was left are dropped: another asset's policy must never
  // fill this one's form.
  let current = true;
  $("#asset-title").textContent = id;
  $("#asset-facts").replaceChildren();
  $("#renditions tbody").replaceChildren();
  $("#policy").value = "";
  $("#policy-error").textContent = "";
  $("#watch-link").href = `/watch/${encodeURIComponent(id)}`;
  video.src = `/v/${encodeURIComponent(id)}/master.m3u8`;
  let cues = [];
  const timeUpdate = () => { if (document.activeElement !== scrubber) scrubber.value = video.currentTime; };
  const metadata = () => (scrubber.max = isFinite(video.duration) ? video.duration : 0);
  video.addEventListener("timeupdate", timeUpdate);
  video.addEventListener("loadedmetadata", metadata);
  const showPreview = (time) => {
    const cue = cues.find((c) => time >= c.start && time < c.end);
    preview.hidden = !cue;
    if (!cue) return;
    Object.assign(preview.style, {
      backgroundImage: `url("${cue.url}")`, backgroundPosition: `-${cue.x}px -${cue.y}px`, width: `${cue.w}px`, height: `${cue.h}px`,
      left: `${Math.min(scrubber.clientWidth - cue.w, Math.max(0, (time / (scrubber.max || 1)) * scrubber.clientWidth - cue.w / 2))}px`,
    });
  };
  scrubber.oninput = () => { showPreview(Number(scrubber.value)); video.currentTime = Number(scrubber.value); };
  scrubber.onpointermove = (event) => showPreview((event.offsetX / scrubber.clientWidth) * (scrubber.max || 0));
  scrubber.onpointerleave = scrubber.onblur = () => (preview.hidden = true);

  api(`/v1/assets/${encodeURIComponent(id)}`).then(async (asset) => {
    if (!current) return;
    if (asset.poster_path) video.poster = asset.poster_path;
    const facts = { State: asset.state, Version: asset.version, Profile: asset.profile, Duration: asset.duration_s ? clock(asset.duration_s) : null,
      Versions: asset.versions.join(", "), Publisher: asset.publisher, Playback: asset.playback_path };
    $("#asset-facts").replaceChildren(...Object.entries(facts).filter(([, v]) => v).flatMap(([k, v]) => [element("dt", { textContent: k }), element("dd", { textContent: v })]));
    $("#renditions tbody").replaceChildren(...(asset.renditions || []).map((r) => element("tr", {},
      element("td", { textContent: r.name }), element("td", { textContent: r.width ? `${r.width}×${r.height}` : "audio" }),
      element("td", { textContent: r.codecs.join(", ") }), element("td", { className: "num", textContent: `${Math.round(r.average_bandwidth / 1000)} kb/s` }),
      element("td", { className: "num", textContent: r.segments }), element("td", { className: "num", textContent: bytes(r.bytes) }))));
    if (asset.storyboard_path) cues = await loadStoryboard(asset.storyboard_path).catch(() => []);
  }).catch((error) => current && notify(error.message, true));

  fetch(`/v1/assets/${encodeURIComponent(id)}/policy`, { credentials: "same-origin" }).then(async (response) => {
    const text = response.ok ? JSON.stringify(await response.json(), null, 2) : "";
    if (current) $("#policy").value = text;
    if (current && !response.ok && response.status !== 404) $("#policy-error").textContent = `The policy cannot be read (HTTP ${response.status}).`;
  }).catch((error) => current && ($("#policy-error").textContent = `The policy cannot be read: ${error.message}`));
  return () => {
    current = false;
    video.removeEventListener("timeupdate", timeUpdate);
    video.removeEventListener("loadedmetadata", metadata);
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load();
  };
}

function currentAsset() {
  return decodeURIComponent(location.hash.replace(/^#\/asset\//, ""));
}

$("#policy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = currentAsset(), text = $("#policy").value.trim();
  $("#policy-error").textContent = "";
  try {
    if (!text) {
      await api(`/v1/assets/${encodeURIComponent(id)}/policy`, { method: "DELETE" });
      notify(`${id} is public`);
      return;
    }
    let policy;
    try { policy = JSON.parse(text); } catch (error) { throw new Error(`the policy is not JSON: ${error.message}`); }
    const answer = await api(`/v1/assets/${encodeURIComponent(id)}/policy`, { method: "PUT", body: policy });
    notify(`Policy ${answer.policy_id} saved for ${id}`);
  } catch (error) {
    $("#policy-error").textContent = error.message;
  }
});
$("#policy-remove").addEventListener("click", () => { $("#policy").value = ""; $("#policy-form").requestSubmit(); });
$("#withdraw").addEventListener("click", async () => {
  const id = currentAsset();
  if (!confirm(`Withdraw ${id}? Every origin stops serving it.`)) return;
  try {
    await api(`/v1/assets/${encodeURIComponent(id)}`, { method: "DELETE" });
    notify(`${id} withdrawn`);
    location.hash = "#/assets";
  } catch (error) {
    notify(error.message, true);
  }
});

// MARK: - Farm

function farmControl(farm) {
  const input = element("input", { type: "number", min: 0, max: 256, value: farm.desired ?? farm.running ?? 0, id: `scale-${farm.name}` });
  const label = element("label", { htmlFor: input.id, textContent: `Workers of farm ${farm.name}` });
  const running = farm.running === null || farm.running === undefined ? "not running" : `${farm.running} running`;
  const state = element("span", { className: "hint", textContent: `${running}; asked for ${farm.desired ?? "–"}${farm.host ? ` on ${farm.host}` : ""}` });
  const form = element("form", { className: "farm-control card" }, element("div", {}, label, element("br"), input), element("button", { type: "submit", textContent: "Set" }), state);
  form.dataset.farm = farm.name;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/farms/${encodeURIComponent(farm.name)}`, { method: "PUT", body: { workers: Number(input.value) } });
      notify(`Farm ${farm.name}: ${input.value} workers asked; watch them below`);
    } catch (error) {
      notify(error.message, true);
    }
  });
  return form;
}

async function refreshFarm() {
  const [queue, { workers }, { farms }] = await Promise.all([api("/v1/queue"), api("/v1/workers"), api("/v1/farms")]);
  $("#queue tbody").replaceChildren(...Object.entries(queue.priorities).map(([name, p]) => element("tr", {},
    element("th", { scope: "row", textContent: name }), element("td", { className: "num", textContent: p.lag }),
    element("td", { className: "num", textContent: p.pending }), element("td", { className: "num", textContent: clock(p.oldestWaitingSeconds) }))));
  $("#queue-totals").textContent = `Retrying ${queue.delayed} · dead ${queue.dead} · ${Object.entries(queue.totals).map(([k, v]) => `${k} ${v}`).join(" · ")}`;
  const focused = document.activeElement?.closest?.(".farm-control")?.dataset.farm;
  const box = $("#farms");
  for (const farm of farms) {
    const existing = box.querySelector(`[data-farm="${CSS.escape(farm.name)}"]`);
    if (existing && existing.dataset.farm === focused) { existing.querySelector(".hint").textContent = farmControl(farm).querySelector(".hint").textContent; continue; }
    existing ? existing.replaceWith(farmControl(farm)) : box.append(farmControl(farm));
  }
  box.querySelectorAll(".farm-control").forEach((form) => { if (!farms.some((f) => f.name === form.dataset.farm)) form.remove(); });
  box.querySelector(".hint-none")?.remove();
  if (!farms.length) box.append(element("p", { className: "hint hint-none", textContent: "No farm has reported; start one with `streamgate farm`." }));
  const now = Date.now();
  $("#workers tbody").replaceChildren(...workers.map((w) => element("tr", { id: `worker-${w.id}` },
    element("td", {}, element("code", { textContent: w.id })), element("td", { textContent: w.state }), element("td", { textContent: w.track }),
    element("td", { textContent: w.jobs.join(", ") || "–" }), element("td", { className: "num", textContent: w.jobs_done }),
    element("td", { className: "num", textContent: clock((now - (w.started_at || now)) / 1000) }))));
}

function enterFarm() {
  const tick = () => refreshFarm().catch((error) => notify(error.message, true));
  tick();
  const timer = setInterval(tick, 2000);
  return () => clearInterval(timer);
}

// MARK: - Health

function enterHealth() {
  const box = $("#charts");
  box.replaceChildren();
  const percent = (v) => `${(v * 100).toFixed(v < 0.01 ? 2 : 1)} %`;
  const charts = {
    rate: new Chart(box, { title: "Requests per second", format: (v) => v.toFixed(1) }),
    errorRatio: new Chart(box, { title: "Error ratio (5xx)", format: percent, objective: 0.005, breach: (v) => v > 0.005 }),
    p95: new Chart(box, { title: "p95 latency", format: (v) => `${(v * 1000).toFixed(1)} ms`, objective: 0.1, breach: (v) => v > 0.1 }),
    hitRatio: new Chart(box, { title: "Cache hit ratio (L1+L2)", format: percent, objective: 0.95, breach: (v) => v < 0.95 }),
    speed: new Chart(box, { title: "Transcode speed (running jobs)", format: (v) => `${v.toFixed(2)}×`, objective: 1, breach: (v) => v < 1 }),
    depth: new Chart(box, { title: "Jobs waiting", format: (v) => String(v) }),
  };
  let previous = null;
  const tick = async () => {
    try {
      const [metrics, running, queue] = await Promise.all([fetch("/metrics").then((r) => r.text()), api("/v1/jobs?state=running&limit=20"), api("/v1/queue")]);
      const now = snapshot(metrics, Date.now());
      if (previous) Object.entries(rates(previous, now)).forEach(([name, value]) => charts[name].push(value));
      previous = now;
      const speeds = running.jobs.map((j) => j.speed).filter((s) => s > 0);
      charts.speed.push(speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : null);
      charts.depth.push(Object.values(queue.priorities).reduce((sum, p) => sum + p.lag, 0));
      const breached = Object.values(charts).filter((c) => c.element.querySelector(".breach")).map((c) => c.element.querySelector("h3").textContent);
      $("#objectives").textContent = breached.length ? `Objectives missed now: ${breached.join(", ")}.` : "Every objective is met now.";
    } catch (error) {
      notify(error.message, true);
    }
  };
  tick();
  refreshAlerts();
  const timers = [setInterval(tick, 2000), setInterval(refreshAlerts, 10000)];
  return () => timers.forEach(clearInterval);
}

/// The deployment's alerts, as its Prometheus holds them (`serve --prometheus-url`).
async function refreshAlerts() {
  const state = $("#alerts-state"), list = $("#alerts");
  try {
    const answer = await api("/v1/alerts");
    list.replaceChildren(...answer.alerts.map((alert) => {
      const item = element("li", { className: alert.severity === "page" ? "page" : "" },
        element("strong", { textContent: alert.name }), ` ${alert.state}${alert.severity ? ` · ${alert.severity}` : ""}${alert.since ? ` since ${new Date(alert.since).toLocaleString()}` : ""}`,
        alert.summary ? element("div", { textContent: alert.summary }) : null);
      // deploy/prometheus names runbooks by their path in the repository; a URL becomes a link.
      if (alert.runbook) item.append(/^https?:\/\//.test(alert.runbook)
        ? element("a", { href: alert.runbook, textContent: "Runbook", rel: "noopener" })
        : element("div", { className: "hint", textContent: `Runbook: ${alert.runbook}` }));
      return item;
    }));
    state.textContent = !answer.configured ? "No Prometheus is configured (serve --prometheus-url URL)."
      : answer.alerts.length ? `${answer.alerts.filter((a) => a.state === "firing").length} firing, ${answer.alerts.filter((a) => a.state !== "firing").length} pending.` : "No alert is firing.";
  } catch (error) {
    state.textContent = error.message;
  }
}

// MARK: - Start: first paint is the page itself; the session is asked for after.

fetch("/v1/session", { credentials: "same-origin" }).then(async (response) => {
  if (response.ok) signedIn((await response.json()).csrf_token);
  else showSignIn();
}, () => showSignIn("The server cannot be reached."));
