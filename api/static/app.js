// km-search chat page. No build step. All crawled and user text is inserted with
// textContent / createTextNode (never as HTML), so a crawled page cannot inject markup.
"use strict";

const I18N = {
  th: {
    title: "ค้นหาความรู้ภาครัฐ", filters: "ตัวกรอง", dateFrom: "ตั้งแต่วันที่", dateTo: "ถึงวันที่",
    publisher: "หน่วยงาน", province: "จังหวัด", clear: "ล้างตัวกรอง", export: "ส่งออก",
    send: "ถาม", stop: "หยุด", question: "คำถาม", placeholder: "พิมพ์คำถาม แล้วกด Enter (Shift+Enter ขึ้นบรรทัดใหม่)",
    all: "ทั้งหมด", thinking: "กำลังค้นหาและเรียบเรียงคำตอบ…", seconds: "วินาที", copy: "คัดลอก", share: "แชร์",
    copied: "คัดลอกแล้ว", linkCopied: "คัดลอกลิงก์แชร์แล้ว",
    helpful: "มีประโยชน์", notHelpful: "ไม่มีประโยชน์", thanks: "ขอบคุณสำหรับความคิดเห็น",
    sources: "แหล่งอ้างอิง", source: "แหล่งอ้างอิงที่", results: "ผลการค้นหา", select: "เลือก",
    selectFor: "เลือกเพื่อส่งออก", ce: "ค.ศ.", be: "พ.ศ.", original: "หน้าต้นฉบับ",
    error: "เกิดข้อผิดพลาด", nothing: "ยังไม่มีอะไรให้ส่งออก", otherLang: "English", exported: "ส่งออกแล้ว",
    lesson: "บทเรียน", facets: "จำแนกผลลัพธ์", compare: "เปรียบเทียบกรณี", pickTwo: "เลือก 2-5 ผลลัพธ์ก่อน",
    fiscal_year: "ปีงบประมาณ", agency: "หน่วยงาน", region: "ภาค", factor: "ปัจจัย", gov40: "ระบบราชการ 4.0",
    pmqa: "PMQA 4.0", case: "กรณี", success_factors: "ปัจจัยความสำเร็จ", results_f: "ผลลัพธ์/หลักฐาน",
    recommendations: "ข้อเสนอแนะ", obstacles: "ปัญหาอุปสรรค", people: "บุคคลและบทบาท", similar: "กรณีคล้ายกัน",
    programmes: "โครงการ/แนวทาง", menu: "ประวัติ", history: "ประวัติการสนทนา", newChat: "+ สนทนาใหม่", rename: "เปลี่ยนชื่อ",
    del: "ลบ", untitled: "สนทนาใหม่", save: "บันทึก", retry: "ลองอีกครั้ง", searched: "ค้นหา",
    welcome: "ถามอะไรได้บ้าง", tryAsk: "ลองถาม", refineHint: "กดค่าที่ขีดเส้นใต้เพื่อกรองผลลัพธ์",
    filterBy: "กรองด้วย", remove: "ลบตัวกรอง", understood: "อ่านจากคำถาม", activeFilters: "ตัวกรองที่ใช้อยู่",
    datePh: "วว/ดด/ปปปป (พ.ศ.)", badDate: "วันที่ไม่ถูกต้อง ใช้ วว/ดด/ปปปป เช่น 1/10/2564",
    errNetwork: "เชื่อมต่อเซิร์ฟเวอร์ไม่ได้ ตรวจสอบการเชื่อมต่อแล้วลองอีกครั้ง",
    errBusy: "มีคำขอมากเกินไป กรุณารอสักครู่แล้วลองอีกครั้ง",
    errIndex: "ระบบค้นหายังไม่พร้อมใช้งาน (ยังไม่มีดัชนีหรือกำลังโหลด) กรุณาลองใหม่ภายหลัง",
    errServer: "เซิร์ฟเวอร์ขัดข้องชั่วคราว คำถามของคุณยังอยู่ กดลองอีกครั้งได้",
    errInput: "ส่งคำถามนี้ไม่ได้", stopped: "หยุดการค้นหาแล้ว",
    refused: "คลังความรู้นี้ยังไม่มีข้อมูลที่ตอบคำถามนี้ได้", covers: "คลังนี้มี",
    docsFrom: (n, p) => `เอกสาร ${n} เรื่อง จาก ${p} หน่วยงาน`, dated: "ช่วงเวลา", provincesL: "จังหวัดที่กล่าวถึง",
    publishersL: "หน่วยงานที่เผยแพร่", relatedQ: "ลองถามเรื่องเหล่านี้แทน", turnN: (n) => `คำถามที่ ${n}`,
  },
  en: {
    title: "Public-sector knowledge search", filters: "Filters", dateFrom: "From", dateTo: "To",
    publisher: "Agency", province: "Province", clear: "Clear filters", export: "Export",
    send: "Ask", stop: "Stop", question: "Question", placeholder: "Type a question and press Enter (Shift+Enter for a new line)",
    all: "All", thinking: "Searching and composing the answer…", seconds: "s", copy: "Copy", share: "Share",
    copied: "Copied", linkCopied: "Share link copied",
    helpful: "Helpful", notHelpful: "Not helpful", thanks: "Thanks for the feedback",
    sources: "Sources", source: "Source", results: "Results", select: "Select",
    selectFor: "Select for export", ce: "C.E.", be: "B.E.", original: "Original page",
    error: "Error", nothing: "Nothing to export yet", otherLang: "ภาษาไทย", exported: "Exported",
    lesson: "Lesson", facets: "Break-down", compare: "Compare cases", pickTwo: "Select 2-5 results first",
    fiscal_year: "Fiscal year", agency: "Agency", region: "Region", factor: "Factor", gov40: "Gov 4.0",
    pmqa: "PMQA 4.0", case: "Case", success_factors: "Success factors", results_f: "Results / evidence",
    recommendations: "Recommendations", obstacles: "Obstacles", people: "People and roles", similar: "Similar cases",
    programmes: "Programmes", menu: "History", history: "Conversations", newChat: "+ New chat", rename: "Rename",
    del: "Delete", untitled: "New chat", save: "Save", retry: "Try again", searched: "Searched",
    welcome: "What you can ask", tryAsk: "Try asking", refineHint: "Underlined values filter the results",
    filterBy: "Filter by", remove: "Remove filter", understood: "read from the question", activeFilters: "Active filters",
    datePh: "dd/mm/yyyy (B.E. or C.E.)", badDate: "Invalid date: use dd/mm/yyyy, e.g. 1/10/2564",
    errNetwork: "Cannot reach the server. Check the connection and try again.",
    errBusy: "Too many requests. Please wait a moment and try again.",
    errIndex: "Search is not available yet (no index, or it is loading). Please try again later.",
    errServer: "The server had a temporary problem. Your question is kept; press Try again.",
    errInput: "This question could not be sent", stopped: "Search stopped",
    refused: "The collection has nothing that answers this question", covers: "The collection holds",
    docsFrom: (n, p) => `${n} documents from ${p} agencies`, dated: "dated", provincesL: "Provinces covered",
    publishersL: "Publishers", relatedQ: "Try one of these instead", turnN: (n) => `question ${n}`,
  },
};
const TH_MONTHS = ["มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
  "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม"];
