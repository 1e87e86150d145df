// The butler's phone: today's work, live (long-poll on /v1/me/assignments with ETag), with
// the actions each item needs: record that the mother was reached about a critical value,
// pick up and deliver a report, finish a task, accept or decline a cover.
import {
  addStrings, api, boot, clinicDate, clockTime, dateTime, el, lang, longPoll, requireRole, showProblem,
  sleep, t, toast, topbar,
} from "./core.js";

addStrings({
  "butler.title": ["管家手机端", "Butler"],
  "butler.today": ["今日待办", "Today"],
  "butler.empty": ["暂无待办事项", "Nothing to do right now"],
  "butler.install": ["安装到手机桌面", "Install on this phone"],
  "butler.live": ["实时 · {time} 更新", "Live · updated {time}"],
  "butler.connecting": ["正在连接…", "Connecting…"],
  "butler.filter.all": ["全部 {n}", "All {n}"],
  "butler.filter.alert": ["危急值 {n}", "Critical {n}"],
  "butler.filter.report": ["报告 {n}", "Reports {n}"],
  "butler.filter.visit": ["就诊 {n}", "Visits {n}"],
  "butler.filter.task": ["任务 {n}", "Tasks {n}"],
  "butler.filter.mothers": ["我的孕妇", "My mothers"],
  "butler.mother.next": ["下次就诊 {time}", "Next visit {time}"],
  "butler.mother.reports": ["{n} 份报告未完成", "{n} reports open"],
  "butler.mother.flagged": ["需重新分配：{why}", "To reassign: {why}"],
  "butler.mothers.empty": ["暂无", "None"],
  "butler.ga": ["孕 {ga} 周", "GA {ga}"],
  "kind.alert": ["危急值", "Critical value"],
  "kind.visit": ["今日就诊", "Visit today"],
  "kind.report_pickup": ["待取报告", "Report to pick up"],
  "kind.report_delivery": ["待解读报告", "Report to deliver"],
  "kind.task": ["任务", "Task"],
  // each card's heading, from its kind and fields; the API's own text stays as the detail line
  "head.alert": ["危急值：请立即联系她", "Critical value: contact her now"],
  "head.visit": ["陪同她今日就诊", "Accompany her visit"],
  "head.visit.cover": ["代班：陪同她今日就诊", "Cover: accompany her visit"],
  "head.report_pickup": ["待取报告", "Report to pick up"],
  "head.report_pickup.named": ["待取报告：{name}", "Report to pick up: {name}"],
  "head.report_delivery": ["待向她解读报告", "Report to go over with her"],
  "head.report_delivery.named": ["待解读报告：{name}", "Report to go over: {name}"],
  "head.task": ["待办任务", "Task"],
  "butler.role.primary": ["主管家", "Primary"],
  "butler.role.cover": ["代班", "Cover"],
  "butler.at.alert": ["处理时限 {time}", "Due by {time}"],
  "butler.at.visit": ["预约 {time}", "Booked {time}"],
  "butler.at.report_pickup": ["{time} 出报告", "Ready {time}"],
  "butler.at.report_delivery": ["{time} 出报告", "Ready {time}"],
  "butler.at.task": ["截止 {time}", "Due {time}"],
  "visit.booked": ["已预约", "Booked"],
  "visit.checked_in": ["已签到", "Checked in"],
  "visit.in_progress": ["检查中", "In progress"],
  "visit.completed": ["已完成", "Completed"],
  "visit.cancelled": ["已取消", "Cancelled"],
  "visit.no_show": ["未到", "No-show"],
  "place.waiting": ["排队中", "Waiting"],
  "place.called": ["已叫号", "Called"],
  "place.in_service": ["检查中", "In the room"],
  "place.position": ["前面 {n} 人", "{n} ahead"],
  "place.wait": ["约 {n} 分钟", "about {n} min"],
  "place.room": ["{n} 号诊室", "room {n}"],
  "place.not_before": ["{time} 后", "after {time}"],
  "butler.steps": ["已完成 {done}/{total} 项", "{done} of {total} steps done"],
  "butler.next_station": ["下一站：{name}", "Next: {name}"],
  "butler.no_queue": ["未在排队", "Not in a queue"],
  "butler.advice": ["医生建议（{name}）：", "Doctor's advice ({name}): "],
  "butler.advice.earlier": ["（针对较早版本的报告）", "(on an earlier version of the report)"],
  "act.contacted": ["已联系孕妇", "Mother reached"],
  "act.pick-up": ["取报告", "Pick up"],
  "act.deliver": ["已向孕妇解读", "Delivered"],
  "act.complete": ["完成", "Done"],
  "act.accept": ["接受代班", "Accept cover"],
  "act.decline": ["拒绝代班", "Decline cover"],
  "form.place": ["取报告地点", "Picked up at"],
  "form.place.default": ["检验科窗口", "Lab counter"],
  "form.note.deliver": ["解读记录（孕妇的反馈）", "Note (how she took it)"],
  "form.note.contacted": ["联系记录", "What was said"],
  "form.note.task": ["备注（可不填）", "Note (optional)"],
  "form.reason": ["原因", "Reason"],
  "form.submit": ["确认", "Confirm"],
  "done.contacted": ["已记录联系孕妇", "Recorded: mother reached"],
  "done.pick-up": ["已取报告", "Report picked up"],
  "done.deliver": ["已记录报告解读", "Delivery recorded"],
  "done.complete": ["任务已完成", "Task done"],
  "done.accept": ["已接受代班", "Cover accepted"],
  "done.decline": ["已拒绝代班", "Cover declined"],
  "butler.ack_by_doctor": ["危急值由值班医生关闭；请先联系孕妇并记录。", "A doctor closes the value; reach the mother and record it."],
  "butler.contacted_at": ["已于 {time} 联系", "Reached at {time}"],
});

