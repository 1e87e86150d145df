// An exam station: its own queue only (a station account is bound to its station; an admin
// picks one; the nutritionist works the nutrition clinic), call next into this room, recall,
// start, finish, no-show (confirmed), the OGTT's glucose drink, each waiting mother's flags,
// and at the vitals and NST stations the readings entry. Live: the queue is re-read with
// If-None-Match (a long-poll with ?wait= where the route has it, else every few seconds).
import {
  ApiError, addStrings, api, boot, clearProblem, clockTime, el, lang, requireRole, showProblem,
  sleep, t, toast, topbar,
} from "./core.js";

addStrings({
  "st.title": ["检查站", "Exam station"],
  "st.picker": ["检查站", "Station"],
  "st.room": ["诊室", "Room"],
  "st.room.n": ["{n} 号诊室", "Room {n}"],
  "st.callnext": ["叫下一位", "Call next"],
  "st.called": ["请 {ticket} 号 {name} 到 {room} 号诊室", "Ticket {ticket}, {name}: please come to room {room}"],
  "st.nobody": ["现在没有可叫的孕妇", "Nobody can be called now"],
  "st.nobody.waiting": ["没有人在等", "Nobody is waiting"],
  "st.nobody.held": ["（{n} 位在等：原因见下方等候列表）", " ({n} waiting: the waiting list below says why)"],
  "st.serving": ["正在服务", "Being served"],
  "st.serving.none": ["暂无", "Nobody"],
  "st.waiting": ["候诊", "Waiting"],
  "st.waiting.none": ["没有候诊的孕妇", "Nobody is waiting"],
  "st.pos": ["顺序", "#"],
  "st.ticket": ["排队号", "Ticket"],
  "st.name": ["姓名", "Name"],
  "st.flags": ["提示", "Flags"],
  "st.exams": ["检查", "Exams"],
  "st.wait": ["预计等候", "Est. wait"],
  "st.minutes": ["{n} 分钟", "{n} min"],
  "st.now": ["即将", "now"],
  "st.due": ["{time} 后可叫", "not before {time}"],
  "st.state.called": ["已叫号", "Called"],
  "st.state.in_service": ["检查中", "In service"],
  "st.state.waiting": ["等候", "Waiting"],
  "st.calledat": ["{time} 叫号", "called {time}"],
  "st.startedat": ["{time} 开始", "started {time}"],
  "st.recalls": ["已重叫 {n} 次", "recalled {n}×"],
  "st.noshows": ["未到 {n} 次", "{n} no-show(s)"],
  "st.recall": ["重叫", "Recall"],
  "st.start": ["开始检查", "Start"],
  "st.finish": ["完成", "Finish"],
  "st.noshow": ["未到", "No-show"],
  "st.glucose": ["开始服糖（计时）", "Glucose drink started"],
  "st.glucose.done": ["已开始服糖：{draws}", "Glucose drink started: {draws}"],
  "st.measure.open": ["录入测量", "Enter readings"],
  "st.noshow.title": ["确认未到？", "Mark as no-show?"],
  "st.noshow.text": ["{ticket} {name} 叫号后未到。她会在稍后重新排队，保留原顺序。", "{ticket} {name} did not come when called. She rejoins the queue after a delay, keeping her place."],
  "st.noshow.yes": ["确认未到", "Yes, no-show"],
  "st.done.recall": ["已重叫 {ticket}", "Recalled {ticket}"],
  "st.done.start": ["{ticket} 开始检查", "{ticket} started"],
  "st.done.finish": ["{ticket} 已完成", "{ticket} finished"],
  "st.done.noshow": ["{ticket} 记为未到", "{ticket} marked no-show"],
  "st.awaiting": ["等待开始计时（OGTT 服糖）", "Waiting for the timer (OGTT glucose drink)"],
  "st.awaiting.none": ["无", "None"],
  "st.awaiting.item": ["{ticket} {name} · {exam}", "{ticket} {name} · {exam}"],
  "st.measure": ["测量录入", "Readings"],
  "st.measure.for": ["{ticket} {name} 的测量", "Readings for {ticket} {name}"],
  "st.measure.save": ["保存测量", "Save readings"],
  "st.measure.finish": ["保存并完成检查", "Save and finish"],
  "st.measure.saved": ["测量已保存", "Readings saved"],
  "st.measure.empty": ["请至少填写一项", "Enter at least one reading"],
  "m.weight": ["体重 (kg)", "Weight (kg)"],
  "m.bp_sys": ["收缩压 (mmHg)", "Systolic (mmHg)"],
  "m.bp_dia": ["舒张压 (mmHg)", "Diastolic (mmHg)"],
  "m.pulse": ["脉搏 (次/分)", "Pulse (bpm)"],
  "m.fhr": ["胎心率 (次/分)", "Fetal heart rate (bpm)"],
  "m.nst": ["NST 结果", "NST result"],
  "m.nst.none": ["—", "—"],
  "m.nst.reactive": ["有反应型", "Reactive"],
  "m.nst.non_reactive": ["无反应型", "Non-reactive"],
  "flag.fasting": ["空腹", "Fasting"],
  "flag.urgent": ["加急", "Urgent"],
  "flag.infection": ["感染防控", "Infection control"],
  "st.held.busy": ["正在其他检查", "at another exam now"],
  "st.held.draw": ["先做定时抽血", "her timed draw comes first"],
  "st.held.claimed": ["空闲的耗时检查室（如超声）先叫她", "a free room of a longer exam (a scan) calls her first"],
  "st.scheduled": ["稍后可叫（定时抽血未到时间）", "Not yet due (timed draws)"],
  "st.scheduled.none": ["无", "None"],
  "st.scheduled.item": ["{ticket} {name} · {exams}", "{ticket} {name} · {exams}"],
  "st.scheduled.due": ["{time} 抽血", "due {time}"],
  "st.scheduled.from": ["{time} 起可叫", "callable from {time}"],
  "st.undo": ["撤销：{what}", "Undo: {what}"],
  "st.undo.call": ["叫号 {ticket}", "call of {ticket}"],
  "st.undo.start": ["开始检查 {ticket}", "start of {ticket}"],
  "st.undo.finish": ["完成 {ticket}", "finish of {ticket}"],
  "st.undone": ["已撤销：{what}", "Undone: {what}"],
  "st.undo.readings": ["{ticket} 已完成并有测量：不能撤销，如有错请更正测量", "{ticket} finished with readings: it cannot be undone; correct the readings instead"],
  "st.unbound": ["此检查站账号未绑定检查站，请管理员绑定。", "This station account is bound to no station: ask an admin to bind it."],
  "st.updated": ["更新于 {time}", "Updated {time}"],
  "st.closed": ["（已关闭）", "(closed)"],
});

