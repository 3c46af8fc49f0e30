// Tenku web page: a form that submits jobs to /v1/jobs and a gallery that polls their progress.
// Plain JS, no build step; everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("tenku-token") || "";
let info = null;  // GET /v1/limits
const cards = new Map();  // job id -> {el, state}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (res.status === 401) {
    $("token-bar").hidden = false;
    throw new Error("this server needs an API token");
  }
  return res;
}

async function errorText(res) {
  try {
    const body = await res.json();
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    return body.limit ? `${detail} [${body.limit}]` : detail;
  } catch (e) {
    return `HTTP ${res.status}`;
  }
}

// ---- form
function option(select, value, label, disabled = false) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  o.disabled = disabled;
  select.appendChild(o);
}

function fillForm() {
  const d = info.defaults, s = info.stride, lim = info.limits;
  $("mode").innerHTML = "";
  for (const m of info.modes) {
    const ok = info.supported_modes.includes(m);
    option($("mode"), m, ok ? m : `${m} (not supported by this model yet)`, !ok);
  }
  // Aspect ratios at the model's default area, rounded to its stride.
  const area = d.width * d.height;
  const fit = (r) => {
    const w = Math.max(s, Math.round(Math.sqrt(area * r) / s) * s);
    const h = Math.max(s, Math.round(Math.sqrt(area / r) / s) * s);
    return [Math.min(w, lim.max_width), Math.min(h, lim.max_height)];
  };
  $("aspect").innerHTML = "";
  option($("aspect"), `${d.width}x${d.height}`, `default ${d.width}x${d.height}`);
  for (const [name, r] of [["1:1", 1], ["16:9", 16 / 9], ["9:16", 9 / 16], ["4:3", 4 / 3]]) {
    const [w, h] = fit(r);
    option($("aspect"), `${w}x${h}`, `${name} (${w}x${h})`);
  }
  option($("aspect"), "input", "size of the input");
  for (const id of ["width", "height"]) { $(id).step = s; $(id).min = s; }
  $("width").value = d.width;
  $("height").value = d.height;
  // Durations: one clip up to the model's max_frames, then longer videos (up to the server's max_frames,
  // 60 s by default) that the pipeline makes with a sliding window, in text mode.
  $("frames").innerHTML = "";
  option($("frames"), "", `default (${d.frames} frames, or the storyboard's length)`);
  const most = Math.min(lim.max_frames, d.max_frames || lim.max_frames);
  for (let f = 1; f <= most; f += 4) {
    option($("frames"), f, f === 1 ? "1 frame (image)" : `${f} frames (${(f / d.fps).toFixed(1)} s)`);
  }
  for (const s of [5, 6, 8, 10, 15, 20, 30, 45, 60]) {
    const f = Math.round(s * d.fps);
    if (f <= most || f > lim.max_frames) continue;
    option($("frames"), f, `${s} s (${f} frames, sliding window)`);
    $("frames").lastChild.dataset.long = "1";
  }
  $("frames").value = "";
  $("steps").value = d.steps;
  $("steps").max = lim.max_steps;
  $("guidance").value = d.guidance;
  $("guidance").max = lim.max_guidance;
  showModeFields();
}

function showModeFields() {
  const mode = $("mode").value;
  for (const el of document.querySelectorAll("[data-modes]")) {
    el.hidden = !el.dataset.modes.split(" ").includes(mode);
  }
  const needsInput = ["image", "extend", "connect", "edit"].includes(mode);
  $("frames-label").hidden = mode === "edit";  // an edit keeps the input's length
  // Only text-to-video slides a window; the other modes make one clip.
  for (const o of $("frames").querySelectorAll("option[data-long]")) o.hidden = o.disabled = mode !== "text";
  if ($("frames").selectedOptions[0] && $("frames").selectedOptions[0].disabled) $("frames").value = "";
  if (needsInput && $("aspect").value !== "input") $("aspect").value = "input";
  if (!needsInput && $("aspect").value === "input") $("aspect").selectedIndex = 0;
  applyAspect();
}

function applyAspect() {
  const v = $("aspect").value;
  const fromInput = v === "input";
  $("width").disabled = $("height").disabled = fromInput;
  if (!fromInput) {
    const [w, h] = v.split("x");
    $("width").value = w;
    $("height").value = h;
  }
}