boot();

const FILTERS = {
  all: () => true,
  alert: (i) => i.kind === "alert",
  report: (i) => i.kind === "report_pickup" || i.kind === "report_delivery",
  visit: (i) => i.kind === "visit",
  task: (i) => i.kind === "task",
};
const BACKSTOP_MS = 15000;
let filter = "all";
let current = null; // the last Assignments answer
let updatedAt = null;
const nodes = new Map(); // "kind:id" → { json, node }

// ---- rendering --------------------------------------------------------------------------

function key(item) {
  return `${item.kind}:${item.id}`;
}

function render() {
  if (!current) return;
  renderFilters();
  if (filter === "mothers") {
    renderMothers();
    renderLive();
    return;
  }
  const list = document.getElementById("assignments");
  const shown = current.items.filter(FILTERS[filter]);
  const keep = new Set();
  const ordered = shown.map((item) => {
    const k = key(item);
    keep.add(k);
    const json = JSON.stringify(item) + lang();
    const old = nodes.get(k);
    // a card whose form is open keeps its form (and what she typed) until she is done
    if (old && (old.json === json || old.node.querySelector("form:not([hidden])"))) return old.node;
    const node = card(item);
    nodes.set(k, { json, node });
    return node;
  });
  for (const k of [...nodes.keys()]) if (!current.items.some((i) => key(i) === k)) nodes.delete(k);
  list.replaceChildren(...ordered);
  document.getElementById("empty").hidden = shown.length > 0;
  renderLive();
}

function renderFilters() {
  const nav = document.getElementById("filters");
  const mothersButton = el("button", { type: "button", "data-filter": "mothers", "aria-pressed": String(filter === "mothers"), onclick: () => { filter = "mothers"; loadMothers(); render(); } }, t("butler.filter.mothers"));
  const buttons = Object.keys(FILTERS).map((name) => {
    const n = current.items.filter(FILTERS[name]).length;
    return el(
      "button",
      {
        type: "button",
        "data-filter": name,
        "aria-pressed": String(filter === name),
        class: name === "alert" && n ? "has-alert" : "",
        onclick: () => {
          filter = name;
          render();
        },
      },
      t(`butler.filter.${name}`, { n }),
    );
  });
  const focused = document.activeElement?.dataset?.filter;
  nav.replaceChildren(...buttons, mothersButton);
  if (focused) nav.querySelector(`[data-filter="${focused}"]`)?.focus();
}