// Exam names come from the API in both languages (exams / exams_zh); only the OGTT's timed
// draws are steps with labels of their own, named here.
const STEP_ZH = { "1-hour draw": "服糖后 1 小时抽血", "2-hour draw": "服糖后 2 小时抽血" };
const stepName = (label) => (lang() === "zh" ? STEP_ZH[label] || label : label);
const examName = (name, nameZh) => (lang() === "zh" ? nameZh || STEP_ZH[name] || name : name);
const stationLabel = (s) => (lang() === "zh" ? s.name_zh || s.name : s.name);

// What each station records at finish (POST /v1/mothers/{id}/measurements, or with the finish).
const READINGS = {
  vitals: [
    { name: "weight", kind: "weight", part: "value", unit: "kg", min: 25, max: 250, step: 0.1 },
    { name: "bp_sys", kind: "blood_pressure", part: "value", unit: "mmHg", min: 50, max: 260, step: 1 },
    { name: "bp_dia", kind: "blood_pressure", part: "value2", unit: "mmHg", min: 30, max: 180, step: 1 },
    { name: "pulse", kind: "pulse", part: "value", unit: "bpm", min: 30, max: 220, step: 1 },
  ],
  nst: [
    { name: "fhr", kind: "fetal_heart_rate", part: "value", unit: "bpm", min: 60, max: 240, step: 1 },
    { name: "nst", kind: "nst", part: "result", options: ["reactive", "non_reactive"] },
  ],
};

boot();
const me = await requireRole(["station", "admin", "nutritionist"]);
topbar("st.title", me);

const $ = (id) => document.getElementById(id);
const ROOM_KEY = "pb.station.room";
const STATION_KEY = "pb.station.code";
const state = {
  stations: [],
  code: null,
  station: null,
  queue: null,
  etag: null,
  waitSupported: true,
  controller: null,
  measureEntry: null,
  confirm: null,
  last: null, // this room's last call, start or finish: { entry, action, room, at }
};

// ---- which station ------------------------------------------------------------------------

