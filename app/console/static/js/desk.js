// The front desk: find a mother as you type, enrol her, book her into a session, check her in
// with the scanner (never a silent walk-in), print her slip with her tickets and the QR code of
// her own page, today's board, and the lab work (worklist, reconciliation, attach, detach).
// Built only on the public REST API; every text through t(); API data only through el().
import {
  ApiError, addStrings, api, applyI18n, boot, clearProblem, clinicDate, clockTime, dateTime,
  debounce, el, hasString, lang, longPoll, query, requireRole, showProblem, t, toast, topbar,
} from "./core.js";

addStrings({
  "desk.title": ["前台", "Front desk"],
  "desk.tabs": ["前台功能", "Front desk sections"],
  "desk.tab.search": ["查找孕妇", "Find a mother"],
  "desk.tab.enrol": ["建档", "Enrol"],
  "desk.tab.book": ["预约", "Book"],
  "desk.tab.checkin": ["签到", "Check in"],
  "desk.tab.board": ["今日看板", "Today's board"],
  "desk.tab.lab": ["检验对账", "Lab work"],
  "desk.refresh": ["刷新", "Refresh"],
  "desk.current": ["当前孕妇", "Current"],
  "desk.current.clear": ["清除", "Clear"],
  "desk.search.label": ["姓名 / 拼音 / 病历号 / 手机尾号 / 身份证号", "Name / pinyin / MRN / last 4 of phone / national id"],
  "desk.search.placeholder": ["例如 lxh、李小红、MRN0001、8001", "e.g. lxh, lixiaohong, MRN0001, 8001"],
  "desk.search.hint": ["↑ ↓ 选择，回车打开", "↑ ↓ to choose, Enter to open"],
  "desk.search.results": ["查找结果", "Search results"],
  "desk.search.none": ["没有找到", "No mother found"],
  "desk.search.more": ["结果较多，请输入更多字", "Many matches: type more"],
  "desk.summary.empty": ["请先查找并打开一位孕妇", "Find and open a mother first"],
  "desk.summary.book": ["为她预约", "Book a visit"],
  "desk.summary.checkin": ["为她签到", "Check her in"],
  "desk.summary.visits": ["就诊记录", "Visits"],
  "desk.summary.reports": ["检验报告", "Reports"],
  "desk.summary.novisits": ["暂无就诊", "No visits yet"],
  "desk.summary.noreports": ["暂无报告", "No reports yet"],
  "desk.detach": ["撤下", "Detach"],
  "f.mrn": ["病历号", "MRN"],
  "f.name": ["姓名", "Name"],
  "f.national_id": ["身份证号", "National id"],
  "f.phone": ["手机号", "Mobile"],
  "f.dob": ["出生日期", "Date of birth"],
  "f.age": ["年龄", "Age"],
  "f.language": ["沟通语言", "Language"],
  "f.height": ["身高 (cm)", "Height (cm)"],
  "f.pre_weight": ["孕前体重 (kg)", "Pre-pregnancy weight (kg)"],
  "f.lmp": ["末次月经", "Last menstrual period"],
  "f.edd": ["预产期（无末次月经时）", "Due date (if no LMP)"],
  "f.edd.short": ["预产期", "Due date"],
  "f.ga": ["孕周", "Gestational age"],
  "f.ga.short": ["孕周", "GA"],
  "f.gravida": ["孕次", "Gravida"],
  "f.para": ["产次", "Para"],
  "f.risk": ["风险分级", "Risk grade"],
  "f.risk_reason": ["风险说明", "Reason for the grade"],
  "f.butler": ["专属管家", "Primary butler"],
  "lang.zh": ["中文", "Chinese"],
  "lang.en": ["英文", "English"],
  "grade.green": ["绿色 低风险", "Green: low risk"],
  "grade.yellow": ["黄色 一般风险", "Yellow: moderate risk"],
  "grade.orange": ["橙色 较高风险", "Orange: higher risk"],
  "grade.red": ["红色 高风险", "Red: high risk"],
  "grade.purple": ["紫色 传染病", "Purple: infectious disease"],
  "flag.infection": ["感染防控", "Infection control"],
  "flag.urgent": ["加急", "Urgent"],
  "flag.walkin": ["临时就诊", "Walk-in"],
  "flag.critical": ["危急值", "Critical"],
  "desk.enrol.title": ["新建档案", "Enrol a mother"],
  "desk.enrol.person": ["基本信息", "Her details"],
  "desk.enrol.pregnancy": ["本次妊娠", "This pregnancy"],
  "desk.enrol.submit": ["建档", "Enrol"],
  "desk.enrol.reset": ["清空", "Clear"],
  "desk.enrol.done": ["已建档：{name}（{mrn}），专属管家 {butler}", "Enrolled: {name} ({mrn}), primary butler {butler}"],
  "desk.book.nobody": ["请先在“查找孕妇”中打开一位孕妇", "Open a mother in “Find a mother” first"],
  "desk.book.for": ["为 {name}（{mrn}）预约", "Booking for {name} ({mrn})"],
  "desk.book.prev": ["上一周", "Previous week"],
  "desk.book.next": ["下一周", "Next week"],
  "desk.book.prevweek": ["上一周", "Previous week"],
  "desk.book.nextweek": ["下一周", "Next week"],
  "desk.book.from": ["起始日期", "From"],
  "desk.book.choose": ["请选择一个门诊时段", "Choose a clinic session"],
  "desk.book.chosen": ["{day} {name} {from}–{to}", "{day} {name} {from}–{to}"],
  "desk.book.hour": ["时间", "Time"],
  "desk.book.anyhour": ["最早可约", "Earliest free"],
  "desk.book.hourleft": ["{time}（余 {n}）", "{time} ({n} left)"],
  "desk.book.submit": ["预约", "Book"],
  "desk.book.left": ["余 {n} 位", "{n} left"],
  "desk.book.full": ["已约满", "Full"],
  "desk.book.closed": ["停诊", "Closed"],
  "desk.book.nosession": ["无门诊", "No session"],
  "desk.book.done": ["已预约：{day} {time}，{session}", "Booked: {day} {time}, {session}"],
  "desk.book.arrival": ["请她 {time} 到达", "Ask her to arrive at {time}"],
  "desk.book.load": ["{station} {pct}%（{used}/{cap} 分钟）", "{station} {pct}% ({used}/{cap} min)"],
  "desk.book.loadover": ["{station} 超出容量 {pct}%（{used}/{cap} 分钟）", "{station} over capacity {pct}% ({used}/{cap} min)"],
  "desk.book.overcap": ["该门诊时段的检查站已排满。可预约：", "This session's stations are full. Sessions with room:"],
  // A booking's warnings, by code (the server's text is English; it is the fallback).
  "desk.notice.no-window": ["孕 {ga} 周时，该日期不在任何产检时间窗内", "At {ga} weeks the date lies in no care-plan window"],
  "desk.notice.outside-window": ["孕 {ga} 周时，该日期不在产检时间窗（孕 {from} 至 {to} 周）内", "At {ga} weeks the date lies outside the window ({from} to {to} weeks)"],
  "desk.notice.after-proposal": ["她的产检计划建议在 {from} 至 {to} 之间就诊（{exams}）；预约在 {day} 将错过", "Her plan proposes {from} to {to} ({exams}); on {day} that is missed"],
  "desk.notice.capacity-overridden": ["{by} 超出检查站容量预约（{stations}），已记入审计", "Booked past capacity by {by} ({stations}), audited"],
  "desk.notice.override-unused": ["没有检查站超出容量：未使用超容量预约", "No station was over capacity: the capacity override was not used"],
  "desk.notice.override-reason-ignored": ["只填写了超容量理由而未选择超容量预约：理由未使用", "An override reason without the override was ignored"],
  "desk.book.overcap.hour": ["{hour} 时段的检查站容纳不下她的检查。可预约：", "The {hour} hour's stations cannot take her exams. Hours with room:"],
  "desk.book.noalt": ["近期没有有空位的门诊时段", "No session soon has room"],
  "desk.problem.station-over-capacity": ["该时段的检查站容纳不下她的检查（已满、会让孕妇排队过久，或她所需的检查室在她到达后未开放足够时间）", "This session's stations cannot take her exams (full, a queue that would keep mothers waiting too long, or a room she needs is not open long enough after her arrival)"],
  "desk.book.alt": ["{day} {name} {hour} 时段，{arrive} 到（余 {n} 位）", "{day} {name}, the {hour} hour, arriving {arrive} ({n} left)"],
  "desk.checkin.label": ["扫描就诊卡或输入病历号、预约码，回车签到", "Scan her card or type the MRN or booking code, then Enter"],
  "desk.checkin.submit": ["签到", "Check in"],
  "desk.checkin.done": ["已签到", "Checked in"],
  "desk.checkin.again": ["她今天已签到过（重复扫描）", "Already checked in today (repeated scan)"],
  "desk.checkin.walkin": ["已按临时就诊签到", "Checked in as a walk-in"],
  "desk.walkin.title": ["她预约的不是今天", "She is booked on another day"],
  "desk.walkin.text": ["她预约在 {day} {time}（{session}），不是今天。只有确认今天就诊时，才按临时就诊签到；否则请改约。", "She is booked on {day} at {time} ({session}), not today. Check her in as a walk-in only if she is to be seen today; otherwise reschedule."],
  "desk.walkin.confirm": ["确认今天按临时就诊（walk-in）签到", "Yes, check her in today as a walk-in"],
  "desk.walkin.cancel": ["不签到", "Do not check in"],
  "desk.walkin.cancelled": ["未签到", "Not checked in"],
  "slip.title": ["签到单", "Check-in slip"],
  "slip.clinic": ["孕期管家 VIP 门诊", "Pregnancy Butler VIP clinic"],
  "slip.date": ["日期", "Date"],
  "slip.station": ["检查", "Station"],
  "slip.ticket": ["排队号", "Ticket"],
  "slip.room": ["诊室", "Room"],
  "slip.room.later": ["叫号时告知", "When called"],
  "slip.notickets": ["暂无排队（请到前台询问）", "No queue yet (ask the desk)"],
  "slip.pending": ["稍后排队：{what}", "Queued later: {what}"],
  "slip.qr": ["扫码查看叫号进度（仅限今天）", "Scan to follow your queue (today only)"],
  "slip.print": ["打印签到单", "Print the slip"],
  "slip.revoke": ["作废二维码链接", "Revoke the QR link"],
  "slip.revoked": ["链接已作废", "Link revoked"],
  "slip.revoke.confirm": ["作废后她的二维码将不能再打开，确定？", "Her QR code will stop working. Revoke it?"],
  "slip.noqr": ["二维码暂不可用", "QR code not available"],
  "slip.expires": ["有效至 {time}", "Valid until {time}"],
  "slip.newlink": ["重新生成二维码", "New QR link"],
  "slip.haslink": ["她签到时已领取二维码；重新生成会使旧二维码失效", "She got her QR code at check-in; a new one makes the old one stop working"],
  "desk.board.date": ["日期", "Date"],
  "desk.board.time": ["预约时间", "Booked"],
  "desk.board.status": ["状态", "Status"],
  "desk.board.arrived": ["到达", "Arrived"],
  "desk.board.butlers": ["管家", "Butlers"],
  "desk.board.tickets": ["排队号", "Tickets"],
  "desk.board.empty": ["这一天没有就诊", "No visits on this day"],
  "desk.board.asof": ["更新于 {time}", "Updated {time}"],
  "desk.board.count": ["{label} {n}", "{label} {n}"],
  "status.booked": ["已预约", "Booked"],
  "status.checked_in": ["已到", "Arrived"],
  "status.in_progress": ["检查中", "In progress"],
  "status.completed": ["已完成", "Done"],
  "status.cancelled": ["已取消", "Cancelled"],
  "status.no_show": ["未到", "No-show"],
  "tstate.waiting": ["等候", "waiting"],
  "tstate.called": ["已叫号", "called"],
  "tstate.in_service": ["检查中", "in service"],
  "tstate.done": ["完成", "done"],
  "desk.lab.title": ["检验工作", "Lab work"],
  "desk.worklist.title": ["待办（危急值优先）", "To do (critical first)"],
  "desk.worklist.empty": ["没有待办事项", "Nothing to do"],
  "desk.worklist.ack": ["已处理", "Done"],
  "prio.1": ["今天", "Today"],
  "prio.2": ["有空时", "When possible"],
  "desk.worklist.note": ["处理说明", "What was done"],
  // a worklist item's heading from its kind (the API's title stays below it, as sent)
  "wl.visit.unaccompanied": ["无管家陪同：请安排管家或由前台陪同", "No butler for this visit: find one or go with her"],
  "wl.visit.no_show": ["预约未到", "Missed visit"],
  "wl.visit.rescheduled": ["就诊已改期", "Visit moved"],
  "wl.critical.unmatched": ["危急值未能匹配孕妇：请立即核对", "Critical value matched no mother: check it now"],
  "wl.alert.critical": ["危急值", "Critical value"],
  "wl.alert.escalated": ["危急值升级：尚未处理", "Critical value escalated"],
  "wl.report.unmatched": ["检验结果待对账", "Result to reconcile"],
  "wl.report.on_hold": ["检验结果暂存待核对", "Result held for a check"],
  "wl.report.identity_conflict": ["报告身份信息冲突", "Report names another patient"],
  "wl.report.pickup_overdue": ["报告逾期未取", "Report not picked up"],
  "wl.report.update_ignored": ["报告更新未采用", "Report update not applied"],
  "wl.message.control_id_reused": ["检验消息编号重复", "Lab message id reused"],
  "wl.other.0": ["危急事项：请立即处理", "Critical: act now"],
  "wl.other.1": ["今日待办", "To do today"],
  "wl.other.2": ["有空时处理", "When possible"],
  "desk.recon.title": ["待对账的检验结果", "Results to reconcile"],
  "desk.recon.empty": ["没有待对账的结果", "No result is waiting"],
  "desk.recon.sent": ["化验单上的患者", "Patient on the message"],
  "desk.recon.reason": ["原因", "Why held"],
  "desk.recon.received": ["收到", "Received"],
  "desk.recon.obs": ["{n} 项结果", "{n} results"],
  "desk.recon.candidates": ["可能的孕妇", "Possible mothers"],
  "desk.recon.nocandidate": ["没有可能的孕妇：请核对化验单", "No likely mother: check the message"],
  "desk.recon.score": ["匹配度 {n}", "score {n}"],
  "desk.recon.noorders": ["她没有未完成的检查单", "She has no open order"],
  "desk.recon.override": ["信息不一致，仍然确认关联", "Attach despite the differences"],
  "desk.recon.attach": ["关联到所选检查单", "Attach to the chosen order"],
  "desk.recon.attached": ["已关联", "Attached"],
  "desk.recon.named": ["化验单所指", "named in the message"],
  "desk.recon.chooseorder": ["请选择检查单", "Choose an order"],
  "desk.reason": ["原因（必填）", "Reason (required)"],
  "desk.detach.title": ["从她的档案中撤下这份报告", "Detach this report from her record"],
  "desk.detach.submit": ["撤下报告", "Detach the report"],
  "desk.detach.done": ["报告已撤下，回到待对账", "Report detached: back in reconciliation"],
  "pickup.not_ready": ["未出", "not ready"],
  "pickup.ready": ["可取", "ready"],
  "pickup.picked_up": ["已取", "picked up"],
  "pickup.delivered": ["已解读", "delivered"],
  "pickup.withdrawn": ["已撤回", "withdrawn"],
  "exam.consultation": ["医生问诊", "Doctor's consultation"],
  "exam.1_hour_draw": ["服糖后 1 小时抽血", "1-hour draw"],
  "exam.2_hour_draw": ["服糖后 2 小时抽血", "2-hour draw"],
  "exam.vitals": ["体重血压", "Weight and blood pressure"],
  "exam.cbc": ["血常规", "Complete blood count"],
  "exam.ogtt": ["糖耐量试验 (OGTT)", "Glucose tolerance test (OGTT)"],
  "exam.urine": ["尿常规", "Urine test"],
  "exam.nst": ["胎心监护", "Non-stress test"],
  "exam.nutrition": ["营养门诊", "Nutrition consultation"],
  "exam.abo_rh": ["血型 ABO/Rh", "Blood group ABO/Rh"],
  "exam.fasting_glucose": ["空腹血糖", "Fasting glucose"],
  "exam.liver_kidney": ["肝肾功能", "Liver and kidney function"],
  "exam.hbsag": ["乙肝表面抗原", "Hepatitis B surface antigen"],
  "exam.syphilis": ["梅毒血清学", "Syphilis serology"],
  "exam.hiv": ["HIV 筛查", "HIV screening"],
  "exam.us_early": ["早孕超声", "Early pregnancy ultrasound"],
  "exam.us_anatomy": ["胎儿系统超声", "Fetal anatomy ultrasound"],
  "exam.us_obstetric": ["产科超声", "Obstetric ultrasound"],
  "exam.nt_scan": ["NT 超声", "Nuchal translucency scan"],
  "exam.gbs": ["B 族链球菌筛查", "GBS screening"],
  "station.DOC": ["医生诊室", "Doctor"],
  "station.EXM": ["检查室", "Examination room"],
  "station.LAB": ["抽血", "Blood draw"],
  "station.NST": ["胎心监护", "Non-stress test"],
  "station.NUT": ["营养门诊", "Nutrition clinic"],
  "station.URI": ["留尿", "Urine sample"],
  "station.US": ["超声", "Ultrasound"],
  "station.VIT": ["体重血压", "Weight and blood pressure"],
});