let mothers = null;
async function loadMothers() {
  try {
    mothers = (await api("/v1/me/mothers")).data.items;
  } catch (err) {
    toast(err.message, "error");
    mothers = [];
  }
  if (filter === "mothers") render();
}

function renderMothers() {
  const list = document.getElementById("assignments");
  document.getElementById("empty").hidden = true;
  if (!mothers) {
    list.replaceChildren(el("li", { class: "muted" }, t("app.loading")));
    return;
  }
  list.replaceChildren(
    ...(mothers.length
      ? mothers.map((m) =>
          el(
            "li",
            { class: "card card-mother", "data-testid": "my-mother", "data-mother-id": m.mother_id },
            el("div", { class: "card-head" },
              m.risk_grade ? el("span", { class: `grade ${m.risk_grade}` }) : "",
              el("strong", {}, m.name), el("span", { class: "mono muted" }, m.mrn),
              el("span", { class: `badge role-${m.role}` }, t(`butler.role.${m.role}`))),
            el("p", { class: "muted small" }, [
              m.gestational_age ? t("butler.ga", { ga: m.gestational_age }) : "",
              m.next_visit_at ? t("butler.mother.next", { time: when(m.next_visit_at) }) : "",
              m.open_reports ? t("butler.mother.reports", { n: m.open_reports }) : "",
            ].filter(Boolean).join(" · ")),
            m.flagged_reason ? el("p", { class: "small warn-text" }, t("butler.mother.flagged", { why: m.flagged_reason })) : "",
          ),
        )
      : [el("li", { class: "muted" }, t("butler.mothers.empty"))]),
  );
}

function renderLive() {
  const live = document.getElementById("live");
  live.textContent = updatedAt ? t("butler.live", { time: clockTime(updatedAt.toISOString(), { seconds: true }) }) : t("butler.connecting");
}

// The exams' and stations' names in both languages (GET /v1/exam-types, /v1/stations: name,
// name_zh), read once; a card without a match shows the API's text.
const names = { exams: new Map(), stations: new Map() };
async function loadNames() {
  const [exams, stations] = await Promise.all([
    api("/v1/exam-types").then((r) => r.data.items).catch(() => []),
    api("/v1/stations").then((r) => r.data.items).catch(() => []),
  ]);
  for (const x of exams) for (const k of [x.code, x.name]) if (k) names.exams.set(k.toLowerCase(), x);
  for (const st of stations) names.stations.set(st.code, st);
}
function localName(entry) {
  if (!entry) return "";
  return lang() === "zh" ? entry.name_zh || "" : entry.name || "";
}

