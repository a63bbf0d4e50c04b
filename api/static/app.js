// km-search chat page. No build step. All crawled and user text is inserted with
// textContent / createTextNode (never as HTML), so a crawled page cannot inject markup.
"use strict";

const I18N = {
  th: {
    title: "ค้นหาความรู้ภาครัฐ", filters: "ตัวกรอง", dateFrom: "ตั้งแต่วันที่", dateTo: "ถึงวันที่",
    publisher: "หน่วยงาน", province: "จังหวัด", clear: "ล้างตัวกรอง", export: "ส่งออก",
    send: "ถาม", placeholder: "พิมพ์คำถาม แล้วกด Enter (Shift+Enter ขึ้นบรรทัดใหม่)",
    all: "ทั้งหมด", thinking: "กำลังค้นหา…", copy: "คัดลอก", share: "แชร์", copied: "คัดลอกแล้ว",
    helpful: "มีประโยชน์", notHelpful: "ไม่มีประโยชน์", thanks: "ขอบคุณสำหรับความคิดเห็น",
    sources: "แหล่งอ้างอิง", results: "ผลการค้นหา", select: "เลือกเพื่อส่งออก", ce: "ค.ศ.",
    error: "เกิดข้อผิดพลาด", nothing: "ยังไม่มีอะไรให้ส่งออก", otherLang: "English", exported: "ส่งออกแล้ว",
    lesson: "บทเรียน", facets: "จำแนกผลลัพธ์", compare: "เปรียบเทียบกรณี", pickTwo: "เลือก 2-5 ผลลัพธ์ก่อน",
    fiscal_year: "ปีงบประมาณ", agency: "หน่วยงาน", region: "ภาค", factor: "ปัจจัย", gov40: "ระบบราชการ 4.0",
    pmqa: "PMQA 4.0", case: "กรณี", success_factors: "ปัจจัยความสำเร็จ", results_f: "ผลลัพธ์/หลักฐาน",
    recommendations: "ข้อเสนอแนะ", obstacles: "ปัญหาอุปสรรค", people: "บุคคลและบทบาท", similar: "กรณีคล้ายกัน",
    programmes: "โครงการ/แนวทาง",
  },
  en: {
    title: "Public-sector knowledge search", filters: "Filters", dateFrom: "From", dateTo: "To",
    publisher: "Agency", province: "Province", clear: "Clear filters", export: "Export",
    send: "Ask", placeholder: "Type a question and press Enter (Shift+Enter for a new line)",
    all: "All", thinking: "Searching…", copy: "Copy", share: "Share", copied: "Copied",
    helpful: "Helpful", notHelpful: "Not helpful", thanks: "Thanks for the feedback",
    sources: "Sources", results: "Results", select: "Select for export", ce: "C.E.",
    error: "Error", nothing: "Nothing to export yet", otherLang: "ภาษาไทย", exported: "Exported",
    lesson: "Lesson", facets: "Break-down", compare: "Compare cases", pickTwo: "Select 2-5 results first",
    fiscal_year: "Fiscal year", agency: "Agency", region: "Region", factor: "Factor", gov40: "Gov 4.0",
    pmqa: "PMQA 4.0", case: "Case", success_factors: "Success factors", results_f: "Results / evidence",
    recommendations: "Recommendations", obstacles: "Obstacles", people: "People and roles", similar: "Similar cases",
    programmes: "Programmes",
  },
};
const TH_MONTHS = ["มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
  "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม"];
const EN_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const state = { lang: localStorage.getItem("km-lang") || "th", turns: [] };
const $ = (id) => document.getElementById(id);
const t = (key) => I18N[state.lang][key] || key;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function safeHref(link) {  // only http(s) and our own paths: no javascript: URLs from crawled data
  return /^(https?:\/\/|\/)/i.test(link || "") ? link : "#";
}

function dateText(published, raw) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(published || "");
  if (!m) return raw || "";
  const [y, mo, d] = [+m[1], +m[2], +m[3]];
  if (state.lang === "th") {
    const be = raw || `${d} ${TH_MONTHS[mo - 1]} พ.ศ. ${y + 543}`;
    return `${be} (${t("ce")} ${published})`;
  }
  return `${d} ${EN_MONTHS[mo - 1]} ${y} (B.E. ${y + 543}${raw ? ": " + raw : ""})`;
}

