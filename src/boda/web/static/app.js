// boda serve: the page.  Plain JavaScript, no library, no network but this app's API.
// Every name from the catalog is put in the page as text (textContent), never as HTML.
"use strict";

const PAGE = 120; // cards per request
// How often the summary is asked again (ms): while a scan runs or counts are pending, else.
const POLL = {busy: 3000, idle: 20000};
const state = {view: "grid", only: [], q: "", sort: "path", order: "", open: null, kind: "", stars: 0};
let summary = null;
let grid = {key: "", items: [], total: 0, loading: null}; // loading: the page on its way
let dups = {key: null, sets: [], total: 0, loaded: false, loading: null, stale: false};
let detailId = null;
let detailRecord = null;
let zoomed = false; // the detail preview at 1:1 (its full size, capped)

// -- small helpers ------------------------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function fmt(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "–" : String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 ? value.toFixed(0) : value.toPrecision(3);
}

function bytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function hex(rgb) {
  return "#" + rgb.map((v) => Math.round(Math.min(Math.max(v, 0), 1) * 255)
    .toString(16).padStart(2, "0")).join("");
}

function toast(text, error) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.className = error ? "error" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, error ? 9000 : 3500);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) { // no clipboard API (an http address other than localhost): select and copy
    const area = el("textarea", {});
    area.style.position = "fixed";
    area.style.opacity = "0";
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// -- the URL holds the view: #view=grid&only=blurry&sort=blurry&q=x&open=12 ---------------
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.view = ["grid", "duplicates", "failures"].includes(p.get("view")) ? p.get("view") : "grid";
  state.only = (p.get("only") || "").split(",").filter(Boolean);
  state.q = p.get("q") || "";
  state.sort = p.get("sort") || "path";
  state.order = p.get("order") || "";
  state.kind = p.get("kind") || "";
  const stars = parseInt(p.get("stars"), 10);
  state.stars = stars >= 1 && stars <= 5 ? stars : 0;
  const open = parseInt(p.get("open"), 10);
  state.open = Number.isFinite(open) ? open : null;
}

function hashOf(s) {
  const p = new URLSearchParams();
  if (s.view !== "grid") p.set("view", s.view);
  if (s.only.length) p.set("only", s.only.join(","));
  if (s.q) p.set("q", s.q);
  if (s.sort !== "path") p.set("sort", s.sort);
  if (s.order) p.set("order", s.order);
  if (s.kind) p.set("kind", s.kind);
  if (s.stars) p.set("stars", String(s.stars));
  if (s.open !== null) p.set("open", String(s.open));
  return "#" + p.toString();
}

function go(changes) {
  Object.assign(state, changes);
  const hash = hashOf(state);
  if (hash === "#") {
    // the default view: the address without a bare "#" (as it was before a detail opened),
    // a new history entry as a change of the hash makes (Back opens the detail again)
    const clean = location.pathname + location.search;
    if (location.hash) history.pushState(null, "", clean);
    else if (location.href.endsWith("#")) history.replaceState(null, "", clean);
    render();
  } else if (hash !== location.hash) location.hash = hash;
  else render();
}

// -- summary, sidebar -------------------------------------------------------------------
// The boxes renderSummary builds again (every poll, every mark): the link or button of
// theirs that had the focus has it again, so a keyboard user keeps their place.
const REBUILT = ["warnings", "summary", "selections", "mark-selections", "dataset-selections"];

function renderSummary() {
  const active = document.activeElement;
  const box = active && active.closest && REBUILT.map((id) => document.getElementById(id)).find((b) => b.contains(active));
  const at = box ? [...box.querySelectorAll("a, button")].indexOf(active) : -1;
  buildSummary();
  if (at >= 0 && !active.isConnected) {
    const again = box.querySelectorAll("a, button")[at];
    if (again) again.focus({preventScroll: true});
  }
}

function buildSummary() {
  const s = summary;
  const folderName = s.folder.split("/").filter(Boolean).pop() || s.folder;
  document.title = "boda — " + folderName;
  document.getElementById("title").textContent = "boda — " + folderName;
  const links = s.counts.link ? ` · ${s.counts.link} link${s.counts.link === 1 ? "" : "s"}` : "";
  document.getElementById("subtitle").textContent =
    `${s.folder} · ${s.total} files · ${s.counts.ok} readable · ${s.counts.error} unreadable` +
    `${links} · boda ${s.version}`;
  const warnings = document.getElementById("warnings");
  // `boda scan` in a warning is code: every other piece between backquotes
  warnings.replaceChildren(...s.warnings.map((w) => el("p", {className: "warn"},
    ...w.split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part)))));
  if (rescanned()) {
    warnings.append(el("p", {className: "warn", id: "rescanned"}, "The catalog changed since this page loaded (the folder was " +
      "scanned again): the grid shows the files as they were then (new ones missing, deleted ones still there). ",
    el("button", {type: "button", onclick: () => location.reload()}, "reload")));
  }

  const cards = [
    el("button", {className: "stat", type: "button", dataset: {only: ""}, onclick: () => go({view: "grid", only: [], open: null})},
      el("b", {}, s.total), "files"),
    el("button", {className: "stat", type: "button", dataset: {only: ""}, onclick: () => go({view: "grid", only: [], open: null})},
      el("b", {}, s.counts.ok), "readable"),
    el("button", {className: "stat", type: "button", dataset: {only: "failed"}, onclick: () => go({view: "grid", only: ["failed"], open: null})},
      el("b", {}, s.counts.error), "unreadable"),
  ];
  for (const sel of s.selections) {
    if (sel.name === "failed" || sel.dataset) continue;
    cards.push(el("button", {className: "stat", type: "button", title: sel.description,
      dataset: {only: sel.name}, onclick: () => go({view: "grid", only: [sel.name], open: null})},
    el("b", {}, count(sel.count)), sel.name));
  }
  document.getElementById("summary").replaceChildren(...cards);

  const list = [el("li", {}, el("a", {href: "#", dataset: {only: ""}, className: "sel",
    onclick: (e) => { e.preventDefault(); go({view: "grid", only: [], open: null}); }},
  el("span", {}, "all files"), el("span", {className: "n"}, s.total)))];
  const item = (sel) => el("li", {}, el("a", {href: "#", title: sel.description + (sel.rule ? ` (${sel.rule})` : ""),
    dataset: {only: sel.name}, className: "sel" + (sel.count === 0 ? " zero" : ""),
    onclick: (e) => { e.preventDefault(); pick(sel.name, e.ctrlKey || e.metaKey || e.shiftKey); }},
  el("span", {}, sel.name), el("span", {className: "n"}, count(sel.count))));
  for (const sel of s.selections) if (!sel.dataset && !sel.mark) list.push(item(sel));
  document.getElementById("selections").replaceChildren(...list);
  // the person's own marks (picked, rejected, undecided, rated): apart, under "Culling"
  document.getElementById("mark-selections").replaceChildren(...s.selections.filter((sel) => sel.mark).map(item));
  const culling = s.marks || {writable: false};
  document.body.classList.toggle("readonly", !culling.writable);
  const note = document.getElementById("marks-note");
  note.textContent = culling.writable ? "P pick · X reject · U undecided · 0–5 stars · Ctrl+Z undo, Ctrl+Shift+Z redo · Shift+click, Shift+arrows: several"
    : "read-only: " + (culling.reason || "marks cannot be changed");
  note.className = "small " + (culling.writable ? "muted" : "warn-text");
  // selections for a dataset of class folders (label_conflict): apart, under "Datasets"
  const datasets = s.selections.filter((sel) => sel.dataset);
  document.getElementById("dataset-selections").replaceChildren(...datasets.map(item));
  document.getElementById("datasets-heading").hidden = !datasets.length;

  const rows = [el("tr", {}, el("th", {}, "flag"), el("th", {}, "meaning"), el("th", {}, "rule"))];
  for (const sel of s.selections) {
    rows.push(el("tr", {}, el("td", {}, sel.name), el("td", {}, sel.description),
      el("td", {}, el("code", {}, sel.rule || ""))));
  }
  document.getElementById("rules").replaceChildren(...rows);

  const sort = document.getElementById("sort");
  const options = [["path", "name"], ["size", "file size"], ["taken", "capture time (oldest first)"],
    ["rating", "rating (most stars first)"]];
  for (const name of s.sorts.filter((n) => !options.some(([v]) => v === n))) {
    options.push([name, name === "blurry" ? "sharpness (blurriest first)"
      : name + (s.score_keys[name] ? " (worst first)" : " (group, kept first)")]);
  }
  for (const name of s.scores) if (!s.sorts.includes(name)) options.push([name, "score: " + name]);
  sort.replaceChildren(...options.map(([value, label]) => el("option", {value}, label)));
}