async function chooseStation() {
  state.stations = (await api("/v1/stations")).data.items;
  const fixed = me.role === "station" ? me.station_code : me.role === "nutritionist" ? "NUT" : null;
  if (me.role === "station" && !fixed) {
    $("call-next").disabled = true;
    $("station-name").textContent = t("st.unbound");
    return null;
  }
  if (fixed) {
    $("station-fixed").hidden = false;
    return fixed;
  }
  const picker = $("station-picker");
  picker.hidden = false;
  $("station-picker-label").hidden = false;
  const wanted = new URLSearchParams(location.search).get("code") || localStorage.getItem(STATION_KEY);
  fillPicker();
  const code = state.stations.some((s) => s.code === wanted) ? wanted : state.stations[0]?.code;
  picker.value = code;
  picker.addEventListener("change", () => switchStation(picker.value));
  return code;
}
function fillPicker() {
  const picker = $("station-picker");
  const value = picker.value;
  picker.replaceChildren(...state.stations.map((s) => el("option", { value: s.code }, `${s.code} · ${stationLabel(s)}${s.is_open ? "" : t("st.closed")}`)));
  if (value) picker.value = value;
}

function switchStation(code) {
  state.code = code;
  state.station = state.stations.find((s) => s.code === code) || null;
  state.queue = null;
  state.etag = null;
  state.measureEntry = null;
  if (me.role === "admin") {
    localStorage.setItem(STATION_KEY, code);
    history.replaceState(null, "", `?code=${encodeURIComponent(code)}`);
  }
  renderHead();
  kick();
}

function renderHead() {
  const s = state.station;
  $("station-name").textContent = s ? `${stationLabel(s)} · ${s.code}` : state.code || "";
  if (s && me.role !== "admin") $("station-fixed").textContent = lang() === "zh" ? "（本账号固定于此检查站）" : "(this account works here only)";
  const room = $("room");
  const n = Math.max(1, s?.servers || 1);
  const saved = Number(localStorage.getItem(`${ROOM_KEY}.${state.code}`)) || 1;
  room.replaceChildren(...Array.from({ length: n }, (_, i) => el("option", { value: i + 1 }, t("st.room.n", { n: i + 1 }))));
  room.value = String(Math.min(saved, n));
  document.title = `${s ? stationLabel(s) : ""} — ${t("st.title")}`;
}
$("room").addEventListener("change", () => {
  localStorage.setItem(`${ROOM_KEY}.${state.code}`, $("room").value);
  render();
  renderUndo();
});
const myRoom = () => Number($("room").value) || 1;

// ---- live queue ---------------------------------------------------------------------------

function setOffline(off) {
  $("offline-banner").hidden = !off;
}

/** Re-read the queue now (after an action, or a change of station). */
function kick() {
  state.etag = null;
  state.controller?.abort();
}

async function pollLoop() {
  let backoff = 1000;
  for (;;) {
    const code = state.code;
    if (!code) return;
    const started = Date.now();
    state.controller = new AbortController();
    let waited = false;
    try {
      const headers = state.etag ? { "If-None-Match": state.etag } : {};
      waited = Boolean(state.etag && state.waitSupported);
      const url = `/v1/stations/${encodeURIComponent(code)}/queue${waited ? "?wait=20" : ""}`;
      const r = await api(url, { headers, signal: state.controller.signal });
      setOffline(false);
      backoff = 1000;
      if (code !== state.code) continue;
      if (r.status !== 304) {
        state.etag = r.etag;
        state.queue = r.data;
        render();
      }
      $("live-state").textContent = t("st.updated", { time: clockTime(new Date().toISOString(), { seconds: true }) });
    } catch (err) {
      if (err?.name === "AbortError") continue; // kicked: read again at once
      if (err instanceof ApiError && err.status === 400 && waited && /wait/.test(err.message)) {
        state.waitSupported = false; // this queue route has no long-poll: poll with the ETag
        continue;
      }
      if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
        $("serving").replaceChildren(el("p", { class: "form-error" }, err.message));
        $("waiting").tBodies[0].replaceChildren();
        await waitOrKick(10000);
        continue;
      }
      setOffline(true);
      await waitOrKick(backoff);
      backoff = Math.min(backoff * 2, 15000);
      continue;
    }
    // no long-poll held the request: ask again in a few seconds (or at once when kicked)
    if (Date.now() - started < 1500) await waitOrKick(4000);
  }
}
function waitOrKick(ms) {
  return new Promise((resolve) => {
    const controller = new AbortController();
    state.controller = controller;
    const timer = setTimeout(resolve, ms);
    controller.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); });
  });
}