const TH_MON = ["ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค."];
const EN_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
// facet values the server sends as codes or Thai-only labels
const VALUE_LABELS = {
  factor: {
    collaboration: ["การสานพลัง/การมีส่วนร่วม", "Collaboration and participation"], innovation: ["นวัตกรรม", "Innovation"],
    digital: ["ดิจิทัล/เทคโนโลยี", "Digital and technology"], leadership: ["ภาวะผู้นำของผู้บริหาร", "Leadership"],
    citizen_needs: ["ยึดความต้องการของประชาชน", "Citizens' needs first"], clear_goals: ["เป้าหมาย/นโยบายชัดเจน", "Clear goals and policy"],
    people: ["การพัฒนาคนและทีม", "People and teams"], monitoring: ["การติดตามผลและข้อมูล", "Monitoring and data"],
  },
  gov40: { "เปิดกว้างและเชื่อมโยง": [null, "Open and connected"], "ยึดประชาชนเป็นศูนย์กลาง": [null, "Citizen-centric"],
    "สมรรถนะสูงและทันสมัย": [null, "Smart and high-performing"] },
  region: { "ภาคเหนือ": [null, "North"], "ภาคตะวันออกเฉียงเหนือ": [null, "Northeast"], "ภาคกลาง": [null, "Central"],
    "ภาคตะวันออก": [null, "East"], "ภาคตะวันตก": [null, "West"], "ภาคใต้": [null, "South"] },
};
const PMQA_EN = ["", "Leadership", "Strategic planning", "Customer focus", "Measurement, analysis and KM",
  "Workforce focus", "Operation focus", "Results"];
const FACET_KEYS = ["province", "fiscal_year", "agency", "region", "factor", "pmqa", "gov40"];
const REFINE = new Set(["province", "fiscal_year"]);  // facets that map onto a search filter
const FILTER_KEYS = ["date_from", "date_to", "publisher", "province"];
const STORE = "km-conversations";

const state = { lang: localStorage.getItem("km-lang") || "th", convs: [], cur: null, pending: null,
  overview: null, examples: {}, historyOk: true };
const lessonCache = new Map();
const $ = (id) => document.getElementById(id);
const t = (key, ...a) => { const v = I18N[state.lang][key]; return typeof v === "function" ? v(...a) : v ?? key; };
const conv = () => state.convs.find((c) => c.id === state.cur);

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
  return /^(https?:\/\/|\/(?!\/))/i.test(link || "") ? link : "#";
}
const isWeb = (url) => /^https?:\/\//i.test(url || "");

// -- dates: shown and typed in Thai B.E.; the API speaks ISO C.E. ----------------------------
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

function shortDate(iso) {  // 2021-10-01 -> "1 ต.ค. 2564" / "1 Oct 2021 (B.E. 2564)"
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
  if (!m) return iso || "";
  const [y, mo, d] = [+m[1], +m[2], +m[3]];
  return state.lang === "th" ? `${d} ${TH_MON[mo - 1]} ${y + 543}` : `${d} ${EN_MONTHS[mo - 1]} ${y} (B.E. ${y + 543})`;
}