/** [heading, detail]: Chinese first from the kind; the API's title as the detail (not twice). */
function cardText(item) {
  const title = item.title || "";
  let heading;
  let detail = title;
  if (item.kind === "alert") {
    heading = t("head.alert");
    // "Critical value: contact her now (Hemoglobin: flagged LL)": the reason is what is new
    const m = /^Critical value: contact her now \((.*)\)$/.exec(title);
    if (m) detail = m[1];
  } else if (item.kind === "report_pickup" || item.kind === "report_delivery") {
    const name = localName(names.exams.get(title.toLowerCase()));
    heading = name ? t(`head.${item.kind}.named`, { name }) : t(`head.${item.kind}`);
    if (name === title) detail = "";
  } else if (item.kind === "visit") {
    heading = t(item.role === "cover" ? "head.visit.cover" : "head.visit");
  } else {
    heading = tOr(`head.${item.kind}`, t(`kind.${item.kind}`));
  }
  if (detail && detail.trim().toLowerCase() === heading.trim().toLowerCase()) detail = "";
  if (item.kind === "visit" && detail === "Accompany her visit") detail = ""; // the heading says it
  return [heading, detail];
}
function tOr(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

function card(item) {
  const [heading, detail] = cardText(item);
  const head = el(
    "div",
    { class: "card-head" },
    el("h3", { class: `kind kind-${item.kind} heading` }, heading),
    item.role ? el("span", { class: `badge role-${item.role}` }, t(`butler.role.${item.role}`)) : "",
    item.at ? el("time", { datetime: item.at, class: "muted" }, t(`butler.at.${item.kind}`, { time: when(item.at) })) : "",
  );
  const who = el("p", { class: "who" }, el("strong", {}, item.name), " ", el("span", { class: "mono muted" }, item.mrn));
  const body = detail ? [el("p", { class: "title", lang: /[\u4e00-\u9fff]/.test(detail) ? "zh-CN" : "en" }, detail)] : [];
  if (item.kind === "visit") body.push(...visitBody(item));
  if (item.advice) body.push(adviceBox(item.advice));
  if (item.kind === "alert") body.push(el("p", { class: "muted small" }, t("butler.ack_by_doctor")));
  const li = el(
    "li",
    { class: `card card-${item.kind}`, "data-testid": "assignment", "data-kind": item.kind, "data-id": item.id, "data-mother-id": item.mother_id },
    head, who, ...body, actions(item),
  );
  return li;
}

function when(iso) {
  // today (the clinic's day, whatever zone the phone is set to): the time; another day: the
  // date and time
  return clinicDate(new Date(iso)) === clinicDate() ? clockTime(iso) : dateTime(iso);
}

function visitBody(item) {
  const out = [];
  if (item.status) out.push(el("p", { class: "status" }, el("span", { class: `badge visit-${item.status}` }, t(`visit.${item.status}`))));
  const q = item.queue;
  if (!q) return out;
  if (q.places.length) {
    out.push(
      el(
        "ul",
        { class: "plain places" },
        q.places.map((p) =>
          el(
            "li",
            { "data-station": p.station, class: `place place-${p.state}` },
            el("span", { class: "ticket mono" }, p.ticket),
            el("span", { class: "station" }, localName(names.stations.get(p.station)) || p.station_name),
            el("span", { class: "state" }, t(`place.${p.state}`)),
            p.room != null && p.state !== "waiting" ? el("span", {}, t("place.room", { n: p.room })) : "",
            p.state === "waiting" && p.position != null ? el("span", { class: "muted" }, t("place.position", { n: p.position })) : "",
            p.state === "waiting" && p.estimated_wait_minutes != null ? el("span", { class: "muted" }, t("place.wait", { n: p.estimated_wait_minutes })) : "",
            p.not_before ? el("span", { class: "muted" }, t("place.not_before", { time: clockTime(p.not_before) })) : "",
          ),
        ),
      ),
    );
  } else {
    out.push(el("p", { class: "muted" }, t("butler.no_queue")));
  }
  const steps = [t("butler.steps", { done: q.steps_done, total: q.steps_total })];
  if (q.next_station) steps.push(t("butler.next_station", { name: localName(names.stations.get(q.next_station)) || q.next_station }));
  out.push(el("p", { class: "muted small" }, steps.join(" · ")));
  return out;
}

function adviceBox(advice) {
  return el(
    "p",
    { class: "advice" },
    el("strong", {}, t("butler.advice", { name: advice.reviewer_name })),
    advice.advice,
    advice.of_earlier_version ? el("span", { class: "muted" }, " ", t("butler.advice.earlier")) : "",
  );
}

// ---- actions ----------------------------------------------------------------------------

const ACTIONS = {
  alert: [{ name: "contacted", field: "note", label: "form.note.contacted", required: true, multiline: true, path: (i) => `/v1/alerts/${i.id}/mother-contacted`, body: (v) => ({ note: v }) }],
  report_pickup: [{ name: "pick-up", field: "place", label: "form.place", required: true, initial: () => t("form.place.default"), path: (i) => `/v1/reports/${i.id}/pick-up`, body: (v) => ({ place: v }) }],
  report_delivery: [{ name: "deliver", field: "note", label: "form.note.deliver", required: true, multiline: true, path: (i) => `/v1/reports/${i.id}/deliver`, body: (v) => ({ note: v }) }],
  task: [{ name: "complete", field: "note", label: "form.note.task", required: false, direct: true, path: (i) => `/v1/me/tasks/${i.id}/complete`, body: (v) => ({ note: v || null }) }],
  visit: [
    { name: "accept", direct: true, cover: true, path: (i) => `/v1/me/covers/${i.id}/accept`, body: () => undefined },
    { name: "decline", field: "reason", label: "form.reason", required: true, cover: true, path: (i) => `/v1/me/covers/${i.id}/decline`, body: (v) => ({ reason: v }) },
  ],
};

function actions(item) {
  const row = el("div", { class: "actions" });
  const forms = [];
  for (const a of ACTIONS[item.kind] || []) {
    if (a.cover && item.role !== "cover") continue;
    const button = el("button", { type: "button", class: a.name === "decline" ? "" : "primary", "data-action": a.name }, t(`act.${a.name}`));
    if (a.direct) {
      button.addEventListener("click", () => run(item, a, "", button));
      row.append(button);
      continue;
    }
    const form = actionForm(item, a);
    forms.push(form);
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      const open = form.hidden;
      for (const f of forms) f.hidden = true;
      form.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) form.querySelector("input, textarea")?.focus();
    });
    row.append(button);
  }
  return el("div", {}, row, ...forms);
}