// ---- rendering ----------------------------------------------------------------------------

function flagBadges(e) {
  return [
    e.urgent ? el("span", { class: "badge urgent" }, t("flag.urgent")) : "",
    e.infection_control ? el("span", { class: "badge infection" }, t("flag.infection")) : "",
    e.fasting ? el("span", { class: "badge fasting" }, t("flag.fasting")) : "",
    e.no_shows ? el("span", { class: "badge warn" }, t("st.noshows", { n: e.no_shows })) : "",
  ];
}
function exams(e) {
  return (e.exams || []).map((name, i) => examName(name, e.exams_zh?.[i])).join(lang() === "zh" ? "、" : ", ");
}

function render() {
  const q = state.queue;
  if (!q) return;
  if (q.station) {
    state.station = { ...state.station, ...q.station };
  }
  renderServing(q);
  const called = $("call-result").dataset.ticket;
  if (called && !q.serving.some((e) => e.ticket === called)) {
    $("call-result").textContent = "";
    delete $("call-result").dataset.ticket;
  }
  renderWaiting(q);
  renderAwaiting(q);
  renderMeasure();
}

function renderServing(q) {
  const box = $("serving");
  const mine = myRoom();
  // in the order they were called: the one just called is last (this room's are outlined)
  const list = [...q.serving].sort((a, b) => String(a.called_at || "").localeCompare(String(b.called_at || "")));
  box.replaceChildren(...(list.length ? list.map((e) => {
    const actions = [];
    if (e.state === "called") {
      actions.push(button("recall", t("st.recall"), e), button("start", t("st.start"), e, "primary"), button("no-show", t("st.noshow"), e, "danger"));
    } else if (e.state === "in_service") {
      if (canMeasure()) actions.push(button("measure", t("st.measure.open"), e));
      if (/glucose tolerance/i.test((e.exams || []).join(" "))) actions.push(button("glucose-drink", t("st.glucose"), e));
      actions.push(button("finish", t("st.finish"), e, "primary"));
    }
    return el("article", {
      class: `entry ${e.state}${e.room === mine ? " mine" : ""}`, "data-testid": "serving-entry",
      "data-entry-id": e.id, "data-ticket": e.ticket, "data-state": e.state,
    },
    el("div", { class: "row entry-head" },
      el("span", { class: "ticket" }, e.ticket),
      el("span", { class: "who" }, e.masked_name),
      el("span", { class: "room-tag" }, t("st.room.n", { n: e.room ?? "?" })),
      el("span", { class: `state ${e.state}` }, t(`st.state.${e.state}`)),
      el("span", { class: "spacer" }),
      el("span", { class: "muted" }, e.started_at ? t("st.startedat", { time: clockTime(e.started_at) }) : e.called_at ? t("st.calledat", { time: clockTime(e.called_at) }) : ""),
      e.recalls ? el("span", { class: "muted" }, t("st.recalls", { n: e.recalls })) : ""),
    el("div", { class: "row flags" }, ...flagBadges(e), el("span", { class: "exams" }, exams(e))),
    el("div", { class: "row actions" }, ...actions));
  }) : [el("p", { class: "muted" }, t("st.serving.none"))]));
}

function button(action, label, entry, kind = "") {
  return el("button", {
    type: "button", class: kind, "data-action": action,
    onclick: () => act(action, entry),
  }, label);
}

function renderWaiting(q) {
  const body = $("waiting").tBodies[0];
  $("waiting-count").textContent = q.waiting.length ? String(q.waiting.length) : "";
  body.replaceChildren(...(q.waiting.length ? q.waiting.map((e, i) => {
    const wait = e.due_at && new Date(e.due_at) > new Date()
      ? t("st.due", { time: clockTime(e.due_at) })
      : e.estimated_wait_minutes == null ? "" : e.estimated_wait_minutes <= 0 ? t("st.now") : t("st.minutes", { n: e.estimated_wait_minutes });
    return el("tr", { "data-testid": "waiting-entry", "data-entry-id": e.id, "data-ticket": e.ticket, class: e.urgent ? "urgent" : "" },
      el("td", { class: "pos" }, String(e.position ?? i + 1)),
      el("td", { class: "ticket" }, e.ticket),
      el("td", { class: "name" }, e.masked_name),
      el("td", { class: "flags" }, ...flagBadges(e)),
      el("td", { class: "exams", title: exams(e) }, el("span", { class: "clamp" }, exams(e))),
      el("td", { class: "wait" }, e.held ? el("span", { class: "muted held" }, heldText(e.held)) : wait));
  }) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, t("st.waiting.none")))]));
  renderScheduled(q);
}