// The catalog's version when the page loaded: a scan since (ended) makes the page say so.
let loadedCatalog = null;
function rescanned() {
  if (loadedCatalog === null) loadedCatalog = summary.catalog_version;
  return summary.catalog_version !== loadedCatalog && !(summary.scan && summary.scan.running);
}

function count(n) {
  return n === null || n === undefined ? "…" : String(n); // null: still being counted
}

function pick(name, add) {
  let only = add ? state.only.slice() : [name];
  if (add) only = only.includes(name) ? only.filter((n) => n !== name) : [...only, name];
  go({view: "grid", only, open: null});
}

// -- the grid ---------------------------------------------------------------------------
function gridQuery(offset) {
  const p = new URLSearchParams({sort: state.sort, offset: String(offset), limit: String(PAGE)});
  if (state.only.length) p.set("only", state.only.join(","));
  if (state.q) p.set("q", state.q);
  if (state.order) p.set("order", state.order);
  if (state.stars) p.set("min_rating", String(state.stars));
  return "api/images?" + p.toString();
}

function sortValue(record) {
  const key = summary.score_keys[state.sort] || (summary.scores.includes(state.sort) ? state.sort : null);
  if (key === "blurry") return `sharpness ${fmt(record.scores[key])}`; // higher = sharper
  if (key) return `${key} ${fmt(record.scores[key])}`;
  if (state.sort === "size") return bytes(record.size);
  if (state.sort === "rating") return record.rating ? "" : "no stars";
  if (state.sort === "taken") return record.extra && typeof record.extra.taken === "string" ? takenText(record.extra.taken) : "no capture time";
  if (record.groups[state.sort] !== undefined) return `group ${record.groups[state.sort]}`;
  return "";
}

// "2026-11-18T14:03:07.25+09:00" -> "2026-11-18 14:03:07.25 +09:00": the camera's clock
function takenText(taken) {
  return taken.replace("T", " ").replace(/([+-]\d\d:\d\d)$/, " $1");
}

// A card of the grid: an option of its listbox (selectable with Shift, Ctrl, Ctrl+A).
function gridCard(record) {
  const node = card(record);
  node.setAttribute("role", "option");
  node.setAttribute("aria-selected", String(selection.ids.has(record.id)));
  return node;
}

// A near-duplicate member whose nearest match is a left-right mirror image (boda scan --mirrored).
function mirroredBadge() {
  return el("span", {className: "badge dup mirrored", title: "its nearest match in its near-duplicate group is a left-right mirror image of it (--mirrored)"}, "mirrored");
}

function card(record, badges) {
  // an unreadable file has no thumbnail: no request (a 404 in the console for each)
  const img = record.status === "error" ? el("div", {className: "noimg"}, "unreadable")
    : el("img", {loading: "lazy", alt: record.path, src: `api/thumbnails/${record.id}`});
  if (record.status !== "error") {
    img.addEventListener("error", () => img.replaceWith(el("div", {className: "noimg"}, "no thumbnail")));
  }
  const swatches = el("div", {className: "swatches"});
  const colors = record.extra && Array.isArray(record.extra.dominant_colors) ? record.extra.dominant_colors : [];
  for (const c of colors) {
    if (!c || !Array.isArray(c.rgb) || c.rgb.length !== 3 || typeof c.fraction !== "number") continue;
    const span = el("span", {title: `${hex(c.rgb)} · ${Math.round(100 * c.fraction)}%`});
    span.style.flex = String(c.fraction);
    span.style.background = hex(c.rgb);
    swatches.append(span);
  }
  const size = record.width ? `${record.width}×${record.height}` : (record.status === "link" ? "link" : "");
  const value = record.scores ? sortValue(record) : "";
  // the `blurry` score is higher when sharper: shown as what it is, "sharpness"
  const sharp = record.scores && typeof record.scores.blurry === "number" && !value.startsWith("sharpness")
    ? el("span", {className: "sharp", title: "sharpness score (higher = sharper)"}, `sharpness ${fmt(record.scores.blurry)}`) : "";
  const flags = (record.flags || []).map((f) => el("span", {className: "badge" + (f.endsWith("duplicate") ? " dup" : "")}, f));
  if (record.mirrored) flags.push(mirroredBadge()); // as the report's "distance 2 · mirrored"
  const role = record.duplicate_role && record.groups && record.groups[state.sort] !== undefined
    ? record.duplicate_role : null; // in a group sort: which file of the group boda keeps
  if (role) flags.unshift(el("span", {className: "badge role " + (role === "redundant" ? "" : "keep")}, role === "linked" ? "kept (a link points to it)" : role));
  const node = el("div", {className: "card", tabindex: "0", dataset: {id: record.id}, title: record.path},
    el("div", {className: "marks"}), img, swatches,
    el("div", {className: "body"}, el("div", {className: "name"}, record.path),
      el("span", {className: "muted"}, size), value ? " " : "", value ? el("span", {className: "score"}, value) : "",
      sharp ? " " : "", sharp,
      el("div", {}, ...flags, ...(badges || []))));
  // the card that had the focus before this press (the press moves it): Shift+click's start
  node.addEventListener("pointerdown", () => {
    const before = document.activeElement && document.activeElement.closest && document.activeElement.closest("#grid .card");
    pressedFrom = before && before !== node ? before : null;
  });
  node.addEventListener("click", (e) => {
    if (node.closest("#grid") && (e.shiftKey || e.ctrlKey || e.metaKey)) { selectByClick(node, e); return; }
    go({open: record.id});
  });
  node.addEventListener("keydown", async (e) => {
    if (e.key !== "Enter") return;
    if (moving && node.closest("#grid")) { // pressed while the focus moves on to the next
      while (moving) await moving;          // page: the card it moved to opens
      const now = document.activeElement.closest("#grid .card");
      if (now) { go({open: Number(now.dataset.id)}); return; }
    }
    go({open: record.id});
  });
  // a record the app just sent has the latest mark (boda mark may have changed it)
  if ("decision" in record) marks.set(record.id, {decision: record.decision || null, rating: record.rating || null});
  rememberShown(record);
  showMark(node, record);
  return node;
}

// -- culling marks: pick / reject / stars --------------------------------------------------
const marks = new Map(); // id -> {decision, rating}: the latest known, from any answer
// id -> the path this page was given for it, sent with each mark: after a rescan an id
// can name another file, and the server then refuses the mark (409) instead of marking it.
const shownPaths = new Map();
// id -> the pixel hash of the picture the page shows, sent too: a photo copied over the file
// and scanned since keeps the path, and the server refuses (409) to mark it in the old one's place.
const shownPixels = new Map();
// id -> the size and time of the file shown (file_identity), sent beside its pixel hash:
// a scan at another --max-side gives the very same file another hash.
const shownFiles = new Map();
// ids of links: in no selection, so never marked (the server refuses it); a selection
// that takes some in marks the others
const shownLinks = new Set();
// The marks as they were before each change this page made, newest last: Ctrl+Z (Cmd+Z)
// puts the last change back, as in photo tools. Kept for this page only.
const undoStack = [];
const UNDO_LIMIT = 200;
// The marks each Ctrl+Z replaced, newest last: Ctrl+Shift+Z (Ctrl+Y) puts them back. A new
// mark empties it, as in editors.
const redoStack = [];

// id -> the number of the last answer of a mark that changed it (answers counted from 1):
// a record asked for before that answer holds an older mark than the page's.
const savedAt = new Map();
let marksSaved = 0;

// The mark of a record just read (``asked``: marksSaved when it was asked for): the
// page's when a mark of it was saved meanwhile (a slow answer, as the detail's is while the
// duplicate sets are computed again, must not undo a key pressed meanwhile).
function takeMark(record, asked) {
  if ((savedAt.get(record.id) || 0) > asked && marks.has(record.id)) {
    Object.assign(record, marks.get(record.id));
  } else {
    marks.set(record.id, {decision: record.decision, rating: record.rating});
  }
}

function markOf(record) {
  return marks.get(record.id) || {decision: record.decision || null, rating: record.rating || null};
}

// What the page shows of a record, sent back with each mark of it (see shownPaths).
function rememberShown(record) {
  shownPaths.set(record.id, record.path);
  if ("pixel_hash" in record) shownPixels.set(record.id, record.pixel_hash); // not in group briefs
  if ("file_identity" in record) shownFiles.set(record.id, record.file_identity);
  if (record.status === "link") shownLinks.add(record.id);
}

function starText(n) {
  return n ? "★".repeat(n) + "☆".repeat(5 - n) : "";
}

