// The console's shared code: the API client, the session, the two languages, the DOM
// builder, field errors from problem+json, the long-poll and the event-stream readers.
// Plain ES module, no dependency: it runs from the app with no internet and no build step.
//
// Rules every screen keeps:
// - the token lives in sessionStorage (this tab only) and is sent in the Authorization header,
//   never in a URL, never logged;
// - text from the API is put in the page with textContent (el()), never with innerHTML;
// - every string a person reads has a Chinese and an English text (t()).

const TOKEN_KEY = "pb.token";
const USER_KEY = "pb.user";
const LANG_KEY = "pb.lang";
export const CLINIC_TZ =
  document.querySelector('meta[name="pb-clinic-tz"]')?.content || "Asia/Shanghai";

// ---- languages ---------------------------------------------------------------------------

const STRINGS = { zh: {}, en: {} };

/** Register a screen's texts: addStrings({ key: ["中文", "English"], ... }). */
export function addStrings(table) {
  for (const [key, [zh, en]] of Object.entries(table)) {
    STRINGS.zh[key] = zh;
    STRINGS.en[key] = en;
  }
}

export function lang() {
  return localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value === "en" ? "en" : "zh");
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  applyI18n(document);
  document.dispatchEvent(new CustomEvent("pb:lang"));
}

/** The text for key in the current language; {name} placeholders filled from vars. */
export function t(key, vars = {}) {
  const text = STRINGS[lang()][key] ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Whether a screen registered this key (to fall back to the server's own text if not). */
export function hasString(key) {
  return key in STRINGS.zh;
}

/** Both languages at once ("血压 Blood pressure"), for the TV and her page. */
export function both(key, vars = {}) {
  const zh = (STRINGS.zh[key] ?? key).replace(/\{(\w+)\}/g, (_, n) => String(vars[n] ?? ""));
  const en = (STRINGS.en[key] ?? key).replace(/\{(\w+)\}/g, (_, n) => String(vars[n] ?? ""));
  return zh === en ? zh : `${zh} ${en}`;
}

/** Fill every [data-i18n] (text), [data-i18n-placeholder], [data-i18n-label] (aria-label). */
export function applyI18n(root) {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]"))
    node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of root.querySelectorAll("[data-i18n-label]"))
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  for (const node of root.querySelectorAll("[data-i18n-title]"))
    node.title = t(node.dataset.i18nTitle);
}

addStrings({
  "app.name": ["孕期管家", "Pregnancy Butler"],
  "app.lang": ["English", "中文"],
  "app.logout": ["退出登录", "Log out"],
  "app.loading": ["加载中…", "Loading…"],
  "app.offline": ["连接中断，正在重试…", "Connection lost, retrying…"],
  "app.error": ["出错了", "Something went wrong"],
  "app.forbidden": ["您的账号无权使用此页面", "Your account cannot use this page"],
  "app.none": ["无", "None"],
  "app.save": ["保存", "Save"],
  "app.cancel": ["取消", "Cancel"],
  "app.close": ["关闭", "Close"],
  "app.retry": ["重试", "Retry"],
  "app.home": ["首页", "Home"],
});

// ---- the session -------------------------------------------------------------------------

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function currentUser() {
  const raw = sessionStorage.getItem(USER_KEY);
  return raw ? JSON.parse(raw) : null;
}

export async function login(username, password) {
  const { data } = await api("/v1/auth/login", {
    method: "POST",
    body: { username, password },
    auth: false,
  });
  sessionStorage.setItem(TOKEN_KEY, data.access_token);
  const me = (await api("/v1/auth/me")).data;
  sessionStorage.setItem(USER_KEY, JSON.stringify(me));
  return me;
}

export async function logout() {
  try {
    if (token()) await api("/v1/auth/logout", { method: "POST" });
  } catch {
    // the token may have expired already: forgetting it is what matters
  }
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  location.assign("/console/");
}

/** The signed-in user if their role may use this screen; else back to the login page (which
 * comes back here after login) or a refusal. */