// Why call-next passes over a waiting mother now (the API says it in English).
const HELD = {
  "at another exam now": "st.held.busy",
  "her timed draw is due first": "st.held.draw",
  "a free room of a longer exam calls her first": "st.held.claimed",
};
const heldText = (why) => (HELD[why] ? t(HELD[why]) : why);

/** Timed draws (and rejoins) not yet callable: apart from the waiting list, with their time. */
function renderScheduled(q) {
  let list = $("scheduled");
  if (!list) {
    const panel = document.querySelector(".waiting-panel");
    const title = el("h3", { id: "scheduled-title" }, t("st.scheduled"));
    list = el("ul", { id: "scheduled", class: "plain scheduled", "aria-labelledby": "scheduled-title" });
    panel.append(title, list);
  }
  $("scheduled-title").textContent = t("st.scheduled");
  const items = q.scheduled || [];
  list.replaceChildren(...(items.length ? items.map((e) => el("li", {
    class: "row", "data-testid": "scheduled-entry", "data-entry-id": e.id, "data-ticket": e.ticket,
  },
  el("span", {}, t("st.scheduled.item", { ticket: e.ticket, name: e.masked_name, exams: exams(e) })),
  el("span", { class: "spacer" }),
  el("span", { class: "due" }, e.due_at ? t("st.scheduled.due", { time: clockTime(e.due_at) }) : t("st.scheduled.from", { time: clockTime(e.available_at) })),
  )) : [el("li", { class: "muted" }, t("st.scheduled.none"))]));
}

function renderAwaiting(q) {
  const list = $("awaiting");
  const items = q.awaiting_start || [];
  const shown = items.length > 0 || q.station?.station_type === "blood_draw";
  list.hidden = !shown;
  $("awaiting-title").hidden = !shown;
  list.replaceChildren(...(items.length ? items.map((a) => el("li", { class: "row", "data-entry-id": a.entry_id },
    el("span", {}, t("st.awaiting.item", { ticket: a.ticket, name: a.masked_name, exam: examName(a.exam, a.exam_zh) })),
    el("span", { class: "muted" }, clockTime(a.first_step_done_at)),
    el("span", { class: "spacer" }),
    el("button", { type: "button", "data-action": "glucose-drink", onclick: () => act("glucose-drink", { id: a.entry_id, ticket: a.ticket, masked_name: a.masked_name }) }, t("st.glucose")),
  )) : [el("li", { class: "muted" }, t("st.awaiting.none"))]));
}

// ---- actions ------------------------------------------------------------------------------

$("call-next").addEventListener("click", callNext);
document.addEventListener("keydown", (event) => {
  if (event.key === "F2" && !$("call-next").disabled) {
    event.preventDefault();
    callNext();
  }
  if (event.key === "F4" && state.last) {
    event.preventDefault();
    undoLast();
  }
  if (event.key === "Escape" && !$("confirm-dialog").hidden) closeConfirm(false);
});

// ---- undo a mis-tap: the room's last call, start or finish, for two minutes --------------

const UNDO_MS = 2 * 60 * 1000;
let undoTimer = null;
function undoButton() {
  let b = $("undo");
  if (!b) {
    b = el("button", { type: "button", id: "undo", class: "undo", "aria-keyshortcuts": "F4", hidden: true, onclick: () => undoLast() });
    $("call-next").after(b);
  }
  return b;
}
function remember(action, entry) {
  state.last = { action, entry: { id: entry.id, ticket: entry.ticket }, room: myRoom(), code: state.code, at: Date.now() };
  clearTimeout(undoTimer);
  undoTimer = setTimeout(forget, UNDO_MS);
  renderUndo();
}
function forget() {
  state.last = null;
  clearTimeout(undoTimer);
  renderUndo();
}
/** Entries with readings recorded here: the server refuses to undo their finish (the readings
 * depend on it), so it is not offered; the room corrects the readings instead. */
