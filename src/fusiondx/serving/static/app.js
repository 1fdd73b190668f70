// The clinician page: a form built from GET /model's inputs, posted to /predict?explain=true.
// Plain DOM code, nothing loaded from elsewhere; every text shown goes through textContent.
"use strict";

const $ = (id) => document.getElementById(id);

let CARD = null;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "style") {
      // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
      for (const decl of v.split(";")) {
        const [prop, val] = decl.split(":");
        if (prop && val) node.style.setProperty(prop.trim(), val.trim());
      }
    } else {
      node.setAttribute(k, v);
    }
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function fieldFor(input) {
  const box = el("fieldset", { "data-modality": input.name });
  box.appendChild(el("legend", {}, `${input.name} (${input.kind})`));
  if (input.kind === "image" || input.kind === "signal") {
    const id = `f-${input.name}`;
    box.appendChild(el("label", { for: id }, input.kind === "image" ? "Image file" : "Signal file(s)"));
    const file = el("input", { type: "file", id, name: input.name });
    if (input.kind === "signal") file.multiple = true; // a WFDB record is a .hea and a .dat
    box.appendChild(file);
  } else if (input.kind === "text") {
    const id = `f-${input.name}`;
    box.appendChild(el("label", { for: id }, "Text"));
    box.appendChild(el("textarea", { id, name: input.name }));
  } else {
    const grid = el("div", { class: "labs" });
    for (const col of input.columns) {
      const id = `f-${col.name}`;
      const cell = el("div");
      cell.appendChild(el("label", { for: id }, col.name));
      let field;
      if (col.type === "category") {
        field = el("select", { id, name: col.name });
        field.appendChild(el("option", { value: "" }, "(missing)"));
        for (const c of col.categories) field.appendChild(el("option", { value: c }, c));
      } else {
        field = el("input", { id, name: col.name, type: "number", step: "any", placeholder: "missing" });
      }
      cell.appendChild(field);
      grid.appendChild(cell);
    }
    box.appendChild(grid);
  }
  box.appendChild(el("div", { class: "hint" }, input.expects));
  return box;
}

function showCard(card) {
  $("model-name").textContent = `- ${card.name}`;
  $("model-task").textContent = card.tasks
    .map((t) => (t.classes.length ? `${t.name}: ${t.classes.join(" / ")}` : `${t.name}: ${t.type}`))
    .join("; ");
  const body = $("card-body");
  body.textContent = "";
  for (const [task, entry] of Object.entries(card.test_metrics || {})) {
    const parts = [];
    for (const [name, v] of Object.entries(entry.metrics)) {
      if (v.value === null || v.value === undefined) continue;
      let s = `${name} ${v.value.toFixed(3)}`;
      if (v.ci95) s += ` (95% CI ${v.ci95[0].toFixed(3)}-${v.ci95[1].toFixed(3)})`;
      parts.push(s);
    }
    body.appendChild(el("p", {}, `Test (${entry.cases} cases), ${task}: ${parts.join("; ")}.`));
  }
  body.appendChild(el("p", {}, card.intended_use));
  const ul = el("ul");
  for (const l of card.limits) ul.appendChild(el("li", {}, l));
  body.appendChild(ul);
}

function showError(err) {
  const box = $("error");
  box.textContent = "";
  box.appendChild(el("strong", {}, err.error || "The request failed."));
  if (err.field) box.appendChild(el("div", {}, `Field: ${err.field}`));
  if (err.fix) box.appendChild(el("div", {}, `Fix: ${err.fix}`));
  box.hidden = false;
  $("result").hidden = true;
}

function showAnswer(a) {
  $("error").hidden = true;
  const entries = Object.entries(a.tasks);
  const classified = entries.find(([, t]) => t.probabilities);
  $("classified").hidden = !classified;
  if (classified) showClasses(...classified);
  showOthers(entries.filter(([, t]) => !t.probabilities));
  showContributions(a);
  const over = $("overlays");
  over.textContent = "";
  const expl = a.explanation || {};
  $("overlay-title").hidden = Object.keys(expl).length === 0;
  for (const [name, e] of Object.entries(expl)) {
    const fig = el("figure");
    fig.appendChild(el("img", { id: `overlay-${name}`, alt: `${e.method} of ${name}`, src: `data:image/png;base64,${e.png}` }));
    fig.appendChild(el("figcaption", { class: "muted" }, `${name}: ${e.method} for class '${e.class}'`));
    over.appendChild(fig);
  }
  const notes = $("notes");
  notes.textContent = "";
  for (const n of a.notes || []) notes.appendChild(el("li", {}, n));
  $("result").hidden = false;
}