// The badges of a card: a pick (✓) or reject (✕) marker and the stars.
function showMark(node, record) {
  const m = markOf(record);
  node.dataset.decision = m.decision || "";
  node.dataset.rating = String(m.rating || 0);
  node.classList.toggle("picked", m.decision === "pick");
  node.classList.toggle("rejected", m.decision === "reject");
  const box = node.querySelector(".marks");
  if (!box) return;
  box.replaceChildren(
    m.decision ? el("span", {className: "flag-" + m.decision, title: m.decision === "pick" ? "picked" : "rejected"},
      m.decision === "pick" ? "✓ pick" : "✕ reject") : "",
    m.rating ? el("span", {className: "stars", title: `${m.rating} star${m.rating === 1 ? "" : "s"}`}, "★".repeat(m.rating)) : "");
}

function refreshMarks(id) {
  const m = marks.get(id);
  for (const r of grid.items) if (r.id === id) Object.assign(r, m);
  document.querySelectorAll(`.card[data-id="${Number(id)}"]`).forEach((node) => showMark(node, {id}));
  if (detailRecord && detailRecord.id === id) { Object.assign(detailRecord, m); showDetailMark(); }
  document.querySelectorAll(`.pane[data-id="${Number(id)}"]`).forEach((pane) => showPaneMark(pane));
}

// Sets the decision and/or the rating of these records; the answer is shown at once.
// ``undoable``: remember the marks they had, for Ctrl+Z. One mark at a time, in the
// order of the keys: a key pressed while a mark is being saved waits for it, so the
// marks it remembers for Ctrl+Z are the ones that mark left.
let markQueue = Promise.resolve();
function queued(work) {
  const run = markQueue.then(work);
  markQueue = run.catch(() => {});
  return run;
}

function setMark(ids, change, undoable = true) {
  return queued(() => saveMark(ids, change, undoable));
}