boot();
const me = await requireRole(["front_desk", "admin"]);
topbar("desk.title", me);
document.addEventListener("pb:lang", () => {
  topbar("desk.title", me);
  rerender();
});

const $ = (id) => document.getElementById(id);
const state = {
  mother: null, // {id, mrn, name (masked), record}
  tab: "search",
  results: [],
  active: -1,
  bookFrom: clinicDate(),
  sessions: [],
  chosen: null,
  slip: null, // {visit, tickets, pending, link, qrUrl}
  walkin: null,
  boardTimer: null,
  butlers: null,
};

// ---- helpers -----------------------------------------------------------------------------

/** 刘小雨 → 刘*雨, 孙悦 → 孙*: names in lists and on the slip are masked. */
export function maskName(name) {
  const chars = Array.from(name || "");
  if (chars.length <= 1) return chars.join("");
  if (chars.length === 2) return `${chars[0]}*`;
  return chars[0] + "*".repeat(chars.length - 2) + chars[chars.length - 1];
}
function maskTail(text, keep = 4) {
  const s = String(text || "");
  if (s.includes("*")) return s;
  return s.length <= keep ? s : "*".repeat(Math.min(s.length - keep, 8)) + s.slice(-keep);
}
// The API names stations and exams in both languages (GET /v1/stations, /v1/exam-types:
// name, name_zh); read once at start. The table above is only for what the API does not name
// (an OGTT's timed draws are steps, not exam types) or an answer read before the catalogue.
const catalogue = { stations: new Map(), exams: new Map() };
async function loadCatalogue() {
  const [stations, exams] = await Promise.all([
    api("/v1/stations").then((r) => r.data.items).catch(() => []),
    api("/v1/exam-types").then((r) => r.data.items).catch(() => []),
  ]);
  for (const st of stations) catalogue.stations.set(st.code, st);
  for (const ex of exams) catalogue.exams.set(ex.code, ex);
}
function apiName(entry) {
  if (!entry) return "";
  return lang() === "zh" ? entry.name_zh || "" : entry.name || "";
}
function stationName(code, fallback) {
  const fromApi = apiName(catalogue.stations.get(code));
  if (fromApi) return fromApi;
  const key = `station.${code}`;
  const name = t(key);
  return name === key ? fallback || code : name;
}
function examName(code, label) {
  const entry = catalogue.exams.get(code);
  // a step with its own label ("1-hour draw" of the OGTT) is named by that step, not the exam
  const stepKey = `exam.${String(label || "").toLowerCase().replace(/[^a-z0-9]+/g, "_")}`;
  const isStep = label && entry && label !== entry.name;
  if (isStep && t(stepKey) !== stepKey) return t(stepKey);
  if (!isStep && apiName(entry)) return apiName(entry);
  const key = `exam.${String(label || code || "").toLowerCase().replace(/[^a-z0-9]+/g, "_")}`;
  const text = t(key);
  if (text !== key) return text;
  const byCode = t(`exam.${code}`);
  if (byCode !== `exam.${code}`) return byCode;
  return apiName(entry) || label || entry?.name || code;
}
function hhmm(time) {
  return String(time || "").slice(0, 5);
}
function dayLabel(iso) {
  const d = new Date(`${iso}T12:00:00Z`);
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "UTC", month: "short", day: "numeric", weekday: "short",
  }).format(d);
}
function addDays(iso, n) {
  const d = new Date(`${iso}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
function gradeBadge(grade, purple) {
  if (!grade) return "";
  return el("span", { class: "grade-label" }, el("span", { class: `grade ${grade}`, "aria-hidden": "true" }),
    t(`grade.${grade}`), purple && grade !== "purple" ? el("span", { class: "badge infection" }, t("grade.purple")) : "");
}
function statusBadge(status) {
  return el("span", { class: `status ${status}` }, t(`status.${status}`));
}
function problemText(err) {
  return err instanceof ApiError ? err.message : String(err);
}
async function butlerNames() {
  if (state.butlers) return state.butlers;
  state.butlers = new Map();
  try {
    const { data } = await api("/v1/butlers?limit=200");
    for (const b of data.items) state.butlers.set(b.id, b.display_name);
  } catch {
    // the names are a help, not a need
  }
  return state.butlers;
}

// ---- tabs --------------------------------------------------------------------------------

const TABS = ["search", "enrol", "book", "checkin", "board", "lab"];
function showTab(name, { focus = true } = {}) {
  state.tab = name;
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    const on = tab === name;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    $(`pane-${tab}`).hidden = !on;
  }
  $("slip").hidden = !state.slip;
  clearInterval(state.boardTimer);
  if (name === "board") {
    loadBoard();
    state.boardTimer = setInterval(loadBoard, 15000);
  }
  if (name === "book") loadCalendar();
  state.labStop?.();
  state.labStop = null;
  if (name === "lab") {
    loadReconciliation();
    // the worklist long-polls (ETag + ?wait=): a new result to reconcile shows without a click
    state.labStop = longPoll("/v1/worklist?open=true&limit=100", (data) => {
      loadWorklist(data.items);
      const typing = [...$("reconciliation").querySelectorAll("textarea")].some((x) => x.value);
      if (!typing) loadReconciliation();
    }, { wait: 25 });
  }
  if (focus) {
    const first = { search: "search-q", enrol: "e-mrn", book: "book-from", checkin: "checkin-scan", board: "board-date", lab: "lab-refresh" }[name];
    $(first)?.focus();
  }
  history.replaceState(null, "", `#${name}`);
}
for (const tab of TABS) {
  const button = $(`tab-${tab}`);
  button.addEventListener("click", () => showTab(tab));
  button.addEventListener("keydown", (event) => {
    const i = TABS.indexOf(tab);
    let j = null;
    if (event.key === "ArrowRight") j = (i + 1) % TABS.length;
    if (event.key === "ArrowLeft") j = (i + TABS.length - 1) % TABS.length;
    if (event.key === "Home") j = 0;
    if (event.key === "End") j = TABS.length - 1;
    if (j !== null) {
      event.preventDefault();
      showTab(TABS[j], { focus: false });
      $(`tab-${TABS[j]}`).focus();
    }
  });
}
document.addEventListener("keydown", (event) => {
  if (event.altKey && !event.ctrlKey && !event.metaKey && /^Digit[1-6]$/.test(event.code)) {
    event.preventDefault();
    showTab(TABS[Number(event.code.slice(5)) - 1]);
  }
  if (event.key === "Escape") {
    if (!$("detach-form").hidden) closeDetach();
  }
});

// ---- the current mother ------------------------------------------------------------------

function renderCurrent() {
  const bar = $("current-mother");
  if (!state.mother) {
    bar.hidden = true;
    bar.replaceChildren();
    return;
  }
  const m = state.mother;
  const ga = m.record?.pregnancy?.gestational_age?.display;
  bar.replaceChildren(
    el("span", { class: "muted" }, `${t("desk.current")}${lang() === "zh" ? "：" : ":"}`),
    el("strong", {}, m.name), " ", el("span", { class: "mono" }, m.mrn),
    ga ? el("span", { class: "muted" }, ` · ${t("f.ga.short")} ${ga}`) : "",
    el("button", { type: "button", class: "link", onclick: () => { state.mother = null; renderCurrent(); renderSummary(); } }, t("desk.current.clear")),
  );
  bar.hidden = false;
}

// ---- search as you type ------------------------------------------------------------------

const searchInput = $("search-q");
const resultsList = $("search-results");

let searchSeq = 0;
async function runSearch() {
  const text = searchInput.value.trim();
  const seq = ++searchSeq;
  if (!text) {
    state.results = [];
    renderResults();
    return;
  }
  let data;
  try {
    data = (await api(`/v1/mothers${query({ q: text, limit: 20 })}`)).data;
  } catch (err) {
    if (seq === searchSeq) toast(problemText(err), "error");
    return;
  }
  if (seq !== searchSeq) return; // a newer search answered first
  state.results = data.items;
  state.more = Boolean(data.page?.next_cursor);
  state.active = data.items.length ? 0 : -1;
  renderResults();
}
searchInput.addEventListener("input", debounce(runSearch, 200));

function renderResults() {
  const text = searchInput.value.trim();
  resultsList.replaceChildren(
    ...state.results.map((m, i) =>
      el("li", {
        id: `result-${i}`, role: "option", class: i === state.active ? "selected" : "",
        "aria-selected": String(i === state.active), "data-testid": "search-result",
        "data-mother-id": m.id, "data-mrn": m.mrn,
        onclick: () => openMother(m.id), onmousemove: () => setActive(i),
      },
      el("span", { class: "r-name" }, maskName(m.name)),
      el("span", { class: "r-mrn mono" }, m.mrn),
      el("span", { class: "r-phone mono" }, maskTail(m.phone)),
      el("span", { class: "r-id mono", title: t("f.national_id") }, `ID …${String(m.national_id || "").slice(-4)}`),
      el("span", { class: "r-ga" }, m.gestational_age ? `${m.gestational_age} ${lang() === "zh" ? "周" : "wk"}` : ""),
      el("span", { class: "r-grade" }, m.risk_grade ? el("span", { class: `grade ${m.risk_grade}`, title: t(`grade.${m.risk_grade}`) }) : ""),
      )),
  );
  if (state.more) resultsList.append(el("li", { class: "muted more", role: "presentation" }, t("desk.search.more")));
  $("search-empty").hidden = !(text && state.results.length === 0);
  searchInput.setAttribute("aria-expanded", String(state.results.length > 0));
  if (state.active >= 0) searchInput.setAttribute("aria-activedescendant", `result-${state.active}`);
  else searchInput.removeAttribute("aria-activedescendant");
}
function setActive(i) {
  if (i === state.active) return;
  state.active = i;
  for (const li of resultsList.querySelectorAll("li[role=option]")) {
    const on = li.id === `result-${i}`;
    li.classList.toggle("selected", on);
    li.setAttribute("aria-selected", String(on));
  }
  searchInput.setAttribute("aria-activedescendant", `result-${i}`);
  $(`result-${i}`)?.scrollIntoView({ block: "nearest" });
}
searchInput.addEventListener("keydown", (event) => {
  const n = state.results.length;
  if (event.key === "ArrowDown" && n) { event.preventDefault(); setActive((state.active + 1) % n); }
  else if (event.key === "ArrowUp" && n) { event.preventDefault(); setActive((state.active + n - 1) % n); }
  else if (event.key === "Enter") {
    event.preventDefault();
    const m = state.results[state.active];
    if (m) openMother(m.id);
  } else if (event.key === "Escape") {
    searchInput.value = "";
    state.results = [];
    renderResults();
  }
});

async function openMother(id, { show = true } = {}) {
  const tabAsked = state.tab;  // a clerk who moves on while her record loads is not pulled back
  let record;
  try {
    record = (await api(`/v1/mothers/${id}`)).data;
  } catch (err) {
    toast(problemText(err), "error");
    return;
  }
  state.mother = { id, mrn: record.mrn, name: maskName(record.name), fullName: record.name, record };
  renderCurrent();
  await renderSummary();
  if (state.tab !== tabAsked) return;
  if (show && state.tab !== "search") showTab("search", { focus: false });
  if (state.tab === "search") $("mother-summary").querySelector("h2")?.focus();
}

async function renderSummary() {
  const box = $("mother-summary");
  const m = state.mother;
  if (!m) {
    box.replaceChildren(el("p", { class: "muted" }, t("desk.summary.empty")));
    return;
  }
  const r = m.record;
  const p = r.pregnancy;
  const names = await butlerNames();
  const dl = (pairs) => el("dl", { class: "facts" }, ...pairs.filter(Boolean).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "—")]));
  const visitsBody = el("tbody", {});
  const reportsList = el("ul", { class: "plain reports", id: "mother-reports" });
  box.replaceChildren(
    el("div", { class: "row summary-head" },
      el("h2", { tabindex: "-1", "data-testid": "mother-name" }, r.name),
      el("span", { class: "mono", "data-testid": "mother-mrn" }, r.mrn),
      p ? gradeBadge(p.risk_grade, p.purple) : "",
      p?.infection_control ? el("span", { class: "badge infection" }, t("flag.infection")) : "",
      el("span", { class: "spacer" }),
      el("button", { type: "button", id: "summary-book", class: "primary", onclick: () => showTab("book") }, t("desk.summary.book")),
      el("button", { type: "button", id: "summary-checkin", onclick: () => { $("checkin-scan").value = r.mrn; showTab("checkin"); } }, t("desk.summary.checkin")),
    ),
    dl([
      [t("f.phone"), maskTail(r.phone)],
      [t("f.national_id"), maskTail(r.national_id)],
      [t("f.age"), String(r.age)],
      p && [t("f.ga.short"), `${p.gestational_age.display} ${lang() === "zh" ? "周" : "weeks"}`],
      p && [t("f.edd.short"), p.edd_date],
      p && [`${t("f.gravida")} / ${t("f.para")}`, `G${p.gravida} P${p.para}`],
      [t("f.butler"), names.get(r.primary_butler_id) || "—"],
    ]),
    el("h3", {}, t("desk.summary.visits")),
    el("div", { class: "table-wrap short" }, el("table", { id: "mother-visits" },
      el("thead", {}, el("tr", {}, el("th", {}, t("slip.date")), el("th", {}, t("desk.board.time")),
        el("th", {}, t("desk.board.status")), el("th", {}, t("desk.board.butlers")), el("th", {}, t("desk.board.tickets")))),
      visitsBody)),
    el("h3", {}, t("desk.summary.reports")),
    reportsList,
  );
  try {
    const { data } = await api(`/v1/visits${query({ mother_id: m.id })}`);
    const items = [...data.items].sort((a, b) => b.scheduled_at.localeCompare(a.scheduled_at));
    visitsBody.replaceChildren(...(items.length ? items.map((v) => el("tr", { "data-visit-id": v.id },
      el("td", {}, v.visit_date), el("td", {}, v.local_time),
      el("td", {}, statusBadge(v.status), v.walk_in ? el("span", { class: "badge" }, t("flag.walkin")) : ""),
      el("td", {}, v.butler_names.join("、")),
      el("td", {}, ...v.tickets.map(ticketChip)),
    )) : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("desk.summary.novisits")))]));
  } catch (err) {
    visitsBody.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "form-error" }, problemText(err))));
  }
  try {
    const { data } = await api(`/v1/reports${query({ mother_id: m.id })}`);
    reportsList.replaceChildren(...(data.items.length ? data.items.map((rep) => el("li", { class: "row" },
      rep.critical ? el("span", { class: "badge critical" }, t("flag.critical")) : "",
      el("span", {}, rep.display || rep.code || "—"),
      el("span", { class: "muted" }, dateTime(rep.issued_at || rep.received_at)),
      el("span", { class: "badge" }, t(`pickup.${rep.pickup_state}`)),
      el("span", { class: "spacer" }),
      el("button", { type: "button", "data-testid": "detach-report", "data-report-id": rep.id, onclick: () => openDetach(rep) }, t("desk.detach")),
    )) : [el("li", { class: "muted" }, t("desk.summary.noreports"))]));
  } catch (err) {
    reportsList.replaceChildren(el("li", { class: "form-error" }, problemText(err)));
  }
}