export async function requireRole(roles) {
  if (!token()) {
    const here = location.pathname.replace(/^\/console\//, "") + location.search;
    location.assign(`/console/?next=${encodeURIComponent(here)}`);
    return new Promise(() => {}); // never resolves: the page is leaving
  }
  let me;
  try {
    me = (await api("/v1/auth/me")).data;
  } catch (err) {
    if (err.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return requireRole(roles);
    }
    throw err;
  }
  sessionStorage.setItem(USER_KEY, JSON.stringify(me));
  if (roles.length && !roles.includes(me.role)) {
    document.body.replaceChildren(
      el("main", { class: "refusal" }, el("h1", {}, t("app.forbidden")), homeLink()),
    );
    return new Promise(() => {});
  }
  return me;
}

function homeLink() {
  return el("p", {}, el("a", { href: "/console/" }, t("app.home")));
}

// ---- the API -----------------------------------------------------------------------------

// What went wrong, by the problem's type, in Chinese first: the server's detail is English
// (for the log and the integrator), so a Chinese screen leads with these words and keeps the
// detail after them. A type not listed here shows the detail alone.
addStrings({
  "problem.already-booked": ["她这一天已有预约", "She already has a visit that day"],
  "problem.alert-voided": ["该危急值提醒已作废", "This alert was voided"],
  "problem.alert-without-mother": ["该提醒未关联孕妇", "This alert has no mother"],
  "problem.booked-another-day": ["她预约的是另一天", "She is booked on another day"],
  "problem.butler-does-not-fit": ["所选管家不符合分配规则", "The chosen butler breaks an assignment rule"],
  "problem.conflict": ["操作冲突，请刷新后重试", "Conflict: refresh and try again"],
  "problem.critical-value-closed-by-doctor": ["该危急值已由医生处理", "A doctor already closed this critical value"],
  "problem.critical-value-still-open": ["危急值尚未处理", "A critical value is still open"],
  "problem.cursor-expired": ["列表已变化，请重新加载", "The list changed: load it again"],
  "problem.firing-already-decided": ["该建议已有决定", "This suggestion was already decided"],
  "problem.forbidden": ["无权进行此操作", "Not allowed"],
  "problem.health-plan-conflict": ["健康管理计划已被他人修改", "The health plan was changed by someone else"],
  "problem.her-link-unknown": ["该链接无效或已失效", "This link is unknown or no longer works"],
  "problem.idempotency-in-progress": ["同一请求正在处理中", "The same request is still being handled"],
  "problem.idempotency-key-reused": ["重复的请求标识", "The request key was reused"],
  "problem.illegal-report-transition": ["报告当前状态不允许此操作", "The report's state does not allow this"],
  "problem.illegal-visit-transition": ["就诊当前状态不允许此操作", "The visit's state does not allow this"],
  "problem.malformed-etag": ["版本标识无效，请刷新", "Bad version tag: refresh"],
  "problem.no-butler-available": ["没有可接收她的管家：名额已满或不符合分配规则", "No butler can take her (full, or none fits)"],
  "problem.not-authenticated": ["请重新登录", "Please log in again"],
  "problem.not-found": ["未找到", "Not found"],
  "problem.outside-care-plan-window": ["该日期不在产检时间窗内", "The date lies outside the care-plan window"],
  "problem.patient-disagrees": ["报告与孕妇信息不一致", "The report does not match the mother"],
  "problem.payload-too-large": ["内容过大", "Too large"],
  "problem.precondition-failed": ["已被他人修改，请刷新后重试", "Changed by someone else: refresh and try again"],
  "problem.precondition-required": ["缺少版本标识，请刷新", "Version tag missing: refresh"],
  "problem.queue-conflict": ["排队状态已变化，请刷新", "The queue changed: refresh"],
  "problem.redating-needs-override": ["修改孕周需确认", "Re-dating needs a confirmation"],
  "problem.report-already-reviewed": ["该报告已审阅", "This report was already reviewed"],
  "problem.report-not-reviewable": ["该报告不可审阅", "This report cannot be reviewed"],
  "problem.report-on-hold": ["该报告被暂扣，待核对", "This report is on hold for checking"],
  "problem.service-unavailable": ["服务暂不可用，请稍后重试", "Service unavailable: try again soon"],
  "problem.session-full": ["该时段已约满", "This session is full"],
  "problem.station-over-capacity": ["检查站容纳不下她的检查", "The stations cannot take her exams"],
  "problem.too-many-requests": ["操作过于频繁，请稍后再试", "Too many requests: try again soon"],
  "problem.undo-refused": ["无法撤销", "Cannot be undone"],
  "problem.unknown-query-parameter": ["未知的查询参数", "Unknown query parameter"],
  "problem.unsupported-media-type": ["不支持的内容类型", "Unsupported content type"],
  "problem.validation-error": ["请检查填写的内容", "Please check what was entered"],
  "problem.wrong-station": ["不是本检查站的排队号", "Not a ticket of this station"],
});

const CJK = /[\u4e00-\u9fff]/;

/** A problem's text for the screen: in Chinese, the words for its type, then the server's
 * detail (English) in brackets; a detail already in Chinese (a screen's own) as it is. */
export function problemMessage(problem, status) {
  const detail = problem?.detail || problem?.title || `HTTP ${status}`;
  const slug = String(problem?.type || "").split("/").pop();
  const key = `problem.${slug}`;
  if (lang() !== "zh" || !slug || !(key in STRINGS.zh) || CJK.test(detail)) return detail;
  return `${STRINGS.zh[key]}（${detail}）`;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problemMessage(problem, status));
    this.status = status;
    this.problem = problem || {};
  }
}