async function saveMark(ids, change, undoable) {
  if (!canMark()) {
    toast("read-only: " + ((summary.marks && summary.marks.reason) || "marks cannot be changed"), true);
    return false;
  }
  if (change.decision || change.rating) {
    const files = ids.filter((id) => !shownLinks.has(id));
    if (!files.length) {
      toast("a link is in no selection: mark the file it links to", true);
      return false;
    }
    ids = files;
  }
  let answer;
  const paths = ids.map((id) => shownPaths.get(id));
  const body = paths.every((p) => typeof p === "string") ? {ids, paths, ...change} : {ids, ...change};
  if (ids.every((id) => shownPixels.has(id))) body.pixels = ids.map((id) => shownPixels.get(id) ?? null);
  // the very file shown: its pixel hash changes in a scan at another --max-side
  if (body.pixels && ids.every((id) => shownFiles.has(id))) {
    body.identities = ids.map((id) => shownFiles.get(id) ?? null);
  }
  try {
    answer = await api("api/marks", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
  } catch (e) {
    toast((e.status === 409 ? "not marked: " : "could not save the mark: ") + e.message, true);
    return false;
  }
  // a view chosen by marks (picked, 3+ stars...) counted its files when it was loaded
  const count = document.getElementById("count");
  const byMarks = summary.selections.some((sel) => sel.mark && state.only.includes(sel.name));
  if ((state.stars || byMarks) && !count.dataset.stale) {
    count.dataset.stale = "1";
    count.textContent += " · as loaded: marks changed since (reload to count again)";
  }
  // a refusal said for an earlier key is no longer news: this one went through
  const box = document.getElementById("toast");
  if (box.className === "error" && !box.hidden) { box.hidden = true; clearTimeout(toast.timer); }
  if (undoable) {
    // the server says what the files had just before (a mark made with ``boda mark``
    // since this page loaded included)
    undoStack.push(answer.previous);
    if (undoStack.length > UNDO_LIMIT) undoStack.shift();
    redoStack.length = 0;
  }
  marksSaved += 1;
  for (const m of answer.marks) {
    marks.set(m.id, {decision: m.decision, rating: m.rating});
    savedAt.set(m.id, marksSaved);
    refreshMarks(m.id);
  }
  // a screen reader hears what the key did (the cards only change their look)
  document.getElementById("announce").textContent = `${filesText(answer.marks)}: ${changeText(change)}`;
  for (const sel of summary.selections) if (sel.name in answer.counts) sel.count = answer.counts[sel.name];
  summary.marks.counts = answer.counts;
  if (dups.loaded) dups.stale = true; // the keep rule reads the marks: read again on return
  renderSummary();
  markActive();
  return answer;
}

// The marks of the loaded cards, read again when the marks file changed (another tab,
// boda mark): in the mark queue, so an answer older than a key pressed meanwhile cannot
// overwrite that key's mark.
function refreshCardMarks() {
  if (state.view !== "grid" || !grid.items.length) return;
  const key = grid.key;
  return queued(async () => {
    const p = new URLSearchParams(gridQuery(0).split("?")[1]);
    p.set("limit", String(Math.min(grid.items.length, summary.max_limit || grid.items.length)));
    let page;
    try { page = await api("api/images?" + p.toString()); } catch (e) { return; }
    if (key !== grid.key) return;
    for (const r of page.images) {
      if (!shownPaths.has(r.id) || shownPaths.get(r.id) !== r.path) continue;
      const now = {decision: r.decision || null, rating: r.rating || null};
      const was = marks.get(r.id);
      if (!was || was.decision !== now.decision || was.rating !== now.rating) {
        marks.set(r.id, now);
        refreshMarks(r.id);
      }
    }
  });
}

// Ctrl+Z: the marks of the last change as they were before it, one request per earlier
// state (the files that had the same decision and stars); after the marks still saving.
function undoMark() {
  return queued(undoLast);
}

async function undoLast() {
  const before = undoStack.pop();
  if (!before) { toast("nothing to undo"); return; }
  // what this page last knew of the files: a difference in what the undo replaced was
  // made elsewhere (another tab, boda mark) and is said, not dropped in silence
  const known = new Map(before.map((m) => [m.id, markText(marks.get(m.id))]));
  const replaced = await restoreMarks(before);
  if (!replaced) { undoStack.push(before); return; } // said; kept for another try
  redoStack.push(replaced);
  const elsewhere = replaced.filter((m) => markText(m) !== known.get(m.id));
  const note = elsewhere.length ? ` · ${filesText(elsewhere)} had been marked elsewhere since ` +
    `(${markText(elsewhere[0])}): Ctrl+Shift+Z puts that back` : " · Ctrl+Shift+Z redoes";
  toast(`undone: ${filesText(before)} as before${note}`);
}

function changeText(change) {
  const words = [];
  if ("decision" in change) words.push(change.decision === "pick" ? "picked" : change.decision === "reject" ? "rejected" : "undecided");
  if ("rating" in change) words.push(change.rating ? `${change.rating} star${change.rating === 1 ? "" : "s"}` : "no stars");
  return words.join(", ");
}

function markText(m) {
  if (!m || (!m.decision && !m.rating)) return "no mark";
  return [m.decision || "", m.rating ? "★" + m.rating : ""].filter(Boolean).join(" ");
}

// Ctrl+Shift+Z / Ctrl+Y: the marks the last Ctrl+Z replaced, back again.
function redoMark() {
  return queued(async () => {
    const after = redoStack.pop();
    if (!after) { toast("nothing to redo"); return; }
    const replaced = await restoreMarks(after);
    if (!replaced) return;
    undoStack.push(replaced);
    toast(`redone: ${filesText(after)}`);
  });
}

function filesText(entries) {
  const names = entries.map((m) => shownPaths.get(m.id)).filter(Boolean);
  return names.length === 1 ? names[0] : entries.length + " files";
}

// Gives each file its mark of ``entries`` ({id, decision, rating}), one request per
// mark (the files that had the same decision and stars); returns the marks they had just
// before (what undoes this), or null when a request failed (and says why).
async function restoreMarks(entries) {
  const groups = new Map();
  for (const m of entries) {
    const key = JSON.stringify([m.decision || null, m.rating || 0]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(m.id);
  }
  const replaced = [];
  for (const [key, ids] of groups) {
    const [decision, rating] = JSON.parse(key);
    const answer = await saveMark(ids, {decision, rating}, false);
    if (!answer) return null;
    replaced.push(...answer.previous);
  }
  return replaced;
}

// The change a key asks for: P pick, X reject, U undecided, 0-5 stars (null: none).
function markKey(e) {
  if (e.altKey || e.ctrlKey || e.metaKey) return null;
  const key = e.key.toLowerCase();
  if (key === "p") return {decision: "pick"};
  if (key === "x") return {decision: "reject"};
  if (key === "u") return {decision: null};
  if (/^[0-5]$/.test(key)) return {rating: Number(key)};
  return null;
}

function advance() {
  return localStorage.getItem("boda.advance") === "1";
}

// Grid keys: arrows move the focus from card to card (up and down by row), P / X / U /
// 0-5 mark the focused card.
// -- several cards at once: Shift+click / Shift+arrows a range, Ctrl+click one more ------
const selection = {ids: new Set(), anchor: null}; // ids of grid cards; anchor: the range's start

function gridCards() {
  return [...document.querySelectorAll("#grid .card")];
}

function showSelection() {
  for (const c of gridCards()) {
    const on = selection.ids.has(Number(c.dataset.id));
    c.classList.toggle("selected", on);
    c.setAttribute("aria-selected", String(on));
  }
  const n = selection.ids.size;
  const box = document.getElementById("selection");
  box.hidden = n < 2;
  // of how many: Ctrl+A takes the cards loaded so far, which may be fewer than the view's
  const loaded = gridCards().length;
  const more = grid.total > loaded ? ` (${loaded} loaded; "load more" below adds the rest)` : "";
  box.textContent = `${n} of ${grid.total} selected${more}: P X U 0–5 mark them all · Esc clears`;
}

function clearSelection() {
  selection.ids.clear();
  selection.anchor = null;
  showSelection();
}

// The cards from the anchor (or ``from``) to ``node``, both included, are the selection.
function selectRange(node, from) {
  const cards = gridCards();
  const anchor = selection.anchor !== null && cards.find((c) => Number(c.dataset.id) === selection.anchor);
  const start = cards.indexOf(anchor || from || node);
  const end = cards.indexOf(node);
  if (selection.anchor === null || !anchor) selection.anchor = Number((from || node).dataset.id);
  selection.ids = new Set(cards.slice(Math.min(start, end), Math.max(start, end) + 1).map((c) => Number(c.dataset.id)));
  showSelection();
}

let pressedFrom = null; // the grid card focused when the mouse went down on another one

function selectByClick(node, e) {
  const id = Number(node.dataset.id);
  // the mouse press has already moved the focus to ``node``: the card focused before it
  // is where a range starts
  const focused = pressedFrom && pressedFrom.isConnected ? pressedFrom : null;
  if (e.shiftKey) {
    selectRange(node, focused);
  } else { // Ctrl / Cmd: this card in or out
    if (selection.ids.has(id)) selection.ids.delete(id); else selection.ids.add(id);
    selection.anchor = id;
    showSelection();
  }
  node.focus();
}

// What a mark key on this card marks: the selection when the card is in it, else the card.
function markTargets(node) {
  const id = Number(node.dataset.id);
  return selection.ids.size > 1 && selection.ids.has(id) ? [...selection.ids] : [id];
}

// A move of the focus that waits for the next page (auto-advance or an arrow on the last
// card loaded): the keys pressed meanwhile wait for it, each for the card the one before
// moved to (none lost, none given to the same card twice).
let moving = null;

async function gridKey(e) {
  let node = e.target.closest && e.target.closest(".card");
  if (!node || !node.closest("#grid")) return;
  const change = markKey(e);
  if (moving && (change || e.key.startsWith("Arrow"))) {
    e.preventDefault();
    while (moving) await moving;
    const now = document.activeElement;
    node = now && now.closest && now.closest("#grid .card");
    if (!node) return;
  }
  if (change) {
    e.preventDefault();
    const ids = markTargets(node);
    const saving = setMark(ids, change);
    if (canMark() && advance() && ids.length === 1) moveFocus(node, 1); // at once (see compareKey)
    await saving;
    return;
  }
  if (e.key === "Escape" && selection.ids.size) { e.preventDefault(); clearSelection(); return; }
  if ((e.key === "a" || e.key === "A") && (e.ctrlKey || e.metaKey) && !e.altKey) {
    e.preventDefault(); // every card loaded so far
    selection.ids = new Set(gridCards().map((c) => Number(c.dataset.id)));
    selection.anchor = Number(node.dataset.id);
    showSelection();
    return;
  }
  if ((e.key === "c" || e.key === "C") && !e.altKey && !e.ctrlKey && !e.metaKey) {
    // this card and the next ones, up to 4: a burst, sorted by capture time, side by side
    e.preventDefault();
    const cards = [...document.querySelectorAll("#grid .card")];
    const at = cards.indexOf(node);
    openCompare(cards.slice(at, at + 4).map((c) => Number(c.dataset.id)), null);
    return;
  }
  const steps = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: "down", ArrowUp: "up"};
  if (!(e.key in steps) || e.altKey || e.ctrlKey || e.metaKey) return;
  e.preventDefault();
  let delta = steps[e.key];
  if (typeof delta === "string") { // one row: as many cards as sit on the row of this one
    const cards = gridCards();
    const perRow = cards.filter((c) => c.offsetTop === cards[0].offsetTop).length || 1;
    delta = delta === "down" ? perRow : -perRow;
  }
  const next = await moveFocus(node, delta);
  if (e.shiftKey && next) selectRange(next, node); // Shift: the range grows with the focus
}

async function moveFocus(node, delta) {
  let cards = gridCards();
  const target = cards.indexOf(node) + delta;
  if (target >= cards.length && grid.items.length < grid.total) {
    moving = more(); // the next page, then on
    try { await moving; } finally { moving = null; }
    cards = gridCards();
  }
  const next = cards[Math.min(Math.max(target, 0), cards.length - 1)];
  if (next) { next.focus(); next.scrollIntoView({block: "nearest"}); }
  return next;
}

// The mark of the file in the detail view, and its buttons (hidden when read-only).
function showDetailMark() {
  const r = detailRecord;
  if (!r) return;
  const m = markOf(r);
  const box = document.getElementById("d-mark");
  box.dataset.decision = m.decision || "";
  box.dataset.rating = String(m.rating || 0);
  // a link is in no selection: its buttons are off, and the text says what to mark instead
  const link = r.status === "link";
  box.querySelectorAll("button").forEach((b) => { b.disabled = link; });
  document.getElementById("d-mark-text").textContent = link
    ? "a link: mark " + (r.link_to || "the file it links to")
    : (m.decision === "pick" ? "✓ picked" : m.decision === "reject" ? "✕ rejected" : "undecided") +
      (m.rating ? " · " + starText(m.rating) : " · no stars");
  box.querySelectorAll("button[data-decision]").forEach((b) =>
    b.classList.toggle("on", (b.dataset.decision || null) === m.decision));
  box.querySelectorAll("button[data-rating]").forEach((b) =>
    b.classList.toggle("on", Number(b.dataset.rating) <= (m.rating || 0) && Number(b.dataset.rating) > 0));
}

function markControls(onchange) {
  const decisions = [["pick", "✓ pick", "P"], ["reject", "✕ reject", "X"], ["", "undecided", "U"]];
  return el("span", {className: "mark-controls"},
    ...decisions.map(([d, label, key]) => el("button", {type: "button", className: "mark-button", title: `${label} (${key})`,
      dataset: {decision: d}, onclick: (e) => { e.stopPropagation(); onchange({decision: d || null}); }}, label)),
    el("span", {className: "star-buttons"}, ...[1, 2, 3, 4, 5].map((n) => el("button", {type: "button", className: "star",
      title: `${n} star${n === 1 ? "" : "s"} (${n})`, dataset: {rating: String(n)},
      onclick: (e) => { e.stopPropagation(); onchange({rating: n}); }}, "★")),
    el("button", {type: "button", className: "star clear", title: "no stars (0)", dataset: {rating: "0"},
      onclick: (e) => { e.stopPropagation(); onchange({rating: 0}); }}, "0")));
}

// -- compare: 2 to 4 files side by side at the same zoom ----------------------------------
const compare = {ids: [], keep: null, active: 0, full: false};

function compareIds(record) {
  const set = record.duplicate_set;
  const ids = [record.id];
  if (set && set.keep && set.keep.id !== null) ids.push(set.keep.id);
  for (const g of Object.values(record.group_members || {})) for (const m of g.members) ids.push(m.id);
  return [...new Set(ids)].slice(0, 4);
}

async function openCompare(ids, keep) {
  if (ids.length < 2) return;
  Object.assign(compare, {ids, keep, active: 0, full: false});
  const box = document.getElementById("compare");
  box.hidden = false;
  const panes = document.getElementById("panes");
  panes.style.setProperty("--n", String(ids.length));
  panes.replaceChildren(...ids.map((id, k) => el("div", {className: "pane", dataset: {id, k}, onclick: () => activate(k)},
    el("div", {className: "pane-img"}, el("img", {alt: "", src: `api/preview/${id}?max_side=1024`})),
    el("div", {className: "pane-facts"}, el("b", {className: "pane-name"}, "…")))));
  panes.querySelectorAll(".pane-img").forEach((img) => img.addEventListener("scroll", syncScroll));
  compare.returnFocus = document.activeElement; // given back when compare closes
  document.getElementById("compare-close").focus();
  activate(0);
  await Promise.all(ids.map(async (id, k) => {
    let r;
    const asked = marksSaved;
    try { r = await api(`api/images/${id}`); } catch (e) { toast(e.message, true); return; }
    takeMark(r, asked);
    rememberShown(r);
    const pane = panes.querySelector(`.pane[data-k="${k}"]`);
    if (!pane) return;
    pane.record = r;
    const facts = pane.querySelector(".pane-facts");
    const score = (key, label) => typeof r.scores[key] === "number" ? `${label} ${fmt(r.scores[key])}` : null;
    const keys = summary.score_keys;
    facts.replaceChildren(
      el("b", {className: "pane-name"}, r.path),
      id === keep ? el("span", {className: "badge keep", title: "the file boda keeps in this duplicate set"}, "kept") : "",
      el("div", {className: "muted small"}, [r.width ? `${r.width}×${r.height}` : null, bytes(r.size),
        score(keys.blurry || "blurry", "sharpness"), ...["dark", "light", "low_information"].map((f) => keys[f] ? score(keys[f], keys[f]) : null)]
        .filter(Boolean).join(" · ")),
      el("div", {}, ...r.flags.map((f) => el("span", {className: "badge" + (f.endsWith("duplicate") ? " dup" : "")}, f))),
      el("div", {className: "pane-mark"}), markControls((change) => { activate(k); setMark([id], change); }));
    showPaneMark(pane);
  }));
}

function showPaneMark(pane) {
  const id = Number(pane.dataset.id);
  const m = marks.get(id) || {decision: null, rating: null};
  pane.dataset.decision = m.decision || "";
  pane.dataset.rating = String(m.rating || 0);
  pane.classList.toggle("picked", m.decision === "pick");
  pane.classList.toggle("rejected", m.decision === "reject");
  const text = pane.querySelector(".pane-mark");
  if (text) text.textContent = (m.decision === "pick" ? "✓ picked" : m.decision === "reject" ? "✕ rejected" : "undecided") + (m.rating ? " · " + starText(m.rating) : "");
  pane.querySelectorAll("button[data-decision]").forEach((b) => b.classList.toggle("on", (b.dataset.decision || null) === m.decision));
  pane.querySelectorAll("button[data-rating]").forEach((b) => b.classList.toggle("on", Number(b.dataset.rating) > 0 && Number(b.dataset.rating) <= (m.rating || 0)));
}

function activate(k) {
  compare.active = k;
  document.querySelectorAll("#panes .pane").forEach((pane) => pane.classList.toggle("active", Number(pane.dataset.k) === k));
}

// 1:1 in every pane at once, scrolled together: the same spot of each frame side by side.
function compareZoom() {
  compare.full = !compare.full;
  document.getElementById("panes").classList.toggle("full", compare.full);
  document.querySelectorAll("#panes .pane").forEach((pane) => {
    const img = pane.querySelector("img");
    const r = pane.record || {};
    const side = Math.min(Math.max(r.width || 0, r.height || 0) || summary.max_preview_side, summary.max_preview_side);
    img.src = `api/preview/${pane.dataset.id}?max_side=${compare.full ? side : 1024}`;
  });
  document.getElementById("compare-zoom").textContent = compare.full ? "fit (Z)" : "1:1 (Z)";
}

let syncing = false;
function syncScroll(e) {
  if (syncing) return;
  syncing = true;
  const src = e.target;
  const fx = src.scrollLeft / Math.max(1, src.scrollWidth - src.clientWidth);
  const fy = src.scrollTop / Math.max(1, src.scrollHeight - src.clientHeight);
  document.querySelectorAll("#panes .pane-img").forEach((box) => {
    if (box === src) return;
    box.scrollLeft = fx * (box.scrollWidth - box.clientWidth);
    box.scrollTop = fy * (box.scrollHeight - box.clientHeight);
  });
  requestAnimationFrame(() => { syncing = false; });
}

function closeCompare() {
  document.getElementById("compare").hidden = true;
  document.getElementById("panes").replaceChildren();
  compare.ids = [];
  // the focus goes back where it was (the card or the detail view), so keys work on
  const back = compare.returnFocus;
  compare.returnFocus = null;
  if (back && back.isConnected && back !== document.body) back.focus();
  refreshDuplicates();
}

async function compareKey(e) {
  if (e.key === "Escape") { e.preventDefault(); closeCompare(); return; }
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    e.preventDefault();
    activate(Math.min(Math.max(compare.active + (e.key === "ArrowRight" ? 1 : -1), 0), compare.ids.length - 1));
    return;
  }
  if (e.key === "z" || e.key === "Z") { e.preventDefault(); compareZoom(); return; }
  const change = markKey(e);
  if (!change) return;
  e.preventDefault();
  const k = compare.active;
  const saving = setMark([compare.ids[k]], change);
  // advance at once, not after the save: the next key is for the next frame even when
  // pressed before this one's answer (a failed save says which file it was)
  if (canMark() && advance() && k + 1 < compare.ids.length) activate(k + 1);
  await saving;
}