function ticketChip(tk) {
  return el("span", { class: `ticket-chip ${tk.state}`, title: `${stationName(tk.station, tk.station_name)} · ${t(`tstate.${tk.state}`)}` },
    tk.ticket, tk.room ? ` · ${tk.room}` : "");
}

// ---- enrol -------------------------------------------------------------------------------

const enrolForm = $("enrol-form");
enrolForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem(enrolForm);
  const f = new FormData(enrolForm);
  const val = (k) => (f.get(k) ?? "").toString().trim();
  const num = (k) => (val(k) === "" ? undefined : Number(val(k)));
  const body = {
    mrn: val("mrn"),
    name: val("name"),
    national_id: val("national_id").toUpperCase(),
    phone: val("phone"),
    date_of_birth: val("date_of_birth") || undefined,
    language: val("language") || undefined,
    height_cm: num("height_cm"),
    pre_pregnancy_weight_kg: num("pre_pregnancy_weight_kg"),
    pregnancy: {
      lmp_date: val("pregnancy.lmp_date") || undefined,
      edd_date: val("pregnancy.edd_date") || undefined,
      gravida: num("pregnancy.gravida"),
      para: num("pregnancy.para"),
      risk_grade: val("pregnancy.risk_grade"),
      risk_reason: val("pregnancy.risk_reason") || undefined,
    },
  };
  const button = $("enrol-submit");
  button.disabled = true;
  try {
    const { data } = await api("/v1/mothers", { method: "POST", body });
    toast(t("desk.enrol.done", { name: maskName(data.name), mrn: data.mrn, butler: data.assignment?.name || "—" }), "ok");
    enrolForm.reset();
    state.butlers = null;
    await openMother(data.id, { show: false });
    showTab("book");
  } catch (err) {
    showProblem(enrolForm, err);
  } finally {
    button.disabled = false;
  }
});
enrolForm.addEventListener("reset", () => clearProblem(enrolForm));