/** Call the REST API: JSON in and out, the token in the header, a problem+json as ApiError.
 * Returns { status, data, etag, response }; a 304 gives data null. */
export async function api(path, { method = "GET", body, headers = {}, auth = true, signal } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (auth && token()) h.Authorization = `Bearer ${token()}`;
  let payload;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (method === "POST" && !("Idempotency-Key" in h) && path !== "/v1/auth/login") {
    h["Idempotency-Key"] = crypto.randomUUID();
  }
  const response = await fetch(path, { method, headers: h, body: payload, signal });
  const etag = response.headers.get("ETag");
  if (response.status === 304) return { status: 304, data: null, etag, response };
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && auth && token() && path !== "/v1/auth/me") {
      sessionStorage.removeItem(TOKEN_KEY); // expired or revoked: log in again
      requireRole([]);
    }
    throw new ApiError(response.status, typeof data === "object" ? data : { detail: data });
  }
  return { status: response.status, data, etag, response };
}

/** Fetch an image (a chart, a QR code) with the token and give an object URL for <img>. */
export async function imageUrl(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!response.ok) throw new ApiError(response.status, { detail: response.statusText });
  return URL.createObjectURL(await response.blob());
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ---- live data ---------------------------------------------------------------------------

/** Long-poll a resource that answers ETag / If-None-Match with ?wait=: onData(data) on every
 * change, backing off on errors; returns stop(). */
export function longPoll(path, onData, { wait = 25, onError } = {}) {
  let stopped = false;
  let etag = null;
  let controller = null;
  let delay = 1000;
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const sep = path.includes("?") ? "&" : "?";
        const url = etag ? `${path}${sep}wait=${wait}` : path;
        const headers = etag ? { "If-None-Match": etag } : {};
        const r = await api(url, { headers, signal: controller.signal });
        delay = 1000;
        if (r.status !== 304) {
          etag = r.etag;
          onData(r.data);
        }
        setOnline(true);
      } catch (err) {
        if (stopped) return;
        setOnline(false);
        onError?.(err);
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  })();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

/** Read a text/event-stream with the token in the header (EventSource cannot send one):
 * onEvent({event, data, id}) for each event; reconnects with Last-Event-ID; returns stop(). */
export function eventStream(path, onEvent, { onError } = {}) {
  let stopped = false;
  let lastId = null;
  let controller = null;
  let delay = 1000;
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (token()) headers.Authorization = `Bearer ${token()}`;
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(path, { headers, signal: controller.signal });
        if (!response.ok) throw new ApiError(response.status, {});
        setOnline(true);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const message = { event: "message", data: "", id: null };
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const i = line.indexOf(":");
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              if (field === "event") message.event = val;
              else if (field === "data") message.data += (message.data ? "\n" : "") + val;
              else if (field === "id") message.id = val;
            }
            if (message.id) lastId = message.id;
            if (message.data || message.event !== "message") onEvent(message);
          }
        }
      } catch (err) {
        if (stopped) return;
        setOnline(false);
        onError?.(err);
      }
      if (!stopped) {
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  })();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

