// The title page: asks POST /v1/titles, lists the titles with the requested keywords highlighted.
// Built with DOM nodes only (never innerHTML), so text from the model cannot inject markup.
"use strict";
const $ = (id) => document.getElementById(id);
const session = [];  // every title generated since the page was opened, for the CSV
let maxKeywords = 6;

async function loadCategories() {
  try {
    const health = await (await fetch("/healthz")).json();
    if (health.limits) {
      maxKeywords = health.limits.max_keywords;
      $("count").max = health.limits.max_n;
    }
    const data = await (await fetch("/v1/categories")).json();
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

function show(data) {
  const list = $("titles");
  list.replaceChildren();
  for (const t of data.titles) {
    const li = document.createElement("li");
    const row = document.createElement("div");
    row.className = "row";
    const text = document.createElement("span");
    text.className = "title";
    for (const [piece, marked] of pieces(t.title, data.keywords)) {
      text.append(marked ? Object.assign(document.createElement("mark"), { textContent: piece }) : piece);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `log-prob ${t.logprob.toFixed(2)}${t.finished ? "" : " (cut)"}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary copy";
    button.textContent = "Copy";
    button.addEventListener("click", () => copy(t.title, button));
    row.append(text, meta, button);
    li.append(row);
    list.append(li);
    session.push([data.category, data.keywords.join(" "), t.title, t.keywords_present.join(" "), t.logprob]);
  }
  $("csv").disabled = session.length === 0;
}

async function generate(event) {
  event.preventDefault();
  showError("");
  const keywords = [...document.querySelectorAll(".keyword")].map((i) => i.value.trim()).filter(Boolean);
  const body = { category: $("category").value.trim(), keywords, n: Number($("count").value) || 1 };
  $("generate").disabled = true;
  $("status").textContent = "Writing titles...";
  try {
    const response = await fetch("/v1/titles", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(`The server refused (${response.status}): ${data.error || response.statusText}`);
      $("status").textContent = "";
      return;
    }
    show(data);
    $("status").textContent = data.warning ? `Note: ${data.warning}` : `${data.titles.length} titles`;
  } catch (err) {
    showError(`No answer from the server: ${err}`);
    $("status").textContent = "";
  } finally {
    $("generate").disabled = false;
  }
}

function addKeyword() {
  const fields = document.querySelectorAll(".keyword");
  if (fields.length >= maxKeywords) {
    showError(`at most ${maxKeywords} keywords`);
    return;
  }
  const input = Object.assign(document.createElement("input"),
    { className: "keyword", name: "keyword", placeholder: `keyword ${fields.length + 1}` });
  $("keywords").append(input);
  input.focus();
}

function downloadCsv() {
  const cell = (v) => `"${String(v).replace(/"/g, '""')}"`;
  const lines = [["subreddit", "keywords", "title", "keywords_present", "logprob"], ...session];
  const blob = new Blob([lines.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n"], { type: "text/csv" });
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: "titles.csv" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

$("form").addEventListener("submit", generate);
$("more").addEventListener("click", addKeyword);
$("csv").addEventListener("click", downloadCsv);
loadCategories();