// ---- booking calendar --------------------------------------------------------------------

$("book-from").value = state.bookFrom;
$("book-from").addEventListener("change", () => { if ($("book-from").value) { state.bookFrom = $("book-from").value; loadCalendar(); } });
$("book-prev").addEventListener("click", () => { state.bookFrom = addDays(state.bookFrom, -7); $("book-from").value = state.bookFrom; loadCalendar(); });
$("book-next").addEventListener("click", () => { state.bookFrom = addDays(state.bookFrom, 7); $("book-from").value = state.bookFrom; loadCalendar(); });

let calendarAsked = 0;
async function loadCalendar() {
  const head = $("book-mother");
  head.textContent = state.mother ? t("desk.book.for", { name: state.mother.name, mrn: state.mother.mrn }) : t("desk.book.nobody");
  const to = addDays(state.bookFrom, 6);
  const cal = $("book-calendar");
  // Weeks asked for quickly one after another: only the last one asked draws the calendar
  // (an earlier, slower answer must not replace the week the clerk chose).
  const asked = ++calendarAsked;
  let data;
  try {
    data = (await api(`/v1/clinic-sessions${query({ from: state.bookFrom, to })}`)).data;
  } catch (err) {
    if (asked === calendarAsked) cal.replaceChildren(el("p", { class: "form-error" }, problemText(err)));
    return;
  }
  if (asked !== calendarAsked) return;
  state.sessions = data.items;
  const today = clinicDate();
  const days = Array.from({ length: 7 }, (_, i) => addDays(state.bookFrom, i));
  cal.replaceChildren(...days.map((day) => {
    const sessions = state.sessions.filter((s) => s.session_date === day);
    return el("div", { class: `day${day === today ? " today" : ""}` },
      el("h3", {}, dayLabel(day)),
      ...(sessions.length ? sessions.map((s) => {
        const full = s.places_left <= 0;
        const chosen = state.chosen?.id === s.id;
        return el("button", {
          type: "button", class: `session${full ? " full" : ""}${chosen ? " chosen" : ""}${!s.is_open ? " closed" : ""}`,
          "data-testid": "session", "data-session-id": s.id, "data-date": s.session_date, "aria-pressed": String(chosen),
          disabled: full || !s.is_open || day < today,
          onclick: () => chooseSession(s),
        },
        el("span", { class: "s-name" }, s.name),
        el("span", { class: "s-time" }, `${hhmm(s.starts_at)}–${hhmm(s.ends_at)}`),
        el("span", { class: "places-left" }, !s.is_open ? t("desk.book.closed") : full ? t("desk.book.full") : t("desk.book.left", { n: s.places_left })),
        loadBars(s),
        );
      }) : [el("p", { class: "muted none" }, t("desk.book.nosession"))]),
    );
  }));
  if (state.chosen) {
    const again = state.sessions.find((s) => s.id === state.chosen.id);
    if (again) chooseSession(again, { focus: false });
  }
  updateBookButton();
}

