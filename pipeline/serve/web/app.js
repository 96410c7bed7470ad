// The title page: asks POST /v1/titles and keeps every answer of the session, newest first, each
// as a block with its request and its titles (requested keywords highlighted).
// Built with DOM nodes and textContent only (never innerHTML), so neither the model's titles nor
// the server's messages can inject markup.
"use strict";
const $ = (id) => document.getElementById(id);
const requests = [];  // every answered request since the page was opened, oldest first: {number, data}
let maxKeywords = 6;
let busy = false;
let csvUrl = null;

async function loadCategories() {
  try {
    const health = await (await fetch("/healthz")).json();
    if (health.limits) {
      maxKeywords = health.limits.max_keywords;
      $("count").max = health.limits.max_n;
    }
    // A server with serve.token set answers /v1/ only with the token; the page asks for it and
    // keeps it for this tab only (sessionStorage), never in the page's address or a cookie.
    $("token-field").hidden = !health.token_required;
    $("token").value = sessionStorage.getItem("token") || "";
    if (health.token_required && !$("token").value) return;
    const data = await (await fetch("/v1/categories", { headers: auth() })).json();
    for (const c of data.categories) {
      const option = document.createElement("option");
      option.value = c.name;
      option.label = `${c.name} (${c.titles} titles)`;
      $("categories").append(option);
    }
  } catch (err) {
    showError(`could not load the trained categories: ${err}`);
  }
}

function auth() {
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem("token", token);
  return token ? { authorization: `Bearer ${token}` } : {};
}

// Shows `message` as text (never as HTML); an empty message hides the box.
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// The pieces of `title`, each marked when it is a word of one of `keywords` (any case).
function pieces(title, keywords) {
  const words = keywords.flatMap((k) => k.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []);
  if (!words.length) return [[title, false]];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(${escaped.join("|")})(?![\\p{L}\\p{N}_])`, "giu");
  const out = [];
  let last = 0;
  for (const m of title.matchAll(re)) {
    if (m.index > last) out.push([title.slice(last, m.index), false]);
    out.push([m[0], true]);
    last = m.index + m[0].length;
  }
  if (last < title.length) out.push([title.slice(last), false]);
  return out;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {  // no clipboard API (plain http on another host): a hidden textarea still works
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1200);
}

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// How the page shows a request's settings (the server's answer: normalised, defaults filled in).
function settings(data) {
  return [
    `seed ${data.seed === null ? "none (not repeatable)" : data.seed}`,
    data.guided ? "guided" : "not guided",
    `temperature ${data.temperature}`,
  ].join(" · ");
}

// One block: the request (number, subreddit, keywords, settings, any warning) and its titles.
function block(number, data) {
  const section = el("section", "block");
  section.dataset.request = number;
  const head = el("p", "request");
  const keywords = data.keywords.length ? `keywords ${data.keywords.join(", ")}` : "no keywords";
  head.append(el("strong", "", `#${number} `), el("span", "subreddit", data.category ?? ""),
              " · ", el("span", "keywords", keywords), " · ", el("span", "settings", settings(data)));
  section.append(head);
  if (data.warning) section.append(el("p", "warning", `Note: ${data.warning}`));
  const list = el("ol");
  for (const t of data.titles) {
    const li = el("li");
    const row = el("div", "row");
    const text = el("span", "title");
    for (const [piece, marked] of pieces(t.title, data.keywords)) {
      text.append(marked ? el("mark", "", piece) : piece);
    }
    const meta = el("span", "meta", `log-prob ${t.logprob.toFixed(2)}${t.finished ? "" : " (cut)"}`);
    const button = el("button", "secondary copy", "Copy");
    button.type = "button";
    button.addEventListener("click", () => copy(t.title, button));
    row.append(text, meta, button);
    li.append(row);
    list.append(li);
  }
  section.append(list);
  return section;
}

// --- CSV: every kept title, newest request first, with the request it came from ---------------

const CSV_HEADER = ["request", "subreddit", "keywords", "seed", "guided", "temperature",
                    "title", "keywords_present", "logprob"];

// One CSV cell. Text that a spreadsheet could run as a formula (starting with = + - @, a tab or a
// carriage return) gets a leading ', and every text cell is quoted with its quotes doubled.
// A number (request, seed, temperature, logprob) is written as the number: it cannot be a formula,
// and a ' would turn a negative log-prob into text.
function csvCell(value) {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

function csvText(header, rows) {
  return [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function sessionRows() {
  const rows = [];
  for (const { number, data } of [...requests].reverse()) {
    for (const t of data.titles) {
      rows.push([number, data.category ?? "", data.keywords.join(" "), data.seed ?? "", String(data.guided),
                 data.temperature, t.title, t.keywords_present.join(" "), t.logprob]);
    }
  }
  return rows;
}

// The download link always offers the whole session (a fresh blob: URL after every answer).
function refreshCsv() {
  const link = $("csv");
  if (csvUrl) URL.revokeObjectURL(csvUrl);
  csvUrl = null;
  const rows = sessionRows();
  if (!rows.length) {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
    return;
  }
  csvUrl = URL.createObjectURL(new Blob([csvText(CSV_HEADER, rows)], { type: "text/csv" }));
  link.href = csvUrl;
  link.removeAttribute("aria-disabled");
}

function keep(data) {
  const number = requests.length + 1;
  requests.push({ number, data });
  $("titles").prepend(block(number, data));
  refreshCsv();
}

async function generate(event) {
  event.preventDefault();
  if (busy) return;
  showError("");  // a new request starts: an earlier error no longer applies
  const keywords = [...document.querySelectorAll(".keyword")].map((i) => i.value.trim()).filter(Boolean);
  const body = { category: $("category").value.trim(), keywords, n: Number($("count").value) || 1 };
  busy = true;
  $("generate").disabled = true;
  $("status").textContent = "Writing titles...";
  try {
    const response = await fetch("/v1/titles", {
      method: "POST", headers: { "content-type": "application/json", ...auth() }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = typeof data.error === "string" ? data.error : response.statusText;
      showError(`The server refused (${response.status}): ${reason}`);
      $("status").textContent = "";
      return;
    }
    showError("");
    keep(data);
    $("status").textContent = `${data.titles.length} titles (request #${requests.length})`;
  } catch (err) {
    showError(`No answer from the server: ${err}`);
    $("status").textContent = "";
  } finally {
    busy = false;
    $("generate").disabled = false;
  }
}

function addKeyword() {
  const fields = document.querySelectorAll(".keyword");
  if (fields.length >= maxKeywords) {
    showError(`at most ${maxKeywords} keywords`);
    return;
  }
  showError("");
  const input = Object.assign(document.createElement("input"),
    { className: "keyword", name: "keyword", placeholder: `keyword ${fields.length + 1}` });
  $("keywords").append(input);
  input.focus();
}

// For the browser tests and the console: the CSV builder and the session's CSV text.
window.titlePage = { csvCell, csvText, header: CSV_HEADER, sessionCsv: () => csvText(CSV_HEADER, sessionRows()) };

$("form").addEventListener("submit", generate);
$("more").addEventListener("click", addKeyword);
refreshCsv();
loadCategories();