function parseDate(text) {  // "1/10/2564", "๑/๑๐/๒๕๖๔", "2021-10-01" -> "2021-10-01"; "" -> ""; bad -> null
  const s = (text || "").trim().replace(/[๐-๙]/g, (c) => String(c.charCodeAt(0) - 0x0e50));
  if (!s) return "";
  let y, mo, d, m;
  if ((m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(s))) [y, mo, d] = [+m[1], +m[2], +m[3]];
  else if ((m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(s))) [d, mo, y] = [+m[1], +m[2], +m[3]];
  else return null;
  if (y >= 2400) y -= 543;  // a Thai Buddhist-era year
  const dt = new Date(Date.UTC(y, mo - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d) return null;
  return `${y}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

function toBE(iso) {  // ISO -> "1/10/2564", what the date field shows
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
  return m ? `${+m[3]}/${+m[2]}/${+m[1] + 543}` : "";
}

function toast(msg) {
  const box = $("toast");
  box.textContent = msg; box.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { box.hidden = true; }, 2500);
}

// -- conversations in localStorage -------------------------------------------------------------
function load() {
  try { state.convs = JSON.parse(localStorage.getItem(STORE) || "[]").filter((c) => c && Array.isArray(c.turns)); }
  catch (e) { state.convs = []; }
}

function slim(turn) {  // what is worth keeping of a turn: passage texts are dropped (snippets stay)
  const { pending, ctrl, started, ...rest } = turn;
  return { ...rest, hits: (turn.hits || []).map(({ text, ...h }) => h) };
}

function save() {
  const data = state.convs.filter((c) => c.turns.length).map((c) => ({ ...c, turns: c.turns.map(slim) }));
  for (let keep = data.length; keep >= 0; keep--) {  // storage full: drop the oldest conversations
    try { localStorage.setItem(STORE, JSON.stringify(data.slice(0, keep))); return; }
    catch (e) { /* quota exceeded: try with fewer */ }
  }
}

function newConv(activate = true) {
  const c = { id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, title: "",
    created: new Date().toISOString(), turns: [], filters: {}, ignore: [] };
  state.convs.unshift(c);
  if (activate) state.cur = c.id;
  return c;
}

function switchConv(id) {
  if (state.pending) stopPending();
  state.cur = id;
  showFilters();
  renderAll();
  closeMenu();
}

function renderHistory() {
  const ul = $("history");
  ul.replaceChildren();
  for (const c of state.convs.filter((x) => x.turns.length || x.id === state.cur)) {
    const name = c.title || (c.turns[0] || {}).question || t("untitled");
    const li = el("li", { class: c.id === state.cur ? "current" : "", "data-conv": c.id });
    if (c.editing) {
      const inp = el("input", { type: "text", class: "rename-input", value: name, "aria-label": t("rename"), maxlength: 120 });
      const done = () => { c.title = inp.value.trim(); c.editing = false; save(); renderHistory(); };
      inp.addEventListener("keydown", (e) => { if (e.key === "Enter") done(); if (e.key === "Escape") { c.editing = false; renderHistory(); } });
      li.append(inp, el("button", { type: "button", class: "save", text: t("save"), onclick: done }));
      ul.append(li);
      setTimeout(() => inp.focus(), 0);
      continue;
    }
    li.append(el("button", { type: "button", class: "open", "aria-current": c.id === state.cur ? "true" : null,
      text: name, onclick: () => switchConv(c.id) }));
    if (c.turns.length) {
      li.append(el("button", { type: "button", class: "rename", "aria-label": `${t("rename")}: ${name}`, text: "✎",
        onclick: () => { c.editing = true; renderHistory(); } }),
      el("button", { type: "button", class: "delete", "aria-label": `${t("del")}: ${name}`, text: "×",
        onclick: () => deleteConv(c.id) }));
    }
    ul.append(li);
  }
}

function deleteConv(id) {
  state.convs = state.convs.filter((c) => c.id !== id);
  if (state.cur === id) { const next = state.convs.find((c) => c.turns.length); if (next) state.cur = next.id; else newConv(); }
  save(); showFilters(); renderAll();
}

function shareUrl(upto) {  // questions and filters only: the answers are recomputed on open
  const c = conv();
  const p = new URLSearchParams();
  for (const x of c.turns.slice(0, upto)) p.append("q", x.question);
  for (const k of FILTER_KEYS) if (c.filters[k]) p.set(k, c.filters[k]);
  return `${location.origin}/?${p}`;
}

// -- filters, chips -------------------------------------------------------------------------------
function readFilters() {  // the panel into the conversation; false when a date is invalid
  const c = conv();
  let ok = true;
  for (const k of FILTER_KEYS) {
    const raw = $(k).value;
    const v = k.startsWith("date") ? parseDate(raw) : raw.trim();
    if (v === null) { ok = false; $(k).setAttribute("aria-invalid", "true"); $(`${k}-hint`).textContent = t("badDate"); continue; }
    if (k.startsWith("date")) { $(k).removeAttribute("aria-invalid"); $(`${k}-hint`).textContent = v ? shortDate(v) : ""; }
    if (v) c.filters[k] = v; else delete c.filters[k];
  }
  renderChips();
  return ok;
}

function showFilters() {  // the conversation into the panel
  const f = conv().filters;
  for (const k of FILTER_KEYS) {
    if (k.startsWith("date")) {
      $(k).value = toBE(f[k]); $(`${k}-hint`).textContent = f[k] ? shortDate(f[k]) : ""; $(k).removeAttribute("aria-invalid");
    } else {
      ensureOption($(k), f[k]);
      $(k).value = f[k] || "";
    }
  }
  renderChips();
}

function ensureOption(sel, v) {
  if (v && ![...sel.options].some((o) => o.value === v)) sel.append(el("option", { value: v, text: v }));
}

function renderChips() {
  const c = conv();
  const box = $("chips");
  box.replaceChildren();
  const labels = { date_from: t("dateFrom"), date_to: t("dateTo"), publisher: t("publisher"), province: t("province") };
  const chips = [];
  for (const k of FILTER_KEYS) {
    if (!c.filters[k]) continue;
    const v = k.startsWith("date") ? shortDate(c.filters[k]) : c.filters[k];
    chips.push([`${labels[k]}: ${v}`, () => { delete c.filters[k]; showFilters(); rerunLast(); }, "filter"]);
  }
  const last = [...c.turns].reverse().find((x) => !x.pending && !x.error);
  for (const u of (last && last.understood) || []) {
    const key = `${u.kind}:${u.value}`;
    if (c.ignore.includes(key)) continue;
    chips.push([u.label || `${u.kind}: ${u.value}`, () => { c.ignore.push(key); rerunLast(); }, "understood"]);
  }
  $("filter-count").textContent = Object.keys(c.filters).length ? `(${Object.keys(c.filters).length})` : "";
  box.hidden = !chips.length;
  if (!chips.length) return;
  box.append(el("span", { class: "chips-label", text: t("activeFilters") + ":" }));
  for (const [text, drop, kind] of chips) {
    box.append(el("span", { class: `fchip ${kind}`, "data-kind": kind }, el("span", { text: kind === "understood" ? `${text} (${t("understood")})` : text }),
      el("button", { type: "button", class: "x", "aria-label": `${t("remove")} ${text}`, text: "×", onclick: drop })));
  }
}

// -- talking to the API ---------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) { super(detail || String(status)); this.status = status; this.detail = detail; }
}

async function api(path, body, signal) {
  const r = await fetch(path, { method: body ? "POST" : "GET", signal,
    headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) {
    let detail = "", errors = [];
    try { const j = await r.json(); detail = j.detail || ""; errors = j.errors || []; } catch (e) { /* not JSON */ }
    const err = new ApiError(r.status, typeof detail === "string" ? detail : "");
    err.errors = errors;
    throw err;
  }
  return r;
}

function errorOf(e) {  // what a person can act on (never a raw "Failed to fetch"), kept as a key
  if (e.name === "AbortError") return { key: "stopped" };  // so it follows the language toggle
  if (!(e instanceof ApiError)) return { key: "errNetwork" };
  if (e.status === 429) return { key: "errBusy" };
  if (e.status === 503) return { key: "errIndex" };
  if (e.status >= 500) return { key: "errServer" };
  return { key: "errInput", detail: e.detail };
}
const errorText = (e) => { const x = errorOf(e); return `${t(x.key)}${x.detail ? ": " + x.detail : ""}`; };
const shownError = (x) => `${t(x.key)}${x.detail ? ": " + x.detail : ""}`;

async function vote(turn, value, target, hit) {
  try {
    await api("/feedback", { query: turn.question, vote: value, target,
      doc_id: hit ? hit.doc_id : (turn.citations[0] || {}).doc_id || null,
      chunk_id: hit ? hit.chunk_id : (turn.citations[0] || {}).chunk_id ?? null,
      answer: target === "answer" ? turn.answer : null });
    (hit || turn).vote = value;
    save(); renderTurnInPlace(turn);
    toast(t("thanks"));
  } catch (e) { toast(errorText(e)); }
}

function answerPlain(turn) {
  const lines = [turn.question, "", turn.answer, ""];
  for (const c of turn.citations) lines.push(`[${c.n}] ${c.title} ${absLink(c.link)}`);
  return lines.join("\n");
}
const absLink = (link) => (link && link.startsWith("/") ? location.origin + link : link || "");

async function copyText(text, msg) {
  try { await navigator.clipboard.writeText(text); }
  catch (e) {  // no clipboard permission (e.g. plain http): the old way
    const ta = el("textarea"); ta.value = text; document.body.append(ta); ta.select();
    document.execCommand("copy"); ta.remove();
  }
  toast(msg || t("copied"));
}

async function shareLink(url, turn) {  // the phone's share sheet where there is one, else the clipboard
  if (navigator.share && window.matchMedia("(pointer: coarse)").matches) {
    try { await navigator.share({ title: "km-search", text: turn.question, url }); return; }
    catch (e) { if (e.name === "AbortError") return; /* unsupported: copy instead */ }
  }
  copyText(url, t("linkCopied"));
}

// -- rendering ---------------------------------------------------------------------------------------
function citedText(text, from, to) {  // the sentences a chip stands for: what it previews
  const s = text.slice(from, to).replace(/\s*\[\d+\]\s*/g, " ").trim();
  return s.length > 400 ? `…${s.slice(-400)}` : s;
}

function renderAnswer(turn, idx) {
  const box = el("div", { class: "answer", "data-testid": "answer" });
  const byN = Object.fromEntries(turn.citations.map((c) => [String(c.n), c]));
  const text = turn.answer || "";
  const marks = [...text.matchAll(/\[(\d+)\]/g)];
  let pos = 0, runFrom = 0;
  marks.forEach((m, i) => {
    box.append(document.createTextNode(text.slice(pos, m.index)));
    pos = m.index + m[0].length;
    const c = byN[m[1]];
    const next = marks[i + 1];
    // a run of sentences from one source gets one chip, after the run
    if (!c || (next && next[1] === m[1])) return;
    const tipId = `tip-${idx}-${i}`;
    const meta = [c.publisher, dateText(c.published, c.published_raw)].filter(Boolean).join(" · ");
    box.append(el("span", { class: "cite" },
      el("a", { class: "chip", href: safeHref(c.link), target: "_blank", rel: "noopener noreferrer",
        "data-doc": c.doc_id, "aria-label": `${t("source")} ${c.n}: ${c.title}`, "aria-describedby": tipId, text: c.n }),
      el("span", { class: "tip", role: "tooltip", id: tipId },
        el("strong", { text: c.title }), el("span", { class: "meta", text: meta }),
        el("q", { text: citedText(text, runFrom, m.index) }))));
    runFrom = pos;
  });
  box.append(document.createTextNode(text.slice(pos).replace(/\s+$/, "")));
  if (turn.citations.length) {
    const ol = el("ol", { class: "sources", "aria-label": t("sources") });
    for (const c of turn.citations) {
      const meta = [c.publisher, dateText(c.published, c.published_raw)].filter(Boolean).join(" · ");
      ol.append(el("li", { value: c.n }, el("a", { href: safeHref(c.link), target: "_blank",
        rel: "noopener noreferrer", "data-doc": c.doc_id, text: c.title }), document.createTextNode(` — ${meta} `),
      isWeb(c.url) ? el("a", { class: "orig", href: c.url, target: "_blank", rel: "noopener noreferrer",
        "aria-label": `${t("original")}: ${c.title}`, text: `${t("original")} ↗` }) : null));
    }
    box.append(ol);
  }
  if (turn.note) box.append(el("div", { class: "meta", text: turn.note }));
  const up = el("button", { type: "button", class: "up" + (turn.vote === 1 ? " voted" : ""), "aria-pressed": String(turn.vote === 1),
    text: t("helpful"), onclick: () => vote(turn, 1, "answer", null) });
  const down = el("button", { type: "button", class: "down" + (turn.vote === -1 ? " voted" : ""), "aria-pressed": String(turn.vote === -1),
    text: t("notHelpful"), onclick: () => vote(turn, -1, "answer", null) });
  const shareBtn = el("button", { type: "button", class: "share", text: t("share"), "data-url": shareUrl(idx + 1),
    onclick: (e) => shareLink(e.currentTarget.dataset.url, turn) });
  box.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "copy", text: t("copy"), onclick: () => copyText(answerPlain(turn)) }),
    shareBtn, up, down));
  return box;
}

function collectionLine() {  // "The collection holds 5 documents from 4 agencies, dated ..., provinces ..."
  const o = state.overview;
  if (!o) return null;
  const c = o.collection || {};
  const p = el("div", { class: "covers" });
  p.append(el("p", { text: `${t("covers")} ${t("docsFrom", c.documents ?? o.documents, (c.publishers || []).length)}`
    + (c.date_min ? ` · ${t("dated")} ${shortDate(c.date_min)} – ${shortDate(c.date_max)}` : "") }));
  const dl = el("dl");
  if ((c.publishers || []).length) dl.append(el("dt", { text: t("publishersL") }), el("dd", { text: c.publishers.slice(0, 6).map((x) => x.name).join(", ") }));
  if ((c.provinces || []).length) dl.append(el("dt", { text: t("provincesL") }), el("dd", { text: c.provinces.map((x) => x.name).join(", ") }));
  p.append(dl);
  return p;
}

function exampleList(related) {
  let qs = state.examples[state.lang] || [];
  if (related) {  // rank by shared character pairs with the refused question
    const grams = (s) => new Set([...s].map((ch, i) => s.slice(i, i + 2)));
    const g = grams(related);
    qs = [...qs].map((q, i) => [q, [...grams(q)].filter((x) => g.has(x)).length, -i]).sort((a, b) => b[1] - a[1] || b[2] - a[2])
      .map((x) => x[0]).slice(0, 4);
  }
  const ul = el("ul", { class: "examples" });
  for (const q of qs) ul.append(el("li", {}, el("button", { type: "button", class: "example", text: q, onclick: () => ask(q) })));
  return ul;
}

function renderWelcome() {
  return el("section", { class: "welcome", "aria-labelledby": "welcome-h" },
    el("h2", { id: "welcome-h", text: t("welcome") }), collectionLine(),
    el("p", { class: "try", text: t("tryAsk") + ":" }), exampleList());
}

function renderRefusal(turn) {
  return el("div", { class: "answer none refusal", "data-testid": "answer" },
    el("p", { class: "refused", text: t("refused") }),
    el("p", { class: "try", text: t("relatedQ") + ":" }), exampleList(turn.question), collectionLine());
}

function snippetNode(hit) {
  const p = el("p", { class: "snippet" });
  let pos = 0;
  for (const [a, b] of hit.highlights || []) {
    if (a < pos || b > hit.snippet.length) continue;
    p.append(document.createTextNode(hit.snippet.slice(pos, a)), el("mark", { text: hit.snippet.slice(a, b) }));
    pos = b;
  }
  p.append(document.createTextNode(hit.snippet.slice(pos)));
  return p;
}

function valueLabel(key, v) {
  if (key === "fiscal_year") return state.lang === "th" ? `ปีงบ ${v}` : `FY ${v} (B.E.)`;
  if (key === "pmqa" && state.lang === "en") { const m = /หมวด\s*(\d)/.exec(v); if (m) return `Category ${m[1]} ${PMQA_EN[+m[1]]}`; }
  const pair = (VALUE_LABELS[key] || {})[v];
  if (pair) return pair[state.lang === "th" ? 0 : 1] || v;
  return v;
}

function refine(turn, key, v) {  // a facet value becomes a filter and the search runs again
  const c = conv();
  if (key === "province") c.filters.province = v;
  if (key === "fiscal_year") {  // Thai fiscal year FY(B.E.) runs 1 Oct (year-1) to 30 Sep
    const ce = +v - 543;
    c.filters.date_from = `${ce - 1}-10-01`; c.filters.date_to = `${ce}-09-30`;
  }
  showFilters();
  rerun(turn);
}

function renderFacets(turn) {
  const facets = turn.facets || {};
  const box = el("details", { class: "facets", "data-testid": "facets" },
    el("summary", { text: t("facets") }), el("p", { class: "hint", text: t("refineHint") }));
  if (turn.facetsOpen ?? !window.matchMedia("(max-width: 640px)").matches) box.open = true;
  box.addEventListener("toggle", () => { turn.facetsOpen = box.open; });
  for (const key of FACET_KEYS) {
    const vals = Object.entries(facets[key] || {});
    if (!vals.length) continue;
    const group = el("div", { class: "facet", "data-facet": key }, el("span", { class: "fname", text: t(key) + ": " }));
    for (const [v, n] of vals.sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      const label = `${valueLabel(key, v)} (${n})`;
      group.append(REFINE.has(key)
        ? el("button", { type: "button", class: "fval refine", "data-value": v, "aria-label": `${t("filterBy")} ${t(key)}: ${label}`,
          text: label, onclick: () => refine(turn, key, v) })
        : el("span", { class: "fval", text: label }));
    }
    box.append(group);
  }
  return box;
}

function cite(item) {  // one extracted item, its source sentence as a tooltip
  const c = (item.citations || [])[0];
  return el("li", { title: c ? c.text : "", text: item.text });
}

function lessonNode(card, sim) {
  const box = el("div", { class: "lesson", "data-testid": "lesson" }, el("div", { class: "case", text: `${t("case")}: ${card.case}` }));
  for (const [key, label] of [["programmes", "programmes"], ["success_factors", "success_factors"], ["results", "results_f"],
    ["recommendations", "recommendations"], ["obstacles", "obstacles"], ["people", "people"]]) {
    const items = card[key] || [];
    if (!items.length) continue;
    const ul = el("ul");
    for (const it of items.slice(0, key === "programmes" ? 12 : 6)) ul.append(cite(it));
    box.append(el("div", { class: "lfield", "data-field": key }, el("strong", { text: t(label) }), ul));
  }
  if (sim && sim.length) {
    const ul = el("ul");
    for (const s of sim) ul.append(el("li", { text: `${s.case || s.title} (${(s.score || 0).toFixed(2)})` }));
    box.append(el("div", { class: "lfield" }, el("strong", { text: t("similar") }), ul));
  }
  return box;
}

async function fillLesson(hit, holder) {
  try {
    if (!lessonCache.has(hit.doc_id)) {
      const card = await (await api(`/lessons/${encodeURIComponent(hit.doc_id)}`)).json();
      let sim = [];
      try { sim = await (await api(`/lessons/${encodeURIComponent(hit.doc_id)}/similar?k=3`)).json(); }
      catch (e) { /* similar cases are optional */ }
      lessonCache.set(hit.doc_id, [card, sim]);
    }
    if (hit.open) holder.replaceChildren(lessonNode(...lessonCache.get(hit.doc_id)));
  } catch (e) { hit.open = false; toast(errorText(e)); }
}

function toggleLesson(turn, hit, holder, button) {
  hit.open = !hit.open;
  button.setAttribute("aria-expanded", String(hit.open));
  save();
  if (hit.open) fillLesson(hit, holder); else holder.replaceChildren();
}

async function doCompare() {
  const refs = selectedDocs();
  if (refs.length < 2 || refs.length > 5) { toast(t("pickTwo")); return; }
  try {
    const r = await api("/lessons/compare", { refs, format: "docx" });
    download(await r.blob(), "lessons-compare.docx");
  } catch (e) { toast(errorText(e)); }
}

function download(blob, name) {
  const a = $("download");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  toast(t("exported"));
}

const selectedDocs = () => [...new Set(conv().turns.flatMap((x) => (x.hits || []).filter((h) => h.selected)).map((h) => h.doc_id))];

function updateBar() {  // Export needs an answer; Compare needs 2-5 selected cases
  const done = conv().turns.some((x) => !x.pending && !x.error && x.found);
  $("export-md").disabled = $("export-docx").disabled = !done;
  const n = selectedDocs().length;
  $("compare").disabled = n < 2 || n > 5;
}

function renderCard(turn, hit, idx) {
  const meta = [hit.publisher, dateText(hit.published, hit.published_raw),
    (hit.provinces || []).join(", ")].filter(Boolean).join(" · ");
  const pick = el("input", { type: "checkbox", class: "pick", "aria-label": `${t("selectFor")}: ${hit.title} (${t("turnN", idx + 1)}, #${hit.rank})`,
    onchange: (e) => { hit.selected = e.target.checked; save(); updateBar(); } });
  pick.checked = !!hit.selected;
  const lessonBox = el("div", { class: "lesson-holder" });
  const lessonBtn = el("button", { type: "button", class: "show-lesson", "aria-expanded": String(!!hit.open), text: t("lesson") });
  lessonBtn.addEventListener("click", () => toggleLesson(turn, hit, lessonBox, lessonBtn));
  if (hit.open) fillLesson(hit, lessonBox);
  return el("article", { class: "card", "data-doc": hit.doc_id },
    el("h3", {}, el("a", { href: safeHref(hit.link), target: "_blank", rel: "noopener noreferrer", text: hit.title })),
    el("div", { class: "meta", text: meta }),
    snippetNode(hit),
    el("div", { class: "row" }, el("label", { class: "pickl" }, pick, el("span", { text: t("select") })),
      el("button", { type: "button", class: "up" + (hit.vote === 1 ? " voted" : ""), "aria-pressed": String(hit.vote === 1),
        text: t("helpful"), onclick: () => vote(turn, 1, "result", hit) }),
      el("button", { type: "button", class: "down" + (hit.vote === -1 ? " voted" : ""), "aria-pressed": String(hit.vote === -1),
        text: t("notHelpful"), onclick: () => vote(turn, -1, "result", hit) }),
      lessonBtn,
      isWeb(hit.url) ? el("a", { class: "orig", href: hit.url, target: "_blank", rel: "noopener noreferrer",
        "aria-label": `${t("original")}: ${hit.title}`, text: `${t("original")} ↗` }) : null),
    lessonBox);
}