// The session's forecast work per station type against its rooms (only the types it needs):
// a bar each, the text beside it, so that the desk sees which station a booking would fill.
function stationLabel(load) {
  return (lang() === "zh" ? load.name_zh || load.name : load.name) || load.station_type;
}
function loadBars(s) {
  const loads = (s.stations || []).filter((st) => st.demand_minutes > 0 && (st.load_percent !== null || st.over));
  // One line each (the session button lays its children out in a column): bar, station, %;
  // the minutes in the tooltip and in what a screen reader says.
  return loads.map((st) => {
    const pct = st.load_percent === null ? 100 : Math.round(st.load_percent);
    const full = t(st.over ? "desk.book.loadover" : "desk.book.load", {
      station: stationLabel(st), pct, used: Math.round(st.demand_minutes), cap: Math.round(st.capacity_minutes),
    });
    return el("span", { class: `s-load${st.over ? " over" : ""}`, "data-testid": "station-load", "data-station-type": st.station_type, title: full, "aria-label": full },
      el("meter", { min: 0, max: 100, low: 80, high: 95, optimum: 0, value: Math.min(pct, 100), "aria-hidden": "true" }),
      ` ${stationLabel(st)} ${pct}%${st.over ? " !" : ""}`);
  });
}

// Refused for capacity: the next sessions with room, each a button that chooses it.
async function chooseAlternative(alt) {
  let found = state.sessions.find((x) => x.id === alt.session_id);
  if (!found) {
    state.bookFrom = alt.session_date;
    $("book-from").value = state.bookFrom;
    await loadCalendar();
    found = state.sessions.find((x) => x.id === alt.session_id);
  }
  if (found) {
    chooseSession(found);
    const hour = $("book-hour");  // the hour offered, so that the booking takes it
    if ([...hour.options].some((o) => o.value === hhmm(alt.hour))) hour.value = hhmm(alt.hour);
  }
}
function showAlternatives(problem, hour, sessionId) {
  const alts = problem.alternatives || [];
  // The hour asked for is full when the same session's other hours are offered; otherwise
  // (no hour asked for, or the whole session is full) the session is.
  const hourFull = hour && alts.some((a) => a.session_id === sessionId);
  const full = hourFull ? t("desk.book.overcap.hour", { hour }) : t("desk.book.overcap");
  $("book-result").replaceChildren(
    el("p", { class: "warn-note", role: "status" }, alts.length ? full : t("desk.book.noalt")),
    ...alts.map((a) => el("button", { type: "button", class: "alt-session", "data-testid": "alternative", "data-session-id": a.session_id, onclick: () => chooseAlternative(a) },
      t("desk.book.alt", { day: dayLabel(a.session_date), name: a.name, hour: hhmm(a.hour), arrive: hhmm(a.arrival_at_local), n: a.places_left }))));
}