function toast(msg) {
  const box = $("toast");
  box.textContent = msg; box.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { box.hidden = true; }, 2000);
}

function filters() {
  const f = {};
  for (const k of ["date_from", "date_to", "publisher", "province"]) {
    const v = $(k).value.trim();
    if (v) f[k] = v;
  }
  return f;
}

async function api(path, body) {
  const r = await fetch(path, { method: body ? "POST" : "GET",
    headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).detail || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

async function vote(turn, value, target, hit, button) {
  try {
    await api("/feedback", { query: turn.question, vote: value, target,
      doc_id: hit ? hit.doc_id : (turn.citations[0] || {}).doc_id || null,
      chunk_id: hit ? hit.chunk_id : (turn.citations[0] || {}).chunk_id ?? null,
      answer: target === "answer" ? turn.answer : null });
    button.classList.add("voted");
    toast(t("thanks"));
  } catch (e) { toast(`${t("error")}: ${e.message}`); }
}

function answerPlain(turn) {
  const lines = [turn.question, "", turn.answer, ""];
  for (const c of turn.citations) lines.push(`[${c.n}] ${c.title} ${absLink(c.link)}`);
  return lines.join("\n");
}
const absLink = (link) => (link && link.startsWith("/") ? location.origin + link : link || "");

async function copyText(text) {
  try { await navigator.clipboard.writeText(text); }
  catch (e) {  // no clipboard permission (e.g. plain http): the old way
    const ta = el("textarea"); ta.value = text; document.body.append(ta); ta.select();
    document.execCommand("copy"); ta.remove();
  }
  toast(t("copied"));
}

async function share(turn) {
  const url = `${location.origin}/?q=${encodeURIComponent(turn.question)}`;
  if (navigator.share) {
    try { await navigator.share({ title: "km-search", text: answerPlain(turn), url }); return; }
    catch (e) { /* cancelled or unsupported: copy instead */ }
  }
  copyText(`${answerPlain(turn)}\n${url}`);
}

function renderAnswer(turn) {
  const box = el("div", { class: "answer" + (turn.found ? "" : " none"), "data-testid": "answer" });
  const byN = Object.fromEntries(turn.citations.map((c) => [String(c.n), c]));
  for (const part of turn.answer.split(/(\[\d+\])/)) {
    const m = /^\[(\d+)\]$/.exec(part);
    const c = m && byN[m[1]];
    if (c) {
      box.append(el("a", { class: "chip", href: safeHref(c.link), target: "_blank", rel: "noopener noreferrer",
        title: c.title, "data-doc": c.doc_id, text: c.n }));
    } else {
      box.append(document.createTextNode(part));
    }
  }
  if (turn.citations.length) {
    const ol = el("ol", { class: "sources", "aria-label": t("sources") });
    for (const c of turn.citations) {
      const meta = [c.publisher, dateText(c.published, c.published_raw)].filter(Boolean).join(" · ");
      ol.append(el("li", { value: c.n }, el("a", { href: safeHref(c.link), target: "_blank",
        rel: "noopener noreferrer", "data-doc": c.doc_id, text: c.title }), document.createTextNode(` — ${meta}`)));
    }
    box.append(ol);
  }
  if (turn.note) box.append(el("div", { class: "meta", text: turn.note }));
  const acts = el("div", { class: "actions" },
    el("button", { type: "button", class: "copy", text: t("copy"), onclick: () => copyText(answerPlain(turn)) }),
    el("button", { type: "button", class: "share", text: t("share"), onclick: () => share(turn) }));
  acts.append(
    el("button", { type: "button", class: "up", "aria-label": t("helpful"), title: t("helpful"), text: t("helpful"),
      onclick: (e) => vote(turn, 1, "answer", null, e.currentTarget) }),
    el("button", { type: "button", class: "down", "aria-label": t("notHelpful"), title: t("notHelpful"), text: t("notHelpful"),
      onclick: (e) => vote(turn, -1, "answer", null, e.currentTarget) }));
  box.append(acts);
  return box;
}

function snippetNode(hit) {
  const p = el("p", { class: "snippet" });
  let pos = 0;
  for (const [a, b] of hit.highlights) {
    if (a < pos || b > hit.snippet.length) continue;
    p.append(document.createTextNode(hit.snippet.slice(pos, a)), el("mark", { text: hit.snippet.slice(a, b) }));
    pos = b;
  }
  p.append(document.createTextNode(hit.snippet.slice(pos)));
  return p;
}

const FACET_KEYS = ["province", "agency", "fiscal_year", "factor", "gov40", "region", "pmqa"];

function renderFacets(facets) {
  const box = el("div", { class: "facets", "data-testid": "facets" }, el("strong", { text: t("facets") }));
  for (const key of FACET_KEYS) {
    const vals = Object.entries((facets || {})[key] || {});
    if (!vals.length) continue;
    const group = el("div", { class: "facet", "data-facet": key }, el("span", { class: "fname", text: t(key === "province" ? "province" : key) + ": " }));
    for (const [v, n] of vals.sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      const label = key === "fiscal_year" ? (state.lang === "th" ? `พ.ศ. ${v}` : `FY ${v}`) : v;
      if (key === "province") {
        group.append(el("button", { type: "button", class: "fval", title: t("province"), text: `${label} (${n})`,
          onclick: () => { setProvince(v); } }));
      } else {
        group.append(el("span", { class: "fval", text: `${label} (${n})` }));
      }
    }
    box.append(group);
  }
  return box;
}

function setProvince(v) {
  const sel = $("province");
  if (![...sel.options].some((o) => o.value === v)) sel.append(el("option", { value: v, text: v }));
  sel.value = v;
  $("filters").open = true;
  toast(`${t("province")}: ${v}`);
}

function cite(item) {  // one extracted item, its source sentence as a tooltip
  const c = (item.citations || [])[0];
  return el("li", { title: c ? c.text : "", text: item.text });
}

async function showLesson(hit, holder) {
  if (holder.childElementCount) { holder.replaceChildren(); return; }
  try {
    const card = await (await api(`/lessons/${encodeURIComponent(hit.doc_id)}`)).json();
    const box = el("div", { class: "lesson", "data-testid": "lesson" }, el("div", { class: "case", text: `${t("case")}: ${card.case}` }));
    for (const [key, label] of [["programmes", "programmes"], ["success_factors", "success_factors"], ["results", "results_f"],
      ["recommendations", "recommendations"], ["obstacles", "obstacles"], ["people", "people"]]) {
      const items = card[key] || [];
      if (!items.length) continue;
      const ul = el("ul");
      for (const it of items.slice(0, key === "programmes" ? 12 : 6)) ul.append(cite(it));
      box.append(el("div", { class: "lfield", "data-field": key }, el("strong", { text: t(label) }), ul));
    }
    try {
      const sim = await (await api(`/lessons/${encodeURIComponent(hit.doc_id)}/similar?k=3`)).json();
      if (sim.length) {
        const ul = el("ul");
        for (const s of sim) ul.append(el("li", { text: `${s.case || s.title} (${(s.score || 0).toFixed(2)})` }));
        box.append(el("div", { class: "lfield" }, el("strong", { text: t("similar") }), ul));
      }
    } catch (e) { /* similar cases are optional */ }
    holder.replaceChildren(box);
  } catch (e) { toast(`${t("error")}: ${e.message}`); }
}

async function doCompare() {
  const picked = state.turns.flatMap((x) => (x.hits || []).filter((h) => h.selected));
  const refs = [...new Set(picked.map((h) => h.doc_id))];
  if (refs.length < 2 || refs.length > 5) { toast(t("pickTwo")); return; }
  try {
    const r = await api("/lessons/compare", { refs, format: "docx" });
    const a = $("download");
    a.href = URL.createObjectURL(await r.blob());
    a.download = "lessons-compare.docx";
    a.click();
    toast(t("exported"));
  } catch (e) { toast(`${t("error")}: ${e.message}`); }
}

function renderCard(turn, hit) {
  const meta = [hit.publisher, dateText(hit.published, hit.published_raw),
    (hit.provinces || []).join(", ")].filter(Boolean).join(" · ");
  const pick = el("input", { type: "checkbox", class: "pick", "aria-label": t("select"),
    onchange: (e) => { hit.selected = e.target.checked; } });
  pick.checked = !!hit.selected;
  const lessonBox = el("div", { class: "lesson-holder" });
  return el("article", { class: "card", "data-doc": hit.doc_id },
    el("h3", {}, el("a", { href: safeHref(hit.link), target: "_blank", rel: "noopener noreferrer", text: hit.title })),
    el("div", { class: "meta", text: meta }),
    snippetNode(hit),
    el("div", { class: "row" }, el("label", {}, pick, document.createTextNode(" " + t("select"))),
      el("button", { type: "button", class: "up", title: t("helpful"), text: t("helpful"),
        onclick: (e) => vote(turn, 1, "result", hit, e.currentTarget) }),
      el("button", { type: "button", class: "down", title: t("notHelpful"), text: t("notHelpful"),
        onclick: (e) => vote(turn, -1, "result", hit, e.currentTarget) }),
      el("button", { type: "button", class: "show-lesson", text: t("lesson"),
        onclick: () => showLesson(hit, lessonBox) })),
    lessonBox);
}

function renderTurn(turn) {
  const div = el("section", { class: "turn" }, el("div", { class: "user", text: turn.question }));
  if (turn.pending) div.append(el("div", { class: "answer pending", text: t("thinking") }));
  else if (turn.error) div.append(el("div", { class: "answer none", text: `${t("error")}: ${turn.error}` }));
  else {
    div.append(renderAnswer(turn));
    if (turn.hits.length) {
      const cards = el("div", { class: "cards", "aria-label": t("results") });
      for (const h of turn.hits) cards.append(renderCard(turn, h));
      if (turn.facets && Object.keys(turn.facets).length) div.append(renderFacets(turn.facets));
      div.append(cards);
    }
  }
  return div;
}

function render() {
  const log = $("log");
  log.replaceChildren(...state.turns.map(renderTurn));
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll("[data-i18n-ph]")) n.placeholder = t(n.dataset.i18nPh);
  $("lang").textContent = t("otherLang");
  for (const id of ["publisher", "province"]) $(id).options[0].textContent = t("all");
  render();
}

async function ask(question) {
  question = question.trim();
  if (!question) return;
  const turn = { question, pending: true, answer: "", citations: [], hits: [] };
  state.turns.push(turn);
  render();
  window.scrollTo(0, document.body.scrollHeight);
  const history = state.turns.slice(0, -1).flatMap((x) => [{ role: "user", content: x.question },
    { role: "assistant", content: x.answer || "" }]).filter((x) => x.content).slice(-12);
  try {
    const r = await api("/chat", { question, history, k: 5, filters: filters() });
    Object.assign(turn, await r.json());
  } catch (e) { turn.error = e.message; }
  turn.pending = false;
  render();
  window.scrollTo(0, document.body.scrollHeight);
}

async function doExport(format) {
  const done = state.turns.filter((x) => !x.pending && !x.error);
  const picked = done.flatMap((x) => x.hits.filter((h) => h.selected));
  if (!done.length) { toast(t("nothing")); return; }
  const body = { format, title: "km-search",
    conversation: done.map((x) => ({ question: x.question, answer: x.answer, citations: x.citations })),
    results: picked.map((h) => ({ title: h.title, link: h.link, publisher: h.publisher,
      published: h.published, published_raw: h.published_raw, snippet: h.snippet })) };
  try {
    const r = await api("/export", body);
    const name = (/filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "") || [])[1] || `km-search.${format}`;
    const a = $("download");
    a.href = URL.createObjectURL(await r.blob());
    a.download = name;
    a.click();
    toast(t("exported"));
  } catch (e) { toast(`${t("error")}: ${e.message}`); }
}

async function loadFilters() {
  try {
    const f = await (await api("/filters")).json();
    for (const [id, values] of [["publisher", f.publishers], ["province", f.provinces]]) {
      for (const v of values) $(id).append(el("option", { value: v, text: v }));
    }
  } catch (e) { /* no index yet: filters stay empty */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", (e) => { e.preventDefault(); const q = $("q").value; $("q").value = ""; ask(q); });
  $("q").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("ask").requestSubmit(); }
  });
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "th" ? "en" : "th";
    localStorage.setItem("km-lang", state.lang);
    applyLang();
  });
  $("clear").addEventListener("click", () => { for (const k of ["date_from", "date_to", "publisher", "province"]) $(k).value = ""; });
  $("export-md").addEventListener("click", () => doExport("md"));
  $("export-docx").addEventListener("click", () => doExport("docx"));
  $("compare").addEventListener("click", doCompare);
  applyLang();
  loadFilters();
  const q = new URLSearchParams(location.search).get("q");
  if (q) ask(q);
  $("q").focus();
});