async function loadGrid(reset) {
  const key = JSON.stringify([state.only, state.q, state.sort, state.order, state.stars]);
  if (!reset && key === grid.key) return;
  if (reset || key !== grid.key) {
    grid = {key, items: [], total: 0, loading: null};
    document.getElementById("grid").replaceChildren();
    clearSelection();
  }
  await more();
}

// The next page of the grid; while one is on its way, that one (so that a caller can
// wait for the cards it adds).
function more() {
  if (!grid.loading) {
    const loading = nextPage();
    grid.loading = loading;
    loading.finally(() => { if (grid.loading === loading) grid.loading = null; });
  }
  return grid.loading;
}

async function nextPage() {
  const key = grid.key;
  try {
    const page = await api(gridQuery(grid.items.length));
    if (key !== grid.key) return;
    grid.items.push(...page.images);
    grid.total = page.total;
    document.getElementById("grid").append(...page.images.map((r) => gridCard(r)));
    const what = (state.only.length ? state.only.join(" + ") : "all files") + (state.stars ? ` (${state.stars}+ stars)` : "");
    delete document.getElementById("count").dataset.stale;
    document.getElementById("count").textContent =
      `${what}: ${page.total} file${page.total === 1 ? "" : "s"}` +
      (page.total ? ` (showing ${grid.items.length})` : "") + (state.q ? ` matching “${state.q}”` : "");
    document.getElementById("more").hidden = grid.items.length >= page.total;
  } catch (e) {
    toast(e.message);
  }
}

// -- duplicates, failures ------------------------------------------------------------------
function smallCard(member, badge) {
  // the member's mark (when the answer has it): its card shows it, as in the grid
  const mark = "decision" in member ? {decision: member.decision, rating: member.rating} : {};
  return card({id: member.id, path: member.path, status: "ok", flags: [], groups: {}, extra: {}, mirrored: member.mirrored, ...mark},
    [el("span", {className: "badge " + (badge === "redundant" ? "" : "keep")}, badge)]);
}

// Why a member other than the kept file is kept too: the person picked it, or a link
// of the folder points to it (boda.report.DuplicateSet.linked holds both).
function keptTooText(member) {
  return member.decision === "pick" ? "kept: picked" : "kept: a link points to it";
}

// The duplicate sets: the first page when the view (its kind) changes, the next one with
// ``next`` ("load more", or the detail view stepping past the last set loaded).
async function loadDuplicates(reset, next = false) {
  const key = state.kind;
  if (reset || key !== dups.key) {
    dups = {key, sets: [], total: 0, loaded: false, loading: null, stale: false};
    document.getElementById("dup-sets").replaceChildren();
  } else if (dups.loading) {
    return dups.loading; // on its way: the caller waits for it
  } else if (dups.loaded && !next) {
    return; // shown already (a detail opened or closed over them)
  }
  await readSets(dups.sets.length, 20, false);
}

// The sets [offset, offset + limit) of the kind shown: after those shown, or (``replace``)
// in their place.
function readSets(offset, limit, replace) {
  const key = dups.key;
  const p = new URLSearchParams({offset: String(offset), limit: String(limit)});
  if (key) p.set("kind", key);
  const loading = (async () => {
    try {
      const page = await api("api/duplicates?" + p.toString());
      if (key !== dups.key) return;
      dups.loaded = true;
      if (replace) dups.sets = [];
      dups.sets.push(...page.sets);
      dups.total = page.total;
      document.getElementById("dup-count").textContent = `(${page.total})`;
      const boxes = page.sets.map(setBox);
      const list = document.getElementById("dup-sets");
      if (replace) list.replaceChildren(...boxes); else list.append(...boxes);
      document.getElementById("dup-more").hidden = dups.sets.length >= page.total;
    } catch (e) {
      toast(e.message);
    }
  })();
  dups.loading = loading;
  loading.finally(() => { if (dups.loading === loading) dups.loading = null; });
  return loading;
}