// The booking's warnings: in Chinese from their codes; in English (and for a code this
// screen does not know yet) the server's own text, which says a little more.
function noticeLines(data) {
  const notices = data.notices || (data.warnings || []).map((text) => ({ code: "", params: {}, text }));
  return notices.map((n) => {
    const key = `desk.notice.${n.code}`;
    const params = { ...(n.params || {}) };
    if (params.exams) params.exams = params.exams.split(", ").map((c) => (hasString(`exam.${c}`) ? t(`exam.${c}`) : c)).join("、");
    const text = lang() === "zh" && n.code && hasString(key) ? t(key, params) : n.text;
    return el("p", { class: "warn-note", "data-testid": "notice", "data-code": n.code || "" }, text);
  });
}

function chooseSession(s, { focus = true } = {}) {
  state.chosen = s;
  for (const b of $("book-calendar").querySelectorAll("button.session")) {
    const on = b.dataset.sessionId === s.id;
    b.classList.toggle("chosen", on);
    b.setAttribute("aria-pressed", String(on));
  }
  $("book-chosen").textContent = t("desk.book.chosen", { day: dayLabel(s.session_date), name: s.name, from: hhmm(s.starts_at), to: hhmm(s.ends_at) });
  const hour = $("book-hour");
  const hours = (s.hours || []).filter((h) => h.places_left > 0);
  hour.replaceChildren(el("option", { value: "" }, t("desk.book.anyhour")),
    ...hours.map((h) => el("option", { value: hhmm(h.starts_at) }, t("desk.book.hourleft", { time: hhmm(h.starts_at), n: h.places_left }))));
  hour.disabled = false;
  updateBookButton();
  if (focus) hour.focus();
}
function updateBookButton() {
  $("book-submit").disabled = !(state.mother && state.chosen);
}

$("book-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("book-form");
  clearProblem(form);
  if (!state.mother || !state.chosen) return;
  const body = { mother_id: state.mother.id, session_id: state.chosen.id, preferred_time: $("book-hour").value || undefined };
  $("book-submit").disabled = true;
  try {
    const { data } = await api("/v1/visits", { method: "POST", body });
    const text = t("desk.book.done", { day: dayLabel(data.visit_date), time: clockTime(data.scheduled_at), session: state.chosen.name });
    const arrival = data.arrival_at_local ? t("desk.book.arrival", { time: data.arrival_at_local }) : null;
    $("book-result").replaceChildren(el("p", { class: "ok-note", role: "status" }, text),
      ...(arrival ? [el("p", { class: "ok-note", "data-testid": "arrival" }, arrival)] : []),
      ...noticeLines(data));
    toast(text, "ok");
    state.chosen = null;
    $("book-hour").replaceChildren();
    $("book-hour").disabled = true;
    $("book-chosen").textContent = t("desk.book.choose");
    await loadCalendar();
  } catch (err) {
    const problem = err instanceof ApiError ? err.problem : null;
    const overCapacity = problem && String(problem.type || "").endsWith("/station-over-capacity");
    // Chinese first with English, from the problem's type (the server's detail is English).
    showProblem(form, overCapacity ? new ApiError(err.status, { ...problem, detail: t("desk.problem.station-over-capacity") }) : err);
    if (overCapacity) showAlternatives(problem, body.preferred_time, body.session_id);
    else $("book-result").replaceChildren();
  } finally {
    updateBookButton();
  }
});

// ---- check-in ----------------------------------------------------------------------------

const checkinForm = $("checkin-form");
const scan = $("checkin-scan");
checkinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = scan.value.trim();
  if (!value) return;
  await checkIn({ scan: value });
});

async function checkIn(body) {
  clearProblem(checkinForm);
  hideWalkin();
  $("checkin-result").replaceChildren();
  let data;
  try {
    data = (await api("/v1/check-ins", { method: "POST", body })).data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && String(err.problem.type || "").endsWith("booked-another-day")) {
      showWalkin(body, err.problem);
      return;
    }
    showProblem(checkinForm, err);
    scan.select();
    return;
  }
  const note = data.already_checked_in ? t("desk.checkin.again") : body.walk_in || data.walk_in ? t("desk.checkin.walkin") : t("desk.checkin.done");
  $("checkin-result").replaceChildren(
    el("p", { class: "ok-note", role: "status" }, note),
    ...(data.warnings || []).map((w) => el("p", { class: "warn-note" }, w)),
  );
  toast(note, "ok");
  scan.value = "";
  await buildSlip(data);
  scan.focus();
}

function showWalkin(body, problem) {
  state.walkin = body;
  const day = problem.booked_on ? dayLabel(problem.booked_on) : "?";
  const text = $("walkin-text");
  text.replaceChildren();
  const parts = t("desk.walkin.text", { day: "\u0000", time: problem.booked_time || "", session: problem.session_name || "" }).split("\u0000");
  text.append(parts[0], el("strong", { "data-testid": "booked-day" }, `${day}${problem.booked_on ? ` (${problem.booked_on})` : ""}`), parts[1] ?? "");
  $("walkin-warning").hidden = false;
  $("walkin-cancel").focus();
}
function hideWalkin() {
  $("walkin-warning").hidden = true;
  state.walkin = null;
}
$("walkin-confirm").addEventListener("click", () => {
  const body = state.walkin;
  if (body) checkIn({ ...body, walk_in: true });
});
$("walkin-cancel").addEventListener("click", () => {
  hideWalkin();
  toast(t("desk.walkin.cancelled"));
  scan.select();
  scan.focus();
});
$("walkin-warning").addEventListener("keydown", (event) => {
  if (event.key === "Escape") $("walkin-cancel").click();
});

// ---- the slip ----------------------------------------------------------------------------

async function buildSlip(visit) {
  if (state.slip?.qrUrl) URL.revokeObjectURL(state.slip.qrUrl);
  state.slip = { visit, tickets: [], pending: [], name: "", mrn: "", link: null, qrUrl: null, linkState: "" };
  try {
    const { data } = await api(`/v1/visits${query({ date: visit.visit_date, mother_id: visit.mother_id })}`);
    const item = data.items.find((v) => v.id === visit.id) || data.items[0];
    if (item) Object.assign(state.slip, { tickets: item.tickets, name: item.mother_masked_name, mrn: item.mother_mrn });
  } catch {
    // the queue below still gives the tickets
  }
  try {
    const { data } = await api(`/v1/visits/${visit.id}/queue`);
    if (!state.slip.tickets.length) {
      state.slip.tickets = data.places.map((p) => ({ ticket: p.ticket, station: p.station, station_name: p.station, room: p.room, state: p.state }));
      state.slip.name ||= data.places[0]?.masked_name || "";
    }
    state.slip.pending = data.not_yet_queued || []; // named at render: the language may switch
  } catch {
    // tickets from the visit list are enough
  }
  if (visit.already_checked_in) {
    // a repeated scan: her slip's QR still works; a new link would revoke it, so only on request
    state.slip.linkState = t("slip.haslink");
  } else {
    await newLink({ render: false });
  }
  renderSlip();
}