function renderBody(turn, idx) {  // what goes under the question: progress, error, refusal or answer
  const slot = [];
  if (turn.pending) {
    const secs = Math.floor((Date.now() - turn.started) / 1000);
    slot.push(el("div", { class: "answer pending" }, el("span", { class: "spinner", "aria-hidden": "true" }),
      el("span", { class: "ptext", text: `${t("thinking")} ${secs} ${t("seconds")}` })));
  } else if (turn.error || turn.found === undefined) {  // failed, stopped, or cut off by a reload
    slot.push(el("div", { class: "answer none error", "data-testid": "error" }, el("p", { text: shownError(turn.error || { key: "stopped" }) }),
      el("button", { type: "button", class: "retry", text: t("retry"), onclick: () => rerun(turn) })));
  } else {
    if (turn.rewritten && turn.rewritten !== turn.question) {  // a follow-up, searched in full
      slot.push(el("p", { class: "rewritten", "data-testid": "rewritten", text: `${t("searched")}: ${turn.rewritten}` }));
    }
    if (!turn.found) return [...slot, renderRefusal(turn)];
    slot.push(renderAnswer(turn, idx));
    if ((turn.hits || []).length) {
      if (turn.facets && Object.keys(turn.facets).length) slot.push(renderFacets(turn));
      const cards = el("div", { class: "cards", role: "group", "aria-label": `${t("results")} (${t("turnN", idx + 1)})` });
      for (const h of turn.hits) cards.append(renderCard(turn, h, idx));
      slot.push(cards);
    }
  }
  return slot;
}