function setBox(s) {
  const groups = [...s.exact_groups.map((g) => `exact group ${g}`), ...s.near_groups.map((g) => `near group ${g}`)];
  const hidden = s.redundant_count - s.redundant.length + s.linked_count - s.linked.length;
  const members = [s.keep, ...s.linked, ...s.redundant].filter((m) => m.id !== null).map((m) => m.id).slice(0, 4);
  return el("div", {className: "group"},
    members.length > 1 ? el("button", {type: "button", className: "compare-set", title: "these files side by side, to pick one",
      onclick: () => openCompare(members, s.keep.id)}, `compare ${members.length}`) : "", " ",
    el("b", {}, "keep "), el("span", {}, s.keep.path),
    el("span", {className: "muted"}, ` · ${s.redundant_count} redundant · ${groups.join(", ")}`
      + (s.mirrored_count ? ` · ${s.mirrored_count} matched as a mirror image (left-right flipped)` : "")),
    el("div", {className: "grid"}, smallCard(s.keep, "kept"),
      ...s.linked.map((m) => smallCard(m, keptTooText(m))),
      ...s.redundant.map((m) => smallCard(m, "redundant"))),
    hidden > 0 ? el("p", {className: "muted"}, `… and ${hidden} more (boda report DIR --only redundant --paths)`) : "");
}

// The sets shown, read again after marks changed (the keep rule reads picks and rejects:
// a rejected kept file hands the keep to another copy), once the detail or compare over
// them has closed; the card or compare button that had the focus has it again.
async function refreshDuplicates() {
  const busy = !document.getElementById("detail").hidden || !document.getElementById("compare").hidden;
  if (state.view !== "duplicates" || !dups.stale || !dups.loaded || dups.loading || busy) return;
  dups.stale = false;
  const active = document.activeElement;
  const box = active && active.closest && active.closest("#dup-sets .group");
  const card = box && active.closest(".card");
  const id = card ? Number(card.dataset.id) : box ? Number(box.querySelector(".card").dataset.id) : null;
  await readSets(0, Math.max(dups.sets.length, 20), true);
  if (id === null || (document.activeElement && document.activeElement !== document.body)) return;
  const again = document.querySelector(`#dup-sets .card[data-id="${id}"]`);
  const target = card ? again : again && again.closest(".group").querySelector(".compare-set");
  if (target) target.focus();
}

async function loadFailures() {
  try {
    const page = await api("api/failures?limit=500");
    document.getElementById("fail-count").textContent = `(${page.total})`;
    // the reasons, most frequent first, when some are shared: 500 empty files are one line
    const reasons = page.reasons || [];
    const grouped = reasons.length && reasons.length < page.total ? [
      el("tr", {}, el("th", {}, "reason"), el("th", {}, "files"), el("th", {}, "for example")),
      ...reasons.map((r) => el("tr", {}, el("td", {}, r.reason), el("td", {className: "num"}, String(r.count)),
        el("td", {}, el("code", {}, r.example))))] : [];
    document.getElementById("failure-reasons").replaceChildren(...grouped);
    document.getElementById("failure-reasons").hidden = !grouped.length;
    const rows = [el("tr", {}, el("th", {}, "file"), el("th", {}, "reason"))];
    for (const f of page.failures) rows.push(el("tr", {}, el("td", {}, el("code", {}, f.path)), el("td", {}, f.error || "")));
    if (!page.failures.length) rows.push(el("tr", {}, el("td", {colspan: "2"}, "Every file could be read.")));
    if (page.total > page.failures.length) rows.push(el("tr", {}, el("td", {colspan: "2", className: "muted"},
      `… and ${page.total - page.failures.length} more: boda report DIR --only failed --json`)));
    document.getElementById("failures").replaceChildren(...rows);
    // what the last scan's walk passed over (RAW files, iCloud placeholders, links, excludes)
    const passed = page.not_scanned || [];
    document.getElementById("not-scanned").replaceChildren(...passed.map((line) => el("li", {}, line)));
    document.getElementById("not-scanned-view").hidden = !passed.length;
  } catch (e) {
    toast(e.message);
  }
}

// -- the detail view ----------------------------------------------------------------------
async function openDetail(id) {
  detailId = id;
  const box = document.getElementById("detail");
  box.hidden = false;
  let record;
  // a card of a file that a rescan since has removed: its id is gone, or given to another file
  const gone = () => `${shownPaths.get(id)} is no longer in the catalog (the folder was scanned again ` +
    "since the page was loaded): reload the page";
  const asked = marksSaved;
  try {
    record = await api(`api/images/${id}`);
  } catch (e) {
    toast(e.status === 404 && shownPaths.has(id) ? gone() : e.message, e.status === 404 && shownPaths.has(id));
    go({open: null});
    return;
  }
  if (detailId !== id) return;
  if (shownPaths.has(id) && shownPaths.get(id) !== record.path) { toast(gone(), true); go({open: null}); return; }
  detailRecord = record;
  unzoom();
  // 1:1 needs pixels: no hint for a file the scan could not read (its marks stay: an
  // unreadable file can be rejected, as with boda mark)
  document.getElementById("zoom-hint").hidden = record.status === "error";
  const preview = document.getElementById("preview");
  const problem = document.getElementById("preview-error");
  problem.hidden = true;
  preview.hidden = false;
  preview.alt = record.path;
  preview.onerror = async () => { // the JSON error says why (a file gone, unreadable now)
    preview.hidden = true;
    document.getElementById("zoom-hint").hidden = true;
    problem.hidden = false;
    // an unreadable file: the scan's reason, as the preview would answer it (422), unasked
    if (record.status === "error") {
      problem.textContent = `${record.absolute_path} could not be read by the scan: ${record.error}`;
      return;
    }
    problem.textContent = "no preview";
    try { await api(`api/preview/${id}?max_side=1024`); } catch (e) { problem.textContent = e.message; }
  };
  if (record.status === "error") { // nothing to ask for: the scan could not read it
    preview.removeAttribute("src");
    preview.onerror();
  } else {
    preview.src = `api/preview/${id}?max_side=1024`;
  }
  document.getElementById("d-name").textContent = record.path;
  document.getElementById("d-path").textContent = record.absolute_path;
  // exact: UTF-8 and shown as it is (no control or bidi character written as an escape)
  document.getElementById("d-path").dataset.exact = record.absolute_path_exact === false ? "0" : "1";
  const extra = record.extra || {};
  const meta = [record.width ? `${record.width}×${record.height} px` : null, record.format, bytes(record.size),
    typeof extra.taken === "string" ? `taken ${takenText(extra.taken)}` : null,
    typeof extra.camera === "string" ? extra.camera : null,
    record.status !== "ok" ? `status ${record.status}` : null, record.link_to ? `links to ${record.link_to}` : null,
    record.error ? `error: ${record.error}` : null].filter(Boolean);
  document.getElementById("d-meta").textContent = meta.join(" · ");

  const colors = record.extra && Array.isArray(record.extra.dominant_colors) ? record.extra.dominant_colors : [];
  document.getElementById("d-swatches").replaceChildren(...colors.filter((c) => c && Array.isArray(c.rgb) && c.rgb.length === 3)
    .map((c) => { const span = el("span", {}); span.style.background = hex(c.rgb);
      return el("div", {title: "dominant colour"}, span, hex(c.rgb), el("br"), `${Math.round(100 * (c.fraction || 0))}%`); }));

  const flags = el("p", {}, el("b", {}, "flags: "), record.flags.length ? "" : "none");
  for (const f of record.flags) {
    const sel = summary.selections.find((s) => s.name === f);
    flags.append(el("span", {className: "badge" + (f.endsWith("duplicate") ? " dup" : ""), title: sel ? sel.description : ""},
      f + (sel && sel.rule ? ` (${sel.rule})` : "")));
  }
  document.getElementById("d-flags").replaceChildren(flags);

  const byKey = {};
  for (const [flag, key] of Object.entries(summary.score_keys)) byKey[key] = flag;
  const rows = [el("tr", {}, el("th", {}, "score"), el("th", {}, "value"), el("th", {}, "flag rule"))];
  for (const [name, value] of Object.entries(record.scores).sort()) {
    const flag = byKey[name];
    const rule = flag && summary.rules[flag] ? summary.rules[flag] : "";
    rows.push(el("tr", {className: flag && record.flags.includes(flag) ? "flagged" : ""},
      el("td", {}, name), el("td", {}, fmt(value)), el("td", {}, rule ? el("code", {}, rule) : "")));
  }
  document.getElementById("d-scores").replaceChildren(...rows);

  const groups = [];
  const set = record.duplicate_set;
  for (const [flag, g] of Object.entries(record.group_members || {})) {
    const label = flag === "exact_duplicate" ? "copies" : "look-alikes";
    groups.push(el("div", {className: "group"}, el("b", {}, `${flag} group ${g.group}`),
      el("span", {className: "muted"}, ` · ${g.size} ${label}` + (g.size > g.members.length ? ` (first ${g.members.length} shown)` : "")),
      el("div", {className: "grid"}, ...g.members.map((m) => {
        const badge = !set ? null : set.keep.id === m.id ? "kept" : set.redundant.some((r) => r.id === m.id) ? "redundant" : null;
        const dist = flag === "near_duplicate" && typeof m.flag_scores[flag] === "number" ? ` distance ${fmt(m.flag_scores[flag])}` : "";
        // "mirrored" in the near-duplicate group only, as the report says it
        return card({...m, mirrored: flag === "near_duplicate" && m.mirrored, extra: {}, groups: {}, scores: null}, [badge ? el("span", {className: "badge " + (badge === "kept" ? "keep" : "")}, badge) : null,
          m.id === id ? el("span", {className: "badge"}, "this file") : null, dist ? el("span", {className: "muted"}, dist) : null]);
      }))));
  }
  document.getElementById("d-groups").replaceChildren(...groups);
  takeMark(record, asked);
  rememberShown(record);
  refreshMarks(id); // the card too, if the mark changed elsewhere since it was shown
  showDetailMark();
  const others = compareIds(record);
  const button = document.getElementById("compare-open");
  button.hidden = others.length < 2;
  button.textContent = `compare ${others.length} side by side (C)`;
  showPosition(id);
  document.getElementById("close").focus();
}