const measured = new Set();
function finished(entry) {
  if (!measured.has(entry.id)) return remember("finish", entry);
  forget(); // the room's last action is this finish, and it cannot be undone
  toast(t("st.undo.readings", { ticket: entry.ticket }), "info");
}
const undoWhat = (last) => t(`st.undo.${last.action}`, { ticket: last.entry.ticket });
function renderUndo() {
  const b = undoButton();
  const last = state.last;
  const shown = Boolean(last && last.code === state.code && last.room === myRoom() && Date.now() - last.at < UNDO_MS);
  b.hidden = !shown;
  if (shown) b.replaceChildren(t("st.undo", { what: undoWhat(last) }), " ", el("kbd", {}, "F4"));
}
async function undoLast() {
  const last = state.last;
  if (!last || Date.now() - last.at >= UNDO_MS) return forget();
  const b = undoButton();
  b.disabled = true;
  let answered = false; // the server took it, or refused it for good: one step back only
  try {
    await api(`/v1/queue-entries/${last.entry.id}/undo`, { method: "POST", body: { action: last.action, room: last.room } });
    answered = true;
    toast(t("st.undone", { what: undoWhat(last) }), "ok");
  } catch (err) {
    // A 4xx (409 refused, 403, 404) is an answer; a network error or a 5xx is not: the undo
    // stays offered, for its two minutes, to try again.
    answered = err instanceof ApiError && err.status >= 400 && err.status < 500;
    toast(err.message, "error");
  } finally {
    b.disabled = false;
    if (answered) forget();
    else renderUndo();
    kick();
  }
}

async function callNext() {
  const b = $("call-next");
  b.disabled = true;
  try {
    const { data } = await api(`/v1/stations/${encodeURIComponent(state.code)}/call-next`, { method: "POST", body: { room: myRoom() } });
    const result = $("call-result");
    if (data.called) {
      const e = data.called.entry;
      result.textContent = t("st.called", { ticket: e.ticket, name: e.masked_name, room: e.room ?? myRoom() });
      result.className = "call-result called";
      result.dataset.ticket = e.ticket;
      remember("call", e);
    } else {
      // The API's reason is in English; the waiting list says each mother's reason in both.
      result.textContent = data.waiting ? t("st.nobody") + t("st.nobody.held", { n: data.waiting }) : t("st.nobody.waiting");
      result.className = "call-result none";
    }
  } catch (err) {
    $("call-result").textContent = err.message;
    $("call-result").className = "call-result error";
  } finally {
    b.disabled = false;
    kick();
  }
}

async function act(action, entry) {
  if (action === "measure") {
    state.measureEntry = entry;
    renderMeasure({ focus: true });
    return;
  }
  if (action === "no-show" && !(await askConfirm(entry))) return;
  let body;
  if (action === "glucose-drink") body = { started_at: new Date().toISOString() };
  try {
    const { data } = await api(`/v1/queue-entries/${entry.id}/${action}`, { method: "POST", body });
    if (action === "glucose-drink") {
      const draws = (data.draws || []).map((d) => `${stepName(d.label || "")} ${clockTime(d.due_at)}`.trim()).join("，");
      toast(t("st.glucose.done", { draws }), "ok");
    } else {
      toast(t(`st.done.${action.replace("-", "")}`, { ticket: entry.ticket }), "ok");
    }
    if (action === "start") remember(action, entry);
    if (action === "finish") finished(entry);
    if (action === "finish" && state.measureEntry?.id === entry.id) state.measureEntry = null;
  } catch (err) {
    toast(err.message, "error");
  } finally {
    kick();
  }
}

let confirmResolve = null;
let confirmReturn = null;
function askConfirm(entry) {
  confirmReturn = document.activeElement;
  $("confirm-text").textContent = t("st.noshow.text", { ticket: entry.ticket, name: entry.masked_name });
  $("confirm-dialog").hidden = false;
  $("confirm-no").focus();
  return new Promise((resolve) => { confirmResolve = resolve; });
}
function closeConfirm(answer) {
  $("confirm-dialog").hidden = true;
  confirmResolve?.(answer);
  confirmResolve = null;
  confirmReturn?.focus?.();
}
$("confirm-yes").addEventListener("click", () => closeConfirm(true));
$("confirm-no").addEventListener("click", () => closeConfirm(false));

// ---- readings (vitals, NST) ---------------------------------------------------------------