function renderTurn(turn, idx, newest) {
  const body = el("div", { class: "turn-body", "aria-live": newest ? "polite" : null, "aria-busy": turn.pending ? "true" : "false" },
    ...renderBody(turn, idx));
  return el("section", { class: "turn", "data-turn": idx },
    el("h2", { class: "user", text: turn.question }), body);
}

function renderTurnInPlace(turn) {  // update one turn without touching the others
  const c = conv();
  const idx = c.turns.indexOf(turn);
  const sec = document.querySelector(`#log section[data-turn="${idx}"]`);
  if (!sec) { renderAll(); return; }
  sec.querySelector(".turn-body").setAttribute("aria-busy", turn.pending ? "true" : "false");
  sec.querySelector(".turn-body").replaceChildren(...renderBody(turn, idx));
  renderChips(); updateBar(); renderHistory();
}

function renderAll() {
  const c = conv();
  const log = $("log");
  if (!c.turns.length) log.replaceChildren(renderWelcome());
  else log.replaceChildren(...c.turns.map((x, i) => renderTurn(x, i, i === c.turns.length - 1)));
  renderChips(); updateBar(); renderHistory();
}

function scrollToTurn(turn) {  // the start of the answer's turn at the top: the answer is read from its start
  const idx = conv().turns.indexOf(turn);
  const sec = document.querySelector(`#log section[data-turn="${idx}"]`);
  if (!sec) return;
  const chips = $("chips");  // the active-filter bar stays on top (sticky): start below it
  const above = chips.hidden ? 8 : chips.offsetHeight + 8;
  window.scrollTo({ top: Math.max(0, sec.getBoundingClientRect().top + window.scrollY - above) });
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll("[data-i18n-ph]")) n.placeholder = t(n.dataset.i18nPh);
  $("lang").textContent = t("otherLang");
  $("lang").lang = state.lang === "th" ? "en" : "th";
  for (const id of ["publisher", "province"]) $(id).options[0].textContent = t("all");
  for (const id of ["date_from", "date_to"]) $(id).placeholder = t("datePh");
  showFilters();
  renderAll();
}