function closeDetail() {
  const id = detailId;
  detailId = null;
  unzoom();
  document.getElementById("detail").hidden = true;
  document.getElementById("preview").removeAttribute("src");
  // back to the card of the file just viewed (a keyboard user goes on from there)
  const back = document.querySelector(`section:not([hidden]) .card[data-id="${Number(id)}"]`);
  if (back) back.focus();
}

// -- 1:1 ------------------------------------------------------------------------------------
function fullSide() {
  const r = detailRecord || {};
  const side = Math.max(r.width || 0, r.height || 0) || summary.max_preview_side;
  return Math.min(side, summary.max_preview_side);
}

function zoom(event) {
  const preview = document.getElementById("preview");
  const box = preview.parentElement;
  if (detailId === null || preview.hidden || !preview.getAttribute("src")) return;
  if (zoomed) { unzoom(); return; }
  // the point to show: the one clicked, else the middle (fractions of the image)
  const r = preview.getBoundingClientRect();
  let fx = 0.5, fy = 0.5;
  if (event && event.type === "click" && r.width && r.height) {
    fx = Math.min(Math.max((event.clientX - r.left) / r.width, 0), 1);
    fy = Math.min(Math.max((event.clientY - r.top) / r.height, 0), 1);
  }
  zoomed = true;
  box.classList.add("full");
  const id = detailId;
  const centre = () => {
    if (!zoomed || detailId !== id) return;
    box.scrollLeft = fx * preview.naturalWidth - box.clientWidth / 2;
    box.scrollTop = fy * preview.naturalHeight - box.clientHeight / 2;
  };
  preview.addEventListener("load", centre, {once: true});
  preview.src = `api/preview/${id}?max_side=${fullSide()}`;
  document.getElementById("zoom-hint").textContent = "1:1 — click, Z or Esc: fit";
  centre();
}

function unzoom() {
  const preview = document.getElementById("preview");
  const box = preview.parentElement;
  const was = zoomed;
  zoomed = false;
  box.classList.remove("full");
  document.getElementById("zoom-hint").textContent = "click or Z: 1:1 (full size)";
  if (was && detailId !== null && detailRecord && detailRecord.status !== "error") {
    preview.src = `api/preview/${detailId}?max_side=1024`;
  }
}

// The files the detail view steps through (→ ←): those of the view it was opened from:
// the grid's, or every file the duplicate sets show, set after set (the kept one first).
// ``more``: loads the next page of them, when ``hasMore``.
function stepList() {
  if (state.view === "duplicates") {
    const ids = [];
    const sets = []; // the set of each, counted from 0
    dups.sets.forEach((s, k) => {
      for (const m of [s.keep, ...s.linked, ...s.redundant]) {
        if (m && typeof m.id === "number") { ids.push(m.id); sets.push(k); }
      }
    });
    return {ids, sets, total: ids.length, hasMore: dups.sets.length < dups.total,
      more: () => loadDuplicates(false, true)};
  }
  if (state.view === "grid") {
    return {ids: grid.items.map((r) => r.id), total: grid.total, hasMore: grid.items.length < grid.total, more};
  }
  return {ids: [], total: 0, hasMore: false, more: async () => {}};
}

// "3 of 120" in the grid, "2 of 6 · duplicate set 1 of 3" in the duplicate sets; ← → off
// (and their titles say why) for a file that is not in the list (a group member).
function showPosition(id) {
  const list = stepList();
  const at = list.ids.indexOf(id);
  let text = "";
  if (at >= 0 && state.view === "duplicates") {
    text = `${at + 1} of ${list.total}${list.hasMore ? " loaded" : ""} · duplicate set ${list.sets[at] + 1} of ${dups.total}`;
  } else if (at >= 0) {
    text = `${at + 1} of ${list.total}`;
  }
  document.getElementById("position").textContent = text;
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  prev.disabled = at <= 0;
  next.disabled = at < 0 || (at + 1 >= list.ids.length && !list.hasMore);
  const off = at < 0 ? " — off: this file is not in the list the page shows" : "";
  prev.title = "previous (← or k)" + off;
  next.title = "next (→ or j)" + off;
}

// The steps on their way, one after another (null: none): a step that waits for the next
// page of its list, or a detail opened from the address reading the pages up to its file.
// Mark keys wait for them, each for the file the step before went to (none lost, none
// given to the same file twice).
let stepping = null;

function afterSteps(work) {
  const run = (stepping || Promise.resolve()).then(work);
  stepping = run;
  run.catch(() => {}).then(() => { if (stepping === run) stepping = null; });
  return run;
}

function step(delta) {
  return afterSteps(() => stepNow(delta));
}

async function stepNow(delta) {
  let list = stepList();
  const at = list.ids.indexOf(currentDetail());
  if (at < 0) return;
  const target = at + delta;
  if (target < 0) return;
  if (target >= list.ids.length && list.hasMore) {
    await list.more();
    list = stepList();
  }
  if (target >= list.ids.length) return;
  // the file is the next one from now on, before it is shown: a key pressed meanwhile
  // is for it
  steppedTo = list.ids[target];
  go({open: steppedTo});
}

// The file of the detail view that keys act on: the one stepped to, even before it shows.
let steppedTo = null;
function currentDetail() {
  return steppedTo !== null && state.open === steppedTo ? steppedTo : detailId;
}

// Whether the page can mark (false on a read-only page: the keys say so and do not advance).
function canMark() {
  return Boolean(summary.marks && summary.marks.writable);
}

// -- wiring -------------------------------------------------------------------------------
function markActive() {
  // every list of the sidebar: the flags, Culling (picked...) and Datasets
  document.querySelectorAll("aside a.sel").forEach((a) => {
    const name = a.dataset.only;
    a.classList.toggle("active", state.view === "grid" && (name ? state.only.includes(name) : !state.only.length));
  });
  document.querySelectorAll("[data-view]").forEach((a) => a.classList.toggle("active", a.dataset.view === state.view));
  document.getElementById("search").value = state.q;
  const sort = document.getElementById("sort");
  if (![...sort.options].some((o) => o.value === state.sort)) sort.append(el("option", {value: state.sort}, state.sort));
  sort.value = state.sort;
  document.getElementById("order").value = state.order;
  document.getElementById("dup-kind").value = state.kind;
  document.getElementById("stars").value = String(state.stars);
  const p = new URLSearchParams(pathsQuery());
  p.set("download", "1");
  const link = document.getElementById("download-paths");
  link.href = "api/paths?" + p.toString();
  link.title = "a file with the paths of " + pathsWhat();
  document.getElementById("copy-paths").title = "copy the paths of " + pathsWhat() +
    " (as boda report DIR --only … --paths)";
}

async function render() {
  readHash();
  for (const [view, id] of [["grid", "grid-view"], ["duplicates", "duplicates-view"], ["failures", "failures-view"]]) {
    document.getElementById(id).hidden = state.view !== view;
  }
  markActive();
  if (state.view === "grid") await loadGrid(false);
  else if (state.view === "duplicates") await loadDuplicates(false);
  else await loadFailures();
  if (state.open !== null) {
    if (state.open !== detailId) {
      const fresh = detailId === null; // from the address (a reload, a bookmark, Back)
      await openDetail(state.open);
      if (fresh && detailId !== null) {
        const id = detailId;
        await afterSteps(() => reachFile(id));
        if (detailId !== null) showPosition(detailId);
      }
    }
  } else if (detailId !== null) closeDetail();
  await refreshDuplicates();
}