const measureForm = $("measure-form");
/** Readings are taken by the station's own staff (an admin may run the queue, not measure). */
function canMeasure() {
  return Boolean(READINGS[state.queue?.station?.station_type]) && me.role !== "admin";
}
function measureTarget() {
  if (!canMeasure()) return null;
  const serving = state.queue.serving.filter((e) => e.state === "in_service");
  const chosen = state.measureEntry && serving.find((e) => e.id === state.measureEntry.id);
  return chosen || serving.find((e) => e.room === myRoom()) || null;
}

let measureFor = null;
function renderMeasure({ focus = false } = {}) {
  const entry = measureTarget();
  const type = state.queue?.station?.station_type;
  if (!entry) {
    measureForm.hidden = true;
    measureFor = null;
    return;
  }
  $("measure-title").textContent = t("st.measure.for", { ticket: entry.ticket, name: entry.masked_name });
  if (measureFor !== entry.id) {
    measureFor = entry.id;
    clearProblem(measureForm);
    $("measure-fields").replaceChildren(...READINGS[type].map((f) => {
      const id = `m-${f.name}`;
      const input = f.options
        ? el("select", { id, name: f.name }, el("option", { value: "" }, t("m.nst.none")), ...f.options.map((o) => el("option", { value: o }, t(`m.nst.${o}`))))
        : el("input", { id, name: f.name, type: "number", inputmode: "decimal", min: f.min, max: f.max, step: f.step, autocomplete: "off" });
      return el("div", { class: "mfield" }, el("label", { for: id }, t(`m.${f.name}`)), input);
    }));
  }
  measureForm.hidden = false;
  if (focus) measureForm.querySelector("input, select")?.focus();
}

/** The readings typed, and for each reading index the input it came from (for the 422). */
function readingsFromForm() {
  const type = state.queue.station.station_type;
  const fields = READINGS[type];
  const readings = [];
  const sources = [];
  const byKind = new Map();
  for (const f of fields) {
    const raw = measureForm.elements[f.name].value.trim();
    if (raw === "") continue;
    let reading = byKind.get(f.kind);
    if (!reading) {
      reading = { kind: f.kind };
      if (f.unit) reading.unit = f.unit;
      byKind.set(f.kind, reading);
      readings.push(reading);
      sources.push({});
    }
    const i = readings.indexOf(reading);
    reading[f.part] = f.part === "result" ? raw : Number(raw);
    sources[i][f.part] = f.name;
  }
  return { readings, sources };
}

function mapProblem(err, sources) {
  if (!(err instanceof ApiError)) return err;
  const errors = (err.problem.errors || []).map((e) => {
    const m = /readings\.(\d+)(?:\.(\w+))?/.exec(e.field || "");
    if (!m) return e;
    const src = sources[Number(m[1])] || {};
    const name = src[m[2]] || src.value || src.result || Object.values(src)[0];
    return name ? { ...e, field: name } : e;
  });
  return new ApiError(err.status, { ...err.problem, errors });
}

async function saveReadings(finish) {
  const entry = measureTarget();
  if (!entry) return;
  clearProblem(measureForm);
  const { readings, sources } = readingsFromForm();
  if (!readings.length && !finish) {
    showProblem(measureForm, new ApiError(422, { detail: t("st.measure.empty") }));
    return;
  }
  try {
    if (finish) {
      await api(`/v1/queue-entries/${entry.id}/finish`, { method: "POST", body: readings.length ? { readings } : undefined });
      toast(t("st.done.finish", { ticket: entry.ticket }), "ok");
      if (readings.length) measured.add(entry.id);
      finished(entry);
      state.measureEntry = null;
      measureFor = null;
    } else {
      await api(`/v1/mothers/${entry.mother_id}/measurements`, { method: "POST", body: { readings } });
      toast(t("st.measure.saved"), "ok");
      measured.add(entry.id);
      measureForm.reset();
    }
  } catch (err) {
    showProblem(measureForm, mapProblem(err, sources));
    return;
  } finally {
    kick();
  }
}
measureForm.addEventListener("submit", (event) => {
  event.preventDefault();
  saveReadings(false);
});
$("measure-finish").addEventListener("click", () => saveReadings(true));

// ---- start --------------------------------------------------------------------------------

document.addEventListener("pb:lang", () => {
  topbar("st.title", me);
  if (me.role === "admin") fillPicker();
  renderHead();
  measureFor = null;
  render();
  renderUndo();
});

const code = await chooseStation();
if (code) {
  switchStation(code);
  pollLoop();
}