async function newLink({ render = true } = {}) {
  const slip = state.slip;
  if (!slip) return;
  try {
    const { data } = await api(`/v1/visits/${slip.visit.id}/her-link`, { method: "POST" });
    slip.link = data;
    if (slip.qrUrl) URL.revokeObjectURL(slip.qrUrl);
    slip.qrUrl = data.qr_svg ? URL.createObjectURL(new Blob([data.qr_svg], { type: "image/svg+xml" })) : null;
    slip.linkState = "";
  } catch (err) {
    slip.link = null;
    slip.qrUrl = null;
    slip.linkState = err instanceof ApiError && (err.status === 404 || err.status === 405) ? t("slip.noqr") : problemText(err);
  }
  if (render) renderSlip();
}

function renderSlip() {
  const box = $("slip");
  const s = state.slip;
  if (!s) { box.hidden = true; return; }
  const v = s.visit;
  box.replaceChildren(
    el("header", { class: "slip-head" },
      el("p", { class: "slip-clinic" }, t("slip.clinic")),
      el("h2", { id: "slip-title" }, t("slip.title")),
    ),
    el("p", { class: "slip-who" },
      el("strong", { "data-testid": "slip-name" }, s.name || "—"), " ",
      el("span", { class: "mono" }, s.mrn ? maskTail(s.mrn, 4) : ""),
    ),
    el("p", { class: "slip-date", "data-testid": "slip-date" }, `${t("slip.date")}：${v.visit_date}  ${clockTime(v.arrived_at || v.scheduled_at)}`,
      v.walk_in ? el("span", { class: "badge" }, t("flag.walkin")) : ""),
    el("table", { id: "slip-tickets" },
      el("thead", {}, el("tr", {}, el("th", {}, t("slip.station")), el("th", {}, t("slip.ticket")), el("th", {}, t("slip.room")))),
      el("tbody", {}, ...(s.tickets.length ? s.tickets.map((tk) => el("tr", { "data-testid": "slip-ticket" },
        el("td", {}, stationName(tk.station, tk.station_name)),
        el("td", { class: "slip-ticket" }, tk.ticket),
        el("td", {}, tk.room ? String(tk.room) : t("slip.room.later")),
      )) : [el("tr", {}, el("td", { colspan: 3 }, t("slip.notickets")))])),
    ),
    s.pending.length ? el("p", { class: "slip-pending" }, t("slip.pending", { what: s.pending.map((p) => examName(p.exam_code, p.label)).join(lang() === "zh" ? "、" : ", ") })) : "",
    s.qrUrl
      ? el("figure", { class: "slip-qr" },
        el("img", { id: "slip-qr", src: s.qrUrl, alt: t("slip.qr"), width: 160, height: 160 }),
        el("figcaption", {}, t("slip.qr"), s.link?.expires_at ? el("span", { class: "muted" }, ` ${t("slip.expires", { time: dateTime(s.link.expires_at) })}`) : ""))
      : "",
    el("p", { id: "slip-link-state", class: "muted no-print", role: "status" }, s.linkState),
    el("p", { class: "row no-print slip-actions" },
      el("button", { type: "button", id: "slip-print", class: "primary", onclick: () => window.print() }, t("slip.print")),
      s.link
        ? el("button", { type: "button", id: "slip-revoke", class: "danger", onclick: revokeLink }, t("slip.revoke"))
        : el("button", { type: "button", id: "slip-newlink", onclick: () => newLink() }, t("slip.newlink")),
    ),
  );
  box.hidden = false;
}

async function revokeLink() {
  const s = state.slip;
  if (!s?.link) return;
  if (!window.confirm(t("slip.revoke.confirm"))) return;
  try {
    await api(`/v1/visits/${s.visit.id}/her-link`, { method: "DELETE" });
    if (s.qrUrl) URL.revokeObjectURL(s.qrUrl);
    Object.assign(s, { link: null, qrUrl: null, linkState: t("slip.revoked") });
    toast(t("slip.revoked"), "ok");
    renderSlip();
    $("slip-newlink")?.focus();
  } catch (err) {
    toast(problemText(err), "error");
  }
}

// ---- today's board -----------------------------------------------------------------------

$("board-date").value = clinicDate();
$("board-date").addEventListener("change", loadBoard);
$("board-refresh").addEventListener("click", loadBoard);
let boardUsesList = true;

async function loadBoard() {
  const day = $("board-date").value || clinicDate();
  const body = $("board-table").tBodies[0];
  let rows;
  let counts;
  try {
    if (boardUsesList) {
      try {
        const { data } = await api(`/v1/visits${query({ date: day })}`);
        rows = data.items;
        counts = data.counts;
      } catch (err) {
        if (!(err instanceof ApiError) || ![404, 405].includes(err.status)) throw err;
        boardUsesList = false;
      }
    }
    if (!boardUsesList) {
      const { data } = await api(`/v1/visits/board${query({ date: day })}`);
      const names = await butlerNames();
      rows = data.sessions.flatMap((s) => s.visits.map((v) => ({
        id: v.visit_id, mother_id: v.mother_id, mother_mrn: v.mrn, mother_masked_name: maskName(v.name),
        status: v.status, scheduled_at: v.scheduled_at, local_time: clockTime(v.scheduled_at), walk_in: v.walk_in,
        urgent: false, checked_in_at: null, butler_names: v.accompanying_butler_id ? [names.get(v.accompanying_butler_id) || ""] : [], tickets: [],
      })));
      counts = {};
      for (const s of data.sessions) for (const [k, n] of Object.entries(s.counts)) counts[k] = (counts[k] || 0) + n;
    }
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "form-error" }, problemText(err))));
    return;
  }
  rows.sort((a, b) => a.scheduled_at.localeCompare(b.scheduled_at));
  body.replaceChildren(...(rows.length ? rows.map((v) => el("tr", {
    "data-visit-id": v.id, class: `st-${v.status}`, tabindex: "0",
    onclick: () => openMother(v.mother_id),
    onkeydown: (e) => { if (e.key === "Enter") openMother(v.mother_id); },
  },
  el("td", { "data-testid": "board-time", class: "mono" }, v.local_time || clockTime(v.scheduled_at)),
  el("td", { class: "mono" }, v.mother_mrn),
  el("td", {}, v.mother_masked_name, v.urgent ? el("span", { class: "badge urgent" }, t("flag.urgent")) : "", v.walk_in ? el("span", { class: "badge" }, t("flag.walkin")) : ""),
  el("td", {}, statusBadge(v.status)),
  el("td", { class: "mono" }, v.checked_in_at ? clockTime(v.checked_in_at) : ""),
  el("td", { "data-testid": "board-butlers" }, (v.butler_names || []).filter(Boolean).join("、")),
  el("td", {}, ...(v.tickets || []).map(ticketChip)),
  )) : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("desk.board.empty")))]));
  $("board-counts").replaceChildren(...Object.entries(counts || {}).filter(([, n]) => n).map(([k, n]) =>
    el("span", { class: `status ${k}` }, t("desk.board.count", { label: t(`status.${k}`), n }))));
  $("board-asof").textContent = t("desk.board.asof", { time: clockTime(new Date().toISOString(), { seconds: true }) });
}

// ---- lab work ----------------------------------------------------------------------------

$("lab-refresh").addEventListener("click", loadLab);

async function loadLab() {
  await Promise.all([loadWorklist(), loadReconciliation()]);
}