// -- asking -----------------------------------------------------------------------------------------
function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  $("log").setAttribute("aria-busy", String(busy));
}

function stopPending() {
  if (state.pending) state.pending.ctrl.abort();
}

async function run(turn) {  // (re)compute one turn's answer
  const c = conv();
  if (state.pending) return false;
  const idx = c.turns.indexOf(turn);
  Object.assign(turn, { pending: true, error: null, started: Date.now() });
  const ctrl = new AbortController();
  state.pending = { turn, ctrl };
  setBusy(true);
  renderTurnInPlace(turn);
  scrollToTurn(turn);
  const tick = setInterval(() => {
    const p = document.querySelector(`#log section[data-turn="${idx}"] .ptext`);
    if (p) p.textContent = `${t("thinking")} ${Math.floor((Date.now() - turn.started) / 1000)} ${t("seconds")}`;
  }, 1000);
  const body = { question: turn.question, k: 5, filters: { ...c.filters } };
  const history = c.turns.slice(Math.max(0, idx - 10), idx).map((x) => x.question);
  if (history.length && state.historyOk) body.history = history;
  if (c.ignore.length) body.ignore_understood = [...c.ignore];
  try {
    let r;
    try { r = await api("/chat", body, ctrl.signal); }
    catch (e) {  // a server without the history contract (list of questions): ask without it
      if (!(e instanceof ApiError && e.status === 422 && (e.errors || []).some((x) => (x.loc || []).includes("history")))) throw e;
      state.historyOk = false;
      delete body.history;
      r = await api("/chat", body, ctrl.signal);
    }
    const out = await r.json();
    for (const k of ["answer", "found", "mode", "note", "citations", "hits", "facets", "understood", "rewritten"]) turn[k] = out[k];
    turn.citations = turn.citations || []; turn.hits = turn.hits || [];
    turn.filters = { ...c.filters };
  } catch (e) { turn.error = errorOf(e); }
  clearInterval(tick);
  turn.pending = false;
  state.pending = null;
  setBusy(false);
  save();
  renderTurnInPlace(turn);
  scrollToTurn(turn);
  return !turn.error;
}