let formSeq = 0;
function actionForm(item, a) {
  const id = `f${++formSeq}`;
  const input = a.multiline
    ? el("textarea", { id, name: a.field, rows: 3, required: a.required, maxlength: 2000 })
    : el("input", { id, name: a.field, required: a.required, maxlength: 200, value: a.initial?.() });
  const submit = el("button", { type: "submit", class: "primary" }, t("form.submit"));
  const cancel = el("button", { type: "button" }, t("app.cancel"));
  const form = el(
    "form",
    { class: `${a.name}-form action-form`, hidden: true, "data-action-form": a.name },
    el("p", { class: "form-error", tabindex: "-1", hidden: true }),
    el("label", { for: id }, t(a.label)),
    input,
    el("div", { class: "row" }, submit, cancel),
  );
  cancel.addEventListener("click", () => {
    form.hidden = true;
    form.closest("li")?.querySelector(`[data-action="${a.name}"]`)?.focus();
  });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") cancel.click();
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && a.multiline) form.requestSubmit();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run(item, a, input.value.trim(), submit, form);
  });
  return form;
}

async function run(item, a, value, button, form) {
  button.disabled = true;
  try {
    await api(a.path(item), { method: "POST", body: a.body(value) });
    toast(t(`done.${a.name}`), "ok");
    if (form) form.hidden = true;
    const li = button.closest("li");
    li?.classList.add("done");
    nodes.delete(key(item)); // rebuilt from the next answer
    await refresh();
  } catch (err) {
    if (form) showProblem(form, err);
    else toast(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function refresh() {
  try {
    const r = await api("/v1/me/assignments");
    if (!current || r.data.version !== current.version || r.data.day !== current.day) apply(r.data);
  } catch {
    // the long-poll keeps trying; nothing else to do here
  }
}

function apply(data) {
  if (current && data.version < current.version && data.day === current.day) return; // an older answer
  current = data;
  updatedAt = new Date();
  render();
}

// ---- start ------------------------------------------------------------------------------

async function start() {
  let me;
  for (;;) {
    try {
      me = await requireRole(["butler"]);
      break;
    } catch (err) {
      if (err?.status) throw err;
      document.getElementById("offline-banner").hidden = false; // no signal: try again
      await sleep(5000);
    }
  }
  topbar("butler.title", me);
  document.addEventListener("pb:lang", () => {
    topbar("butler.title", me);
    nodes.clear();
    render();
  });
  renderLive();
  loadNames().then(() => {
    nodes.clear(); // the cards read before the names came: again, with them
    render();
  });
  longPoll("/v1/me/assignments", apply, { wait: 25 });
  // Backstop: a plain read every 15 s while the screen is on, in case a wake-up is ever lost
  // (a proxy that cut the held request, a server restarted mid-wait). The long-poll itself
  // brings every change at once. One cheap query each.
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, BACKSTOP_MS);
  setInterval(renderLive, 15000);
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/console/sw.js", { scope: "/console/" }).catch(() => {
    // no service worker (private window, http on another host): the page works without it
  });
}
let installPrompt = null;
window.addEventListener("beforeinstallprompt", (event) => {
  event.preventDefault();
  installPrompt = event;
  document.getElementById("install").hidden = false;
});
document.getElementById("install").addEventListener("click", async () => {
  if (!installPrompt) return;
  installPrompt.prompt();
  await installPrompt.userChoice;
  installPrompt = null;
  document.getElementById("install").hidden = true;
});

start();