async function loadWorklist(given) {
  const list = $("worklist");
  let items = given;
  if (!items) {
    try {
      items = (await api("/v1/worklist?open=true&limit=100")).data.items;
    } catch (err) {
      list.replaceChildren(el("li", { class: "form-error" }, problemText(err)));
      return;
    }
  }
  items = [...items];
  // priority 0 is critical (act now), 1 today, 2 when possible: the API sends them in that order
  items.sort((a, b) => (a.priority - b.priority) || a.created_at.localeCompare(b.created_at));
  list.replaceChildren(...(items.length ? items.map((item) => {
    const critical = item.priority === 0;
    const note = el("input", { name: "note", "aria-label": t("desk.worklist.note"), placeholder: t("desk.worklist.note"), maxlength: 500 });
    const form = el("form", { class: "row ack" }, note,
      el("button", { type: "submit", "data-testid": "ack" }, t("desk.worklist.ack")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api(`/v1/worklist/${item.id}/acknowledge`, { method: "POST", body: { note: note.value.trim() || t("desk.worklist.ack") } });
        loadWorklist();
      } catch (err) {
        toast(problemText(err), "error");
      }
    });
    return el("li", { class: `wl${critical ? " critical" : ""}`, "data-testid": "worklist-item", "data-item-id": item.id },
      el("div", { class: "row" },
        critical ? el("span", { class: "badge critical" }, t("flag.critical")) : el("span", { class: "badge" }, t(`prio.${item.priority}`)),
        // Chinese: a heading from the kind, the API's (English) title below it; English: the title alone
        el("strong", { class: "wl-heading" }, lang() === "zh" ? worklistHeading(item) : item.title),
        el("span", { class: "spacer" }),
        el("span", { class: "muted" }, dateTime(item.created_at))),
      lang() === "zh" ? el("p", { class: "wl-title muted", lang: "en" }, item.title) : "",
      item.mother_id ? el("p", { class: "row who" },
        el("button", { type: "button", class: "link", onclick: () => openMother(item.mother_id) },
          `${item.mother_masked_name || ""} ${item.mother_mrn || ""}`.trim() || t("desk.current"))) : "",
      form);
  }) : [el("li", { class: "muted" }, t("desk.worklist.empty"))]));
}

function worklistHeading(item) {
  const key = `wl.${item.kind}`;
  if (item.kind && t(key) !== key) return t(key);
  return t(`wl.other.${[0, 1, 2].includes(item.priority) ? item.priority : 1}`);
}

const candidateNames = new Map();
async function candidateLabel(id) {
  if (!candidateNames.has(id)) {
    candidateNames.set(id, api(`/v1/mothers/${id}`).then(({ data }) => data).catch(() => null));
  }
  return candidateNames.get(id);
}

async function loadReconciliation() {
  const box = $("reconciliation");
  let items;
  try {
    items = (await api("/v1/reconciliation?limit=50")).data.items;
  } catch (err) {
    box.replaceChildren(el("p", { class: "form-error" }, problemText(err)));
    return;
  }
  if (!items.length) {
    box.replaceChildren(el("p", { class: "muted" }, t("desk.recon.empty")));
    return;
  }
  const cards = [];
  for (const held of items) cards.push(await heldCard(held));
  box.replaceChildren(...cards);
}

async function heldCard(held) {
  const rep = held.report;
  const form = el("form", { class: "attach", novalidate: true });
  const error = el("p", { class: "form-error", tabindex: "-1", hidden: true });
  const candidates = [];
  for (const c of held.candidates) {
    const m = await candidateLabel(c.mother_id);
    candidates.push(el("fieldset", { class: "candidate", "data-testid": "candidate", "data-mother-id": c.mother_id },
      el("legend", {}, m ? `${maskName(m.name)} ${m.mrn}` : c.mother_id, " ",
        el("span", { class: "muted" }, t("desk.recon.score", { n: c.score }))),
      c.reasons.length ? el("p", { class: "reasons ok-text" }, c.reasons.join("；")) : "",
      c.disagreements.length ? el("p", { class: "reasons warn-text" }, c.disagreements.join("；")) : "",
      ...(c.open_orders.length ? c.open_orders.map((o) => {
        const id = `o-${rep.id}-${o.exam_order_id}`;
        return el("div", { class: "order" },
          el("input", { type: "radio", id, name: "exam_order_id", value: o.exam_order_id, required: true }),
          el("label", { for: id, class: "inline" }, `${o.order_number} · ${examName(o.exam_code)} · ${o.visit_date}`,
            o.named_in_message ? el("span", { class: "badge ok" }, t("desk.recon.named")) : ""));
      }) : [el("p", { class: "muted" }, t("desk.recon.noorders"))]),
    ));
  }
  const reasonId = `reason-${rep.id}`;
  const overrideId = `override-${rep.id}`;
  const hasOrders = held.candidates.some((c) => c.open_orders.length);
  form.append(error,
    ...(candidates.length ? candidates : [el("p", { class: "muted" }, t("desk.recon.nocandidate"))]),
    hasOrders ? el("div", { class: "attach-fields" },
      el("label", { for: reasonId }, t("desk.reason")),
      el("textarea", { id: reasonId, name: "reason", rows: 2, maxlength: 500, required: true }),
      el("div", { class: "row" },
        el("input", { type: "checkbox", id: overrideId, name: "override" }),
        el("label", { for: overrideId, class: "inline" }, t("desk.recon.override"))),
      el("p", { class: "row" }, el("button", { type: "submit", class: "primary", "data-testid": "attach" }, t("desk.recon.attach")))) : "");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearProblem(form);
    const fd = new FormData(form);
    const order = fd.get("exam_order_id");
    if (!order) {
      error.textContent = t("desk.recon.chooseorder");
      error.hidden = false;
      error.focus();
      return;
    }
    try {
      await api(`/v1/reports/${rep.id}/attach`, {
        method: "POST",
        body: { exam_order_id: order, reason: String(fd.get("reason") || "").trim(), override: fd.get("override") === "on" },
      });
      toast(t("desk.recon.attached"), "ok");
      loadLab();
    } catch (err) {
      showProblem(form, err);
    }
  });
  const sent = held.patient;
  return el("article", { class: `held${rep.critical ? " critical" : ""}`, "data-testid": "held-result", "data-report-id": rep.id },
    el("header", { class: "row" },
      rep.critical ? el("span", { class: "badge critical" }, t("flag.critical")) : "",
      el("strong", {}, rep.display || rep.code || "—"),
      el("span", { class: "muted" }, t("desk.recon.obs", { n: held.observation_count })),
      el("span", { class: "spacer" }),
      el("span", { class: "muted" }, `${t("desk.recon.received")} ${dateTime(rep.received_at)}`)),
    el("dl", { class: "facts compact" },
      el("dt", {}, t("desk.recon.sent")),
      el("dd", {}, [sent.name ? maskName(sent.name) : "", sent.mrn, sent.birth_date].filter(Boolean).join(" · ") || "—"),
      el("dt", {}, t("desk.recon.reason")),
      el("dd", {}, rep.reconciliation_reason || rep.status_note || "—")),
    el("h4", {}, t("desk.recon.candidates")),
    form);
}

// ---- detach ------------------------------------------------------------------------------

const detachForm = $("detach-form");
let detaching = null;
let detachReturn = null;
function openDetach(rep) {
  detaching = rep;
  detachReturn = document.activeElement;
  clearProblem(detachForm);
  detachForm.reason.value = "";
  $("detach-what").textContent = `${rep.display || rep.code || ""} · ${dateTime(rep.issued_at || rep.received_at)}`;
  detachForm.hidden = false;
  detachForm.reason.focus();
}
function closeDetach() {
  detachForm.hidden = true;
  detaching = null;
  detachReturn?.focus?.();
}
$("detach-cancel").addEventListener("click", closeDetach);
detachForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!detaching) return;
  try {
    await api(`/v1/reports/${detaching.id}/detach`, { method: "POST", body: { reason: detachForm.reason.value.trim() } });
    toast(t("desk.detach.done"), "ok");
    closeDetach();
    renderSummary();
  } catch (err) {
    showProblem(detachForm, err);
  }
});

// ---- start -------------------------------------------------------------------------------

function rerender() {
  applyI18n(document);
  renderCurrent();
  renderResults();
  renderSummary();
  if (state.tab === "book") loadCalendar();
  if (state.tab === "board") loadBoard();
  if (state.tab === "lab") loadLab();
  if (state.slip) renderSlip();
}

await loadCatalogue(); // the stations' and exams' names in both languages (two small reads)
const wanted = location.hash.slice(1);
showTab(TABS.includes(wanted) ? wanted : "search");