// The pages of the view's list up to the file ``id`` (at most 20 more): a detail opened
// from the address past the first page has its "n of N" and ← →, and Esc gives the
// focus to its card.
async function reachFile(id) {
  for (let pages = 0; pages < 20; pages++) {
    const list = stepList();
    if (list.ids.includes(id) || !list.hasMore) return;
    await list.more();
  }
}

// The paths the grid shows: its selection and its search (never more than it shows).
function pathsQuery() {
  const p = new URLSearchParams();
  if (state.only.length) p.set("only", state.only.join(","));
  if (state.q) p.set("q", state.q);
  if (state.stars) p.set("min_rating", String(state.stars));
  return p;
}

function pathsWhat() {
  return (state.only.length ? state.only.join(" + ") : "all files") + (state.stars ? `, ${state.stars}+ stars` : "") +
    (state.q ? `, matching “${state.q}”` : "");
}

async function copyPaths() {
  try {
    const response = await fetch("api/paths?" + pathsQuery().toString());
    if (!response.ok) throw new Error((await response.json()).detail);
    const text = await response.text();
    const n = text ? text.split("\n").length - 1 : 0;
    const left = parseInt(response.headers.get("X-Boda-Left-Out") || "0", 10);
    const inexact = parseInt(response.headers.get("X-Boda-Not-UTF8") || "0", 10);
    const gone = parseInt(response.headers.get("X-Boda-Gone") || "0", 10);
    const ok = await copyText(text);
    const notes = [];
    if (left) notes.push(`${left} with a newline in the name left out: use --print0`);
    if (gone) notes.push(`${gone} deleted since the last scan left out: run boda scan`);
    if (inexact) notes.push(`${inexact} name${inexact === 1 ? " is" : "s are"} not UTF-8 and not copied exactly: use download paths`);
    toast(ok ? `copied ${n} path${n === 1 ? "" : "s"} (${pathsWhat()})` + (notes.length ? ". " + notes.join("; ") : "")
      : "could not copy: use download paths");
  } catch (e) {
    toast(e.message);
  }
}

async function start() {
  try {
    summary = await api("api/summary");
  } catch (e) {
    document.getElementById("subtitle").textContent = "cannot read the catalog: " + e.message;
    return;
  }
  renderSummary();
  let timer = null;
  document.getElementById("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => go({q: e.target.value, open: null}), 250);
  });
  document.getElementById("sort").addEventListener("change", (e) => go({sort: e.target.value, open: null}));
  document.getElementById("order").addEventListener("change", (e) => go({order: e.target.value, open: null}));
  document.getElementById("dup-kind").addEventListener("change", (e) => go({kind: e.target.value}));
  document.getElementById("more").addEventListener("click", more);
  document.getElementById("skip").addEventListener("click", skipToPhotos);
  document.getElementById("dup-more").addEventListener("click", () => loadDuplicates(false, true));
  document.getElementById("copy-paths").addEventListener("click", copyPaths);
  document.getElementById("copy-path").addEventListener("click", async () => {
    const ok = await copyText(document.getElementById("d-path").textContent);
    const exact = document.getElementById("d-path").dataset.exact === "1";
    toast(!ok ? "could not copy" : exact ? "path copied"
      : "path copied, but not exactly: the name is not UTF-8 or holds control characters (shown as \\xNN, \\n); use download paths");
  });
  document.getElementById("close").addEventListener("click", () => go({open: null}));
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  document.getElementById("detail").addEventListener("click", (e) => { if (e.target.id === "detail") go({open: null}); });
  document.getElementById("preview").addEventListener("click", zoom);
  document.querySelectorAll("[data-view]").forEach((a) => a.addEventListener("click", (e) => {
    e.preventDefault();
    go({view: a.dataset.view, open: null});
  }));
  document.addEventListener("keydown", async (e) => {
    if (e.target.closest && e.target.closest("input:not([type=checkbox]), select, textarea")) return; // typing
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "z") {
      e.preventDefault();
      await undoMark();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && !e.altKey && ((e.shiftKey && e.key.toLowerCase() === "z") ||
        (!e.shiftKey && e.key.toLowerCase() === "y"))) {
      e.preventDefault();
      await redoMark();
      return;
    }
    if (!document.getElementById("compare").hidden) { await compareKey(e); return; }
    if (document.getElementById("detail").hidden) { await gridKey(e); return; }
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const change = markKey(e);
    if (change) {
      e.preventDefault();
      while (stepping) await stepping; // for the file the step on its way goes to
      const saving = setMark([currentDetail()], change);
      if (canMark() && advance()) step(1); // at once: the next key is for the next file
      await saving;
    }
    else if (e.key === "Escape") { if (zoomed) unzoom(); else go({open: null}); }
    else if (e.key === "z" || e.key === "Z") { e.preventDefault(); zoom(null); }
    else if (e.key === "c" || e.key === "C") { e.preventDefault(); if (detailRecord) openCompare(compareIds(detailRecord), detailRecord.duplicate_set && detailRecord.duplicate_set.keep.id); }
    else if (e.key === "ArrowRight" || e.key === "j") { e.preventDefault(); step(1); }
    else if (e.key === "ArrowLeft" || e.key === "k") { e.preventDefault(); step(-1); }
  });
  document.getElementById("d-mark").append(markControls((change) => {
    setMark([currentDetail()], change);
    if (canMark() && advance()) step(1);
  }));
  document.getElementById("compare-open").addEventListener("click", () =>
    openCompare(compareIds(detailRecord), detailRecord.duplicate_set && detailRecord.duplicate_set.keep.id));
  document.getElementById("compare-close").addEventListener("click", closeCompare);
  document.getElementById("compare-zoom").addEventListener("click", compareZoom);
  // auto-advance: one setting, a toggle in the toolbar and one in the detail view
  const toggles = [...document.querySelectorAll(".advance-toggle")];
  for (const box of toggles) {
    box.checked = advance();
    box.addEventListener("change", () => {
      localStorage.setItem("boda.advance", box.checked ? "1" : "0");
      for (const other of toggles) other.checked = box.checked;
    });
  }
  document.getElementById("stars").addEventListener("change", (e) => go({stars: Number(e.target.value), open: null}));
  window.addEventListener("hashchange", render);
  await render();
  document.body.dataset.ready = "1";
  // The summary again every few seconds while a scan runs or counts are still being
  // read (a large catalog), else now and then: the header, counts and warnings follow.
  for (;;) {
    const since = Date.now();
    const busy = () => summary.pending.length || (summary.scan && summary.scan.running);
    while (Date.now() - since < (busy() ? POLL.busy : POLL.idle)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (document.hidden) continue;
    const marksBefore = summary.marks && summary.marks.version;
    try { summary = await api("api/summary"); } catch (e) { continue; }
    if (summary.marks && summary.marks.version !== marksBefore) {
      refreshCardMarks();
      if (dups.loaded) { dups.stale = true; refreshDuplicates(); }
    }
    const sort = document.getElementById("sort");
    if (document.activeElement === sort) continue; // not while its list is open
    renderSummary();
    markActive();
  }
}

// "Skip to photos", the first Tab stop: the focus goes past the sidebar, the summary and
// the toolbar to the first card of the view shown (else to the view itself).
function skipToPhotos(e) {
  e.preventDefault(); // the view stays as it is (its address holds it)
  const view = ["grid-view", "duplicates-view", "failures-view"].map((id) => document.getElementById(id))
    .find((section) => !section.hidden);
  if (!view) return;
  let target = view.querySelector(".card");
  if (!target) {
    target = view.querySelector("#grid") || view;
    target.setAttribute("tabindex", "-1");
  }
  target.focus();
  target.scrollIntoView({block: "nearest"});
}

// Tab stays inside an open dialog (the detail view, compare): they are modal, the page
// behind them is not reachable until they close (Esc).
document.addEventListener("keydown", (e) => {
  if (e.key !== "Tab") return;
  const box = ["compare", "detail"].map((id) => document.getElementById(id)).find((b) => b && !b.hidden);
  if (!box) return;
  const items = [...box.querySelectorAll("button, a[href], input, select, textarea, [tabindex]:not([tabindex='-1'])")]
    .filter((n) => !n.disabled && n.getClientRects().length);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  const inside = box.contains(document.activeElement);
  if (!inside || (e.shiftKey && document.activeElement === first)) { e.preventDefault(); (e.shiftKey ? last : first).focus(); }
  else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
});

start();