function setOnline(online) {
  const banner = document.getElementById("offline-banner");
  if (banner) banner.hidden = online;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the DOM -----------------------------------------------------------------------------

/** el("button", {class: "primary", onclick: fn, "data-id": 3}, "text", child, ...).
 * Strings become text nodes: API data never becomes markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show a problem's field errors beside the fields of form (by name), its detail at the top,
 * and focus the first field in error. */
export function showProblem(form, err) {
  clearProblem(form);
  const problem = err instanceof ApiError ? err.problem : { detail: String(err) };
  const summary = form.querySelector(".form-error");
  let first = null;
  for (const e of problem.errors || []) {
    const name = e.field?.split(".").pop();
    const input = form.querySelector(`[name="${CSS.escape(e.field)}"]`) ||
      (name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null);
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    const id = `${input.id || input.name}-error`;
    let note = form.querySelector(`#${CSS.escape(id)}`);
    if (!note) {
      note = el("span", { class: "field-error", id, role: "alert" });
      input.insertAdjacentElement("afterend", note);
    }
    note.textContent = e.detail;
    input.setAttribute("aria-describedby", id);
    first ??= input;
  }
  if (summary) {
    summary.textContent = problem.detail || problem.title ? problemMessage(problem, err.status) : t("app.error");
    summary.hidden = false;
  }
  (first || summary)?.focus?.();
}

export function clearProblem(form) {
  for (const n of form.querySelectorAll(".field-error")) n.remove();
  for (const n of form.querySelectorAll("[aria-invalid]")) n.removeAttribute("aria-invalid");
  const summary = form.querySelector(".form-error");
  if (summary) {
    summary.textContent = "";
    summary.hidden = true;
  }
}

/** A short message at the bottom of the screen (role=status), gone after a few seconds. */
export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = el("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = el("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

/** The top bar: the app's name, the screen's title, who is signed in, the language switch and
 * log out. Put <header id="topbar"></header> in the page. */
export function topbar(titleKey, me) {
  const bar = document.getElementById("topbar");
  if (!bar) return;
  const langButton = el("button", { type: "button", class: "link", onclick: () => setLang(lang() === "zh" ? "en" : "zh") }, t("app.lang"));
  langButton.setAttribute("lang", lang() === "zh" ? "en" : "zh-CN");
  bar.replaceChildren(
    el("a", { class: "brand", href: "/console/" }, t("app.name")),
    el("h1", {}, t(titleKey)),
    el("span", { class: "who" }, me ? `${me.display_name || me.name} · ${roleName(me.role)}` : ""),
    langButton,
    me ? el("button", { type: "button", class: "link", onclick: logout }, t("app.logout")) : "",
  );
  document.title = `${t(titleKey)} — ${t("app.name")}`;
}

addStrings({
  "role.admin": ["管理员", "Administrator"],
  "role.front_desk": ["前台", "Front desk"],
  "role.doctor": ["医生", "Doctor"],
  "role.nutritionist": ["营养师", "Nutritionist"],
  "role.butler": ["管家", "Butler"],
  "role.station": ["检查站", "Exam station"],
});

export function roleName(role) {
  return t(`role.${role}`);
}

// ---- time --------------------------------------------------------------------------------

/** 14:05 in the clinic's time zone, whatever the desk computer's own. */
export function clockTime(iso, { seconds = false } = {}) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("zh-CN", {
    timeZone: CLINIC_TZ,
    hour: "2-digit",
    minute: "2-digit",
    second: seconds ? "2-digit" : undefined,
    hour12: false,
  }).format(new Date(iso));
}

/** 2026-12-03 in the clinic's time zone. */
export function clinicDate(date = new Date()) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: CLINIC_TZ,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(date);
  return parts; // en-CA formats as YYYY-MM-DD
}

/** 12月3日 14:05 / Dec 3, 14:05 in the clinic's time zone. */
export function dateTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: CLINIC_TZ,
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(new Date(iso));
}

/** Debounce for search-as-you-type. */
export function debounce(fn, ms = 150) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Start a screen: translate the static page, wire the language switch, report uncaught
 * errors in the page (not only in the console). */
export function boot() {
  applyI18n(document);
  document.addEventListener("pb:lang", () => applyI18n(document));
  window.addEventListener("unhandledrejection", (event) => {
    const err = event.reason;
    toast(err instanceof ApiError ? err.message : t("app.error"), "error");
    // not prevented: an uncaught failure stays a console error, which the browser tests fail on
  });
}