async function ask(question) {
  question = question.trim();
  if (!question || state.pending) return false;
  if (!readFilters()) { $("filters").open = true; return false; }
  const c = conv();
  const turn = { question, answer: "", citations: [], hits: [] };
  c.turns.push(turn);
  renderAll();
  return run(turn);
}

function rerun(turn) { return run(turn); }
function rerunLast() {
  const c = conv();
  if (c.turns.length) rerun(c.turns[c.turns.length - 1]); else renderChips();
}

async function doExport(format) {
  const done = conv().turns.filter((x) => !x.pending && !x.error && x.found);
  const picked = done.flatMap((x) => x.hits.filter((h) => h.selected));
  if (!done.length) { toast(t("nothing")); return; }
  const body = { format, title: "km-search",
    conversation: done.map((x) => ({ question: x.question, answer: x.answer, citations: x.citations })),
    results: picked.map((h) => ({ title: h.title, link: h.link, publisher: h.publisher,
      published: h.published, published_raw: h.published_raw, snippet: h.snippet })) };
  try {
    const r = await api("/export", body);
    const name = (/filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "") || [])[1] || `km-search.${format}`;
    download(await r.blob(), name);
  } catch (e) { toast(errorText(e)); }
}

async function loadMeta() {
  try {
    const f = await (await api("/filters")).json();
    for (const [id, values] of [["publisher", f.publishers], ["province", f.provinces]]) {
      for (const v of values) ensureOption($(id), v);
    }
    showFilters();
  } catch (e) { /* no index yet: filters stay empty */ }
  try { state.overview = await (await api("/stats")).json(); } catch (e) { /* no index yet */ }
  try {  // does /chat take history as a list of earlier questions? (older servers: role/content turns)
    const spec = await (await api("/openapi.json")).json();
    const items = ((((spec.components || {}).schemas || {}).ChatIn || {}).properties || {}).history;
    const kinds = items ? [items.items || {}, ...((items.items || {}).anyOf || [])] : [];
    state.historyOk = !items || kinds.some((k) => k.type === "string");
  } catch (e) { /* keep sending; a 422 switches it off */ }
  await loadExamples();
}