async function submitJob(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  const mode = $("mode").value;
  const data = new FormData();
  data.append("prompt", $("prompt").value);
  data.append("mode", mode);
  const fields = ["steps", "guidance", "seed"];
  if (mode !== "edit") fields.push("frames");
  if (!$("width").disabled) fields.push("width", "height");
  if (mode === "extend") fields.push("direction");
  if (mode === "edit") fields.push("strength");
  for (const f of fields) if ($(f).value !== "") data.append(f, $(f).value);
  for (const el of document.querySelectorAll(".uploads input[type=file]")) {
    if (!el.closest("label").hidden && el.files.length) data.append(el.name, el.files[0]);
  }
  $("submit").disabled = true;
  try {
    const res = await api("/v1/jobs", { method: "POST", body: data });
    if (!res.ok) throw new Error(await errorText(res));
    render(await res.json());
  } catch (e) {
    $("form-error").textContent = e.message;
  } finally {
    $("submit").disabled = false;
  }
}

// ---- gallery
function stateText(job) {
  if (job.state === "queued") return job.position ? `queued (${job.position} ahead)` : "queued";
  if (job.state === "running") {
    const p = job.progress;
    return p.total ? `running: step ${p.step} of ${p.total}` : "running";
  }
  return job.state;
}

async function showResult(card, job) {
  const tag = job.media_type === "image/png" ? "img" : "video";
  const media = document.createElement(tag);
  if (tag === "video") {
    Object.assign(media, { controls: true, autoplay: true, loop: true, muted: true, playsInline: true });
  }
  media.alt = job.prompt;
  // <video src> cannot send a bearer token: with a token, fetch the file and play it from memory.
  if (token) {
    const res = await api(job.result_url);
    media.src = URL.createObjectURL(await res.blob());
  } else {
    media.src = job.result_url;
  }
  const link = document.createElement("a");
  link.href = token ? media.src : job.result_url;
  link.textContent = "download";
  link.download = "";
  card.querySelector(".result").replaceChildren(media, link);
}

function render(job) {
  let entry = cards.get(job.id);
  if (!entry) {
    const el = document.createElement("div");
    el.className = "job";
    el.dataset.id = job.id;
    el.innerHTML = '<div class="prompt"></div><div class="meta"></div><progress class="bar" max="1" value="0"></progress>' +
      '<div class="state"></div><div class="error"></div><div class="result"></div>' +
      '<button class="cancel" type="button">Cancel</button>';
    el.querySelector(".prompt").textContent = job.prompt;
    const p = job.params;
    el.querySelector(".meta").textContent =
      `${job.mode} · ${p.width}x${p.height} · ${p.frames} frames · ${p.steps} steps · seed ${p.seed}`;
    el.querySelector(".cancel").addEventListener("click", () => cancelJob(job.id));
    entry = { el, state: null };
    cards.set(job.id, entry);
    // Newest first: insert before the first card of an older job.
    const older = [...$("jobs").children].find((c) => cards.get(c.dataset.id).created < job.created_at);
    $("jobs").insertBefore(el, older || null);
    entry.created = job.created_at;
  }
  const el = entry.el;
  el.classList.remove(entry.state || "none");
  el.classList.add(job.state);
  el.dataset.state = job.state;
  const bar = el.querySelector(".bar");
  bar.max = Math.max(1, job.progress.total);
  bar.value = job.state === "done" ? bar.max : job.progress.step;
  el.querySelector(".state").textContent = stateText(job) + (job.cancel_requested && job.state === "running" ? " (cancelling)" : "");
  el.querySelector(".error").textContent = job.error || "";
  el.querySelector(".cancel").hidden = !(job.state === "queued" || job.state === "running");
  if (job.state === "done" && entry.state !== "done") {
    showResult(el, job).catch((e) => { el.querySelector(".error").textContent = e.message; });
  }
  entry.state = job.state;
}

async function cancelJob(id) {
  const res = await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
  if (res.ok) render(await res.json());
}

async function poll() {
  try {
    const res = await api("/v1/jobs?limit=60");
    if (!res.ok) throw new Error(await errorText(res));
    const body = await res.json();
    for (const job of body.jobs.slice().reverse()) render(job);
    const c = body.counts;
    $("counts").textContent = `${c.running} running · ${c.queued} queued · ${c.done} done · ${c.failed} failed`;
    $("status").textContent = "connected";
  } catch (e) {
    $("status").textContent = e.message;
  }
  setTimeout(poll, 500);
}

async function start() {
  try {
    const res = await api("/v1/limits");
    if (!res.ok) throw new Error(await errorText(res));
    info = await res.json();
    $("token-bar").hidden = true;
    fillForm();
    poll();
  } catch (e) {
    $("status").textContent = e.message;
  }
}

$("mode").addEventListener("change", showModeFields);
$("aspect").addEventListener("change", applyAspect);
$("job-form").addEventListener("submit", submitJob);
$("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2 ** 31); });
$("token-save").addEventListener("click", () => {
  token = $("token").value.trim();
  localStorage.setItem("tenku-token", token);
  start();
});
start();