// Tasks without class probabilities: generated text (a draft to check), or the raw output.
function showOthers(entries) {
  const box = $("others");
  box.textContent = "";
  for (const [task, t] of entries) {
    if (typeof t.text === "string") {
      box.appendChild(el("h3", {}, `${task}: a draft written by the model, to check before use`));
      box.appendChild(el("p", { class: "generated", "data-task": task }, t.text || "(nothing written)"));
    } else {
      box.appendChild(el("p", { "data-task": task }, `${task}: ${JSON.stringify(t.output)}`));
    }
  }
}

function showClasses(task, t) {
  const pred = Array.isArray(t.prediction) ? t.prediction.join(", ") || "none" : t.prediction;
  $("decision").textContent = `${task}: ${pred}`;
  const unc = $("uncertainty");
  unc.className = "";
  if (t.set) {
    unc.textContent = t.refer
      ? `Uncertain: the model cannot exclude ${t.set.join(" or ") || "any class"} - refer to a specialist.`
      : `Confident: the ${coverage(task)} prediction set holds ${t.set.join(", ")} alone.`;
    if (t.refer) unc.className = "refer";
  } else {
    unc.textContent = "";
  }
  const tbody = $("probs").querySelector("tbody");
  tbody.textContent = "";
  for (const [cls, p] of Object.entries(t.probabilities)) {
    const row = el("tr", { "data-class": cls });
    row.appendChild(el("td", {}, cls));
    row.appendChild(el("td", { class: "prob", "data-value": String(p) }, p.toFixed(4)));
    const bar = el("td");
    bar.appendChild(el("span", { class: "pbar", style: `width:${(100 * p).toFixed(1)}px` }));
    row.appendChild(bar);
    tbody.appendChild(row);
  }
}

function coverage(task) {
  const t = CARD && CARD.tasks.find((x) => x.name === task);
  return t && t.conformal_coverage ? `${Math.round(100 * t.conformal_coverage)}%` : "conformal";
}

function showContributions(a) {
  const box = $("contributions");
  box.textContent = "";
  const c = a.contributions;
  if (!c) {
    $("contrib-note").textContent = "Not computed for this model.";
    return;
  }
  $("contrib-note").textContent =
    `Probability of '${c.explained_class}' ${c.probability.toFixed(3)}, from ${c.base.toFixed(3)} with no input; ` +
    "red bars raised it, blue bars lowered it (exact Shapley values; absent inputs are 0).";
  const top = Math.max(1e-9, ...Object.values(c.values).map(Math.abs));
  for (const [name, v] of Object.entries(c.values)) {
    const row = el("div", { class: "contrib", "data-modality": name });
    const present = a.modalities[name] && a.modalities[name].present;
    row.appendChild(el("span", {}, present ? name : `${name} (absent)`));
    const track = el("div", { class: "track" });
    track.appendChild(el("div", { class: "axis" }));
    const w = (50 * Math.abs(v)) / top;
    const style = v >= 0 ? `left:50%;width:${w}%` : `left:${50 - w}%;width:${w}%`;
    track.appendChild(el("div", { class: `bar ${v >= 0 ? "up" : "down"}`, style }));
    row.appendChild(track);
    row.appendChild(el("span", { class: "value" }, (v >= 0 ? "+" : "") + v.toFixed(3)));
    box.appendChild(row);
  }
}

async function submit(event) {
  event.preventDefault();
  const form = $("case-form");
  const data = new FormData();
  for (const field of form.elements) {
    if (!field.name || field.name === "__token") continue;
    if (field.type === "file") {
      for (const f of field.files) data.append(field.name, f, f.name);
    } else if (field.value.trim() !== "") {
      data.append(field.name, field.value);
    }
  }
  const headers = {};
  const token = $("token").value;
  if (token) headers.Authorization = `Bearer ${token}`;
  $("submit").disabled = true;
  $("busy").hidden = false;
  $("answer").hidden = false;
  try {
    const r = await fetch("/predict?explain=true", { method: "POST", body: data, headers });
    const body = await r.json();
    if (r.ok) showAnswer(body);
    else showError(body);
  } catch (e) {
    showError({ error: `No answer from the server (${e}).` });
  } finally {
    $("submit").disabled = false;
    $("busy").hidden = true;
    document.body.setAttribute("data-state", "answered");
  }
}

async function start() {
  const [health, card] = await Promise.all([
    fetch("/health").then((r) => r.json()),
    fetch("/model").then((r) => r.json()),
  ]);
  CARD = card;
  $("token-row").hidden = !health.token_required;
  const fields = $("fields");
  for (const input of card.inputs) fields.appendChild(fieldFor(input));
  showCard(card);
  $("case-form").addEventListener("submit", submit);
  document.body.setAttribute("data-state", "ready");
}

start();