async function loadExamples() {
  if (!state.examples[state.lang]) {
    try { state.examples[state.lang] = (await (await api(`/examples?lang=${state.lang}&n=6`)).json()).questions; }
    catch (e) { state.examples[state.lang] = []; }
  }
  if (!conv().turns.length || conv().turns.some((x) => !x.found)) renderAll();
}

function closeMenu() { document.body.classList.remove("menu-open"); $("menu").setAttribute("aria-expanded", "false"); }

async function openShared(params) {  // /?q=...&q=...: a shared conversation, answers recomputed
  const qs = params.getAll("q").map((q) => q.trim()).filter(Boolean).slice(0, 20);
  if (!qs.length) return;
  const c = newConv();
  for (const k of FILTER_KEYS) if (params.get(k)) c.filters[k] = params.get(k);
  history.replaceState(null, "", "/");
  showFilters(); renderAll();
  for (const q of qs) if (!(await ask(q))) break;
}

document.addEventListener("DOMContentLoaded", () => {
  load();
  const params = new URLSearchParams(location.search);
  const recent = state.convs[0];
  if (recent && !params.getAll("q").length) state.cur = recent.id; else newConv();
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.pending) return;
    const q = $("q").value;
    if (!q.trim()) return;
    $("q").value = "";
    ask(q);
  });
  $("q").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("ask").requestSubmit(); }
  });
  $("stop").addEventListener("click", stopPending);
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "th" ? "en" : "th";
    localStorage.setItem("km-lang", state.lang);
    applyLang();
    loadExamples();
  });
  $("new-chat").addEventListener("click", () => {
    const empty = state.convs.find((c) => !c.turns.length);
    if (empty) switchConv(empty.id); else { newConv(); switchConv(state.cur); }
    $("q").focus();
  });
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  for (const k of FILTER_KEYS) $(k).addEventListener("change", () => readFilters());
  $("clear").addEventListener("click", () => { conv().filters = {}; showFilters(); });
  $("export-md").addEventListener("click", () => doExport("md"));
  $("export-docx").addEventListener("click", () => doExport("docx"));
  $("compare").addEventListener("click", doCompare);
  applyLang();
  loadMeta();
  openShared(params);
  $("q").focus();
});
