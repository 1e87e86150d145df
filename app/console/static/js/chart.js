// The doctor's and nutritionist's screen: find a mother, read her chart (timeline of visits,
// measurements and results with flags; reports; care plan; health-management plan with its
// charts, versions and signature; rule firings and flags with the doctor's decision; reviews),
// and work the two lists: reports to review, critical values to close.
import {
  ApiError, addStrings, api, boot, clearProblem, clinicDate, clockTime, dateTime, debounce, el, imageUrl,
  lang, query, requireRole, showProblem, t, toast, topbar,
} from "./core.js";

addStrings({
  "chart.title": ["孕妇档案与审核", "Charts and reviews"],
  "chart.side.search": ["查找孕妇", "Find a mother"],
  "chart.side.review": ["待审核报告", "To review"],
  "chart.side.today": ["今日就诊", "Today"],
  "chart.today.empty": ["今日暂无就诊", "No visits today"],
  "chart.side.alerts": ["危急值", "Critical"],
  "chart.search.label": ["姓名、拼音、病历号、手机尾号或身份证号", "Name, pinyin, MRN, phone's last 4 or national id"],
  "chart.search.placeholder": ["如 lxh、MRN0001、8001", "e.g. lxh, MRN0001, 8001"],
  "chart.search.go": ["查找", "Search"],
  "chart.search.none": ["没有找到", "No one found"],
  "chart.empty": ["在左侧查找孕妇，或打开待审核报告、危急值。", "Find a mother on the left, or open a report to review or a critical value."],
  "chart.empty.today": ["在左侧选择今日就诊的孕妇。", "Choose a mother from today's visits on the left."],
  "chart.tab.timeline": ["时间线", "Timeline"],
  "chart.tab.reports": ["检验报告", "Reports"],
  "chart.tab.careplan": ["产检计划", "Care plan"],
  "chart.tab.healthplan": ["健康管理方案", "Health plan"],
  "chart.tab.rules": ["规则与标记", "Rules and flags"],
  "chart.tab.reviews": ["审核记录", "Reviews"],
  "chart.age": ["{n} 岁", "age {n}"],
  "chart.ga": ["孕 {ga} 周", "GA {ga}"],
  "chart.edd": ["预产期 {d}", "EDD {d}"],
  "chart.gp": ["G{g}P{p}", "G{g}P{p}"],
  "chart.infection": ["感染防控", "Infection control"],
  "chart.managed": ["专案管理", "Managed case"],
  "chart.none": ["暂无", "None yet"],
  "chart.loading": ["加载中…", "Loading…"],
  "chart.reviewing": ["审核报告：{name}", "Reviewing: {name}"],
  "grade.green": ["绿色（低风险）", "Green (low risk)"],
  "grade.yellow": ["黄色（一般风险）", "Yellow (moderate)"],
  "grade.orange": ["橙色（较高风险）", "Orange (high)"],
  "grade.red": ["红色（高风险）", "Red (very high)"],
  "grade.purple": ["紫色（传染病）", "Purple (infectious disease)"],
  // timeline
  "tl.when": ["时间", "When"],
  "tl.ga": ["孕周", "GA"],
  "tl.what": ["项目", "Item"],
  "tl.value": ["结果", "Result"],
  "tl.flag": ["标记", "Flag"],
  "tl.source": ["来源", "Source"],
  "tl.visit": ["就诊", "Visit"],
  "tl.by_mother": ["孕妇自报", "Reported by her"],
  "tl.unmapped": ["另有 {n} 项结果未归入时间线（见检验报告）", "{n} more results not on the timeline (see Reports)"],
  "kind.height": ["身高", "Height"],
  "kind.pre_pregnancy_weight": ["孕前体重", "Pre-pregnancy weight"],
  "kind.weight": ["体重", "Weight"],
  "kind.blood_pressure": ["血压", "Blood pressure"],
  "kind.pulse": ["脉搏", "Pulse"],
  "kind.fundal_height": ["宫高", "Fundal height"],
  "kind.fetal_heart_rate": ["胎心率", "Fetal heart rate"],
  "kind.urine_protein": ["尿蛋白", "Urine protein"],
  "kind.nst": ["胎心监护", "NST"],
  "kind.haemoglobin": ["血红蛋白", "Haemoglobin"],
  "kind.glucose_fasting": ["空腹血糖", "Fasting glucose"],
  "kind.ogtt_1h": ["OGTT 1 小时", "OGTT 1 h"],
  "kind.ogtt_2h": ["OGTT 2 小时", "OGTT 2 h"],
  "kind.glucose": ["血糖", "Glucose"],
  "visit.booked": ["已预约", "Booked"],
  "visit.checked_in": ["已签到", "Checked in"],
  "visit.in_progress": ["就诊中", "In progress"],
  "visit.completed": ["已完成", "Completed"],
  "visit.cancelled": ["已取消", "Cancelled"],
  "visit.no_show": ["未到", "No-show"],
  // reports
  "rep.name": ["报告", "Report"],
  "rep.status": ["状态", "Status"],
  "rep.pickup": ["领取", "Pick-up"],
  "rep.issued": ["出报告", "Issued"],
  "rep.critical": ["危急", "Critical"],
  "rep.abnormal": ["异常", "Abnormal"],
  "rep.review": ["审核", "Review"],
  "rep.obs.item": ["项目", "Item"],
  "rep.obs.value": ["结果", "Value"],
  "rep.obs.range": ["参考范围", "Range"],
  "rep.obs.flag": ["标记", "Flag"],
  "pickup.not_ready": ["未出", "Not ready"],
  "pickup.ready": ["待取", "Ready"],
  "pickup.picked_up": ["已取", "Picked up"],
  "pickup.delivered": ["已解读", "Delivered"],
  "pickup.withdrawn": ["已撤回", "Withdrawn"],
  // review form
  "rv.title": ["审核报告", "Review the report"],
  "rv.interpretation": ["结果解读", "Interpretation"],
  "rv.abnormal": ["异常项（默认为检验科标记的项目）", "Abnormal items (the lab's flags unless you change them)"],
  "rv.advice": ["给孕妇的建议（由管家转达）", "Advice for the mother (her butler brings it)"],
  "rv.followup": ["随访", "Follow-up"],
  "rv.followup.none": ["无需随访", "No follow-up"],
  "fu.repeat_test": ["复查", "Repeat the test"],
  "fu.see_nutritionist": ["营养门诊", "See the nutritionist"],
  "fu.call_mother": ["电话随访", "Call the mother"],
  "fu.see_doctor": ["医生复诊", "See the doctor"],
  "fu.other": ["其他", "Other"],
  "rv.in_days": ["天后", "in days"],
  "rv.exam_code": ["复查项目代码（如 cbc）", "Exam code to repeat (e.g. cbc)"],
  "rv.note": ["随访说明", "Follow-up note"],
  "rv.submit": ["提交审核", "Sign the review"],
  "rv.done": ["已审核，建议已发给管家", "Reviewed: the advice went to her butler"],
  "rv.earlier": ["此报告的较早版本已由 {name} 审核", "An earlier version was reviewed by {name}"],
  "rv.doctor_only": ["只有医生可以审核报告。", "Only a doctor reviews reports."],
  "rv.waiting": ["等待 {time}", "waiting since {time}"],
  "rv.empty": ["没有待审核的报告", "No report waits for review"],
  // alerts
  "al.title": ["关闭危急值", "Close the critical value"],
  "al.read_back": ["复述确认（读回结果）", "Read-back (the value, read back)"],
  "al.action": ["处理措施", "Action taken"],
  "al.submit": ["确认关闭", "Close it"],
  "al.done": ["危急值已关闭", "Critical value closed"],
  "al.due": ["{time} 前处理", "due by {time}"],
  "al.overdue": ["已超时", "overdue"],
  "al.contacted": ["已联系孕妇：{note}", "Mother reached: {note}"],
  "al.tier": ["第 {n} 级", "tier {n}"],
  "tier.doctor_on_duty": ["值班医生", "Doctor on duty"],
  "tier.senior_doctor": ["上级医生", "Senior doctor"],
  "tier.department_head": ["科主任", "Head of department"],
  "al.empty": ["没有未关闭的危急值", "No open critical value"],
  "al.doctor_only": ["只有医生可以关闭危急值。", "Only a doctor closes a critical value."],
  // care plan
  "cp.next": ["下次产检：{from} 至 {to}", "Next visit: {from} to {to}"],
  "cp.windows": ["产检时间窗", "Visit windows"],
  "cp.window.range": ["孕{from}–{to}周产检", "{from}–{to}-week visit"],
  "cp.window.week": ["孕{from}周产检", "{from}-week visit"],
  "cp.booking": ["首次检查", "Booking panel"],
  "cp.indicated": ["指征检查", "Indicated exams"],
  "cp.choices": ["孕妇的选择", "Her choices"],
  "cp.visits": ["就诊", "Visits"],
  "cp.fasting": ["空腹", "Fasting"],
  "cp.guideline": ["指南 {code} {version}", "Guideline {code} {version}"],
  "ws.done": ["已完成", "Done"], "ws.awaiting_results": ["等待结果", "Awaiting results"],
  "ws.in_progress": ["进行中", "In progress"], "ws.booked": ["已预约", "Booked"], "ws.due": ["应检", "Due"],
  "ws.upcoming": ["未到", "Upcoming"], "ws.incomplete": ["未完成", "Incomplete"], "ws.overdue": ["已逾期", "Overdue"],
  "ws.before_enrolment": ["建档前", "Before enrolment"],
  "is.upcoming": ["未到", "Upcoming"], "is.due": ["应检", "Due"], "is.offered": ["已告知", "Offered"],
  "is.ordered": ["已开单", "Ordered"], "is.awaiting_result": ["等待结果", "Awaiting result"],
  "is.resulted": ["已出结果", "Resulted"], "is.recorded_elsewhere": ["外院结果", "Recorded elsewhere"],
  "is.declined": ["已拒绝", "Declined"], "is.not_chosen": ["未选择", "Not chosen"], "is.missed": ["已错过", "Missed"],
  "is.before_enrolment": ["建档前", "Before enrolment"],
  // health plan
  "hp.none": ["尚无健康管理方案。", "She has no health-management plan yet."],
  "hp.generate": ["生成方案草稿", "Generate a draft"],
  "hp.regenerate": ["按最新数据重新生成", "Regenerate from her data"],
  "hp.note": ["说明", "Note"],
  "hp.sign": ["签署第 {n} 版（生效）", "Sign version {n} (brings it into force)"],
  "hp.signed": ["第 {n} 版已由 {name} 于 {at} 签署生效", "Version {n} signed by {name}, {at}"],
  "hp.unsigned": ["第 {n} 版为草稿，未签署", "Version {n} is a draft, not signed"],
  "hp.in_force": ["现行：第 {n} 版", "In force: version {n}"],
  "hp.stale": ["方案需更新：", "The plan is out of date: "],
  "hp.versions": ["版本", "Versions"],
  "hp.charts": ["图表", "Charts"],
  "hp.chart.weight": ["孕期体重增长", "Weight gain"],
  "hp.chart.bp": ["血压", "Blood pressure"],
  "hp.chart.none": ["暂无数据", "No data yet"],
  "hp.for_butler": ["管家执行", "Butler's task"],
  "hp.done.sign": ["方案已签署生效", "Plan signed"],
  "hp.done.generate": ["已生成新草稿", "New draft made"],
  "sec.nutrition": ["营养", "Nutrition"],
  "sec.weight": ["体重管理", "Weight"],
  "sec.fetal_monitoring": ["胎儿监护", "Fetal monitoring"],
  "sec.follow_ups": ["随访与处理", "Follow-ups"],
  "sec.exercise": ["运动", "Exercise"],
  // rules
  "ru.firings": ["规则触发", "Rule firings"],
  "ru.flags": ["当前标记", "Flags"],
  "ru.confirm": ["确认", "Confirm"],
  "ru.dismiss": ["驳回", "Dismiss"],
  "ru.note": ["说明", "Note"],
  "ru.decided": ["{name} 于 {at} {state}", "{state} by {name}, {at}"],
  "ru.suggested_grade": ["建议风险分级：{g}", "Suggested risk grade: {g}"],
  "fs.suggested": ["待医生确认", "Awaiting a doctor"], "fs.confirmed": ["已确认", "Confirmed"],
  "fs.dismissed": ["已驳回", "Dismissed"], "fs.recorded": ["已记录", "Recorded"], "fs.withdrawn": ["已撤回", "Withdrawn"],
  "ru.done": ["已记录决定", "Decision recorded"],
  "ru.doctor_only": ["由医生确认或驳回。", "A doctor confirms or dismisses."],
  "fg.mild": ["轻度", "mild"], "fg.moderate": ["中度", "moderate"], "fg.severe": ["重度", "severe"],
  "flag.anaemia": ["贫血", "Anaemia"], "flag.gdm": ["妊娠期糖尿病", "GDM"],
  "flag.hypertension": ["妊娠期高血压", "Hypertension"], "flag.preeclampsia": ["子痫前期", "Pre-eclampsia"],
  // reviews
  "rw.by": ["{name} · {at}", "{name} · {at}"],
  "rw.superseded": ["已被修订", "Revised"],
  "rw.withdrawn": ["已撤回", "Withdrawn"],
  "rw.advice": ["建议：", "Advice: "],
  "rw.followups": ["随访：", "Follow-ups: "],
});

boot();

let me = null;
const names = new Map(); // mother id → "name MRN", for the critical values list
let mother = null; // the chart open now (MotherRecord)
let activeTab = "timeline";
const objectUrls = [];

// ---- small helpers ----------------------------------------------------------------------

function problemText(err) {
  return err instanceof ApiError ? err.message : t("app.error");
}

function failBox(err) {
  return el("p", { class: "form-error" }, problemText(err));
}

function gradeDot(grade) {
  return grade ? el("span", { class: `grade ${grade}`, title: t(`grade.${grade}`), "aria-label": t(`grade.${grade}`) }) : "";
}

function flagBadge(flag) {
  if (!flag) return "";
  const f = String(flag).toUpperCase();
  const cls = ["HH", "LL", "AA", "CRITICAL"].includes(f) ? "critical" : ["H", "A", "HIGH", "ABNORMAL"].includes(f) ? "high" : ["L", "LOW"].includes(f) ? "low" : "warn";
  return el("span", { class: `badge ${cls === "high" ? "warn" : cls}` }, flag);
}

function tOr(key, fallback) {
  const s = t(key);
  return s === key ? fallback : s;
}

function table(head, rows, attrs = {}) {
  return el("table", attrs, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows));
}

function tabs(nav, onSelect) {
  nav.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-tab]");
    if (b) onSelect(b.dataset.tab);
  });
  nav.addEventListener("keydown", (e) => {
    if (!["ArrowLeft", "ArrowRight"].includes(e.key)) return;
    const buttons = [...nav.querySelectorAll("button[data-tab]")].filter((b) => !b.hidden);
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = buttons[(i + (e.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
    next.focus();
    onSelect(next.dataset.tab);
  });
}

function selectTab(nav, name, prefix) {
  for (const b of nav.querySelectorAll("button[data-tab]")) {
    const on = b.dataset.tab === name;
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
    document.getElementById(`${prefix}${b.dataset.tab}`).hidden = !on;
  }
}

// ---- the side: search, reports to review, critical values ---------------------------------

function showSide(name) {
  selectTab(document.getElementById("side-tabs"), name, "panel-");
  if (name === "today") loadToday();
  if (name === "review") loadReviews();
  if (name === "alerts") loadAlerts();
  if (name === "search") document.getElementById("search-q").focus();
}

async function search(q) {
  const list = document.getElementById("search-results");
  const form = document.getElementById("search-form");
  clearProblem(form);
  q = q.trim();
  if (!q) {
    list.replaceChildren();
    return;
  }
  let data;
  try {
    data = (await api(`/v1/mothers${query({ q, limit: 20 })}`)).data;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 400 && /\bq\b/.test(JSON.stringify(err.problem)))) {
      showProblem(form, err);
      return;
    }
    // a server without ?q=: MRN or name
    const params = /^\s*mrn/i.test(q) || /\d{3,}/.test(q) ? { mrn: q.replace(/\s+/g, "").toUpperCase() } : { name: q };
    data = (await api(`/v1/mothers${query({ ...params, limit: 20 })}`)).data;
  }
  if (document.getElementById("search-q").value.trim() !== q) return; // she typed on
  list.replaceChildren(
    ...(data.items.length
      ? data.items.map((m) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "pick", "data-testid": "mother-result", "data-mother-id": m.id, onclick: () => openMother(m.id) },
              el("span", { class: "pick-main" }, gradeDot(m.risk_grade), el("strong", {}, m.name), " ", el("span", { class: "mono muted" }, m.mrn)),
              el("span", { class: "pick-sub muted" }, [m.gestational_age ? t("chart.ga", { ga: m.gestational_age }) : "", m.phone].filter(Boolean).join(" · ")),
            ),
          ),
        )
      : [el("li", { class: "muted" }, t("chart.search.none"))]),
  );
}

async function loadToday() {
  const list = document.getElementById("today-list");
  try {
    const { data } = await api(`/v1/visits${query({ date: clinicDate() })}`);
    const visits = data.items.filter((v) => v.status !== "cancelled");
    list.replaceChildren(
      ...(visits.length
        ? visits.map((v) =>
            el(
              "li",
              {},
              el(
                "button",
                { type: "button", class: "pick", "data-testid": "today-visit", "data-mother-id": v.mother_id, onclick: () => openMother(v.mother_id) },
                el("span", { class: "pick-main" }, el("strong", {}, v.mother_masked_name), " ", el("span", { class: "mono muted" }, v.mother_mrn), v.urgent ? el("span", { class: "badge urgent" }, "!") : ""),
                el("span", { class: "pick-sub muted" }, [v.local_time || clockTime(v.scheduled_at), tOr(`visit.${v.status}`, v.status)].filter(Boolean).join(" · "),
                  // each ticket whole (never US-|004 at a line's end)
                  ...(v.tickets || []).flatMap((x, i) => [i ? " " : " · ", el("span", { class: "ticket-nb" }, x.ticket)])),
              ),
            ),
          )
        : [el("li", { class: "muted" }, t("chart.today.empty"))]),
    );
  } catch (err) {
    list.replaceChildren(el("li", {}, failBox(err)));
  }
}

// What each role may read (the API decides; this only leaves out what would be refused).
const CAN = {
  doctor: { side: ["search", "today", "review", "alerts"], tabs: ["timeline", "reports", "careplan", "healthplan", "rules", "reviews"] },
  admin: { side: ["search", "today", "review", "alerts"], tabs: ["timeline", "reports", "careplan", "healthplan", "reviews"] },
  nutritionist: { side: ["today"], tabs: ["timeline", "healthplan", "rules", "reviews"] },
};

function applyRole() {
  const can = CAN[me.role] || CAN.doctor;
  for (const b of document.querySelectorAll("#side-tabs button[data-tab]")) b.hidden = !can.side.includes(b.dataset.tab);
  for (const b of document.querySelectorAll("#chart-tabs button[data-tab]")) b.hidden = !can.tabs.includes(b.dataset.tab);
  if (!can.tabs.includes(activeTab)) activeTab = can.tabs[0];
  if (!can.side.includes("search")) {
    // the nutritionist has only today's list: the hint names what she can do
    const empty = document.getElementById("chart-empty");
    empty.dataset.i18n = "chart.empty.today";
    empty.textContent = t("chart.empty.today");
  }
  return can;
}

async function loadReviews() {
  if (!CAN[me.role]?.side.includes("review")) return;
  const list = document.getElementById("review-list");
  try {
    const { data } = await api("/v1/reports-to-review?limit=100");
    document.getElementById("review-count").textContent = data.items.length ? String(data.items.length) : "";
    list.replaceChildren(
      ...(data.items.length
        ? data.items.map((r) =>
            el(
              "li",
              {},
              el(
                "button",
                { type: "button", class: `pick ${r.critical ? "is-critical" : r.abnormal ? "is-abnormal" : ""}`, "data-testid": "review-item", "data-report-id": r.report_id, "data-mother-id": r.mother_id, onclick: () => openReview(r) },
                el("span", { class: "pick-main" }, el("strong", {}, r.name), " ", el("span", { class: "mono muted" }, r.mrn)),
                el(
                  "span",
                  { class: "pick-sub" },
                  r.display || r.code || "",
                  " ",
                  r.critical ? el("span", { class: "badge critical" }, t("rep.critical")) : r.abnormal ? el("span", { class: "badge warn" }, t("rep.abnormal")) : "",
                  r.ready_at ? el("span", { class: "muted" }, " ", t("rv.waiting", { time: dateTime(r.ready_at) })) : "",
                ),
              ),
            ),
          )
        : [el("li", { class: "muted" }, t("rv.empty"))]),
    );
  } catch (err) {
    list.replaceChildren(el("li", {}, failBox(err)));
  }
}

async function loadAlerts() {
  if (!CAN[me.role]?.side.includes("alerts")) return;
  const list = document.getElementById("alert-list");
  try {
    const { data } = await api("/v1/alerts");
    const open = data.items.filter((a) => a.state === "open");
    await Promise.all(open.filter((a) => a.mother_id && !names.has(a.mother_id)).map((a) =>
      api(`/v1/mothers/${a.mother_id}`).then(({ data: m }) => names.set(a.mother_id, `${m.name} ${m.mrn}`)).catch(() => names.set(a.mother_id, ""))));
    document.getElementById("alert-count").textContent = open.length ? String(open.length) : "";
    list.replaceChildren(
      ...(open.length
        ? open.map((a) => {
            const overdue = a.due_at && new Date(a.due_at) < new Date();
            return el(
              "li",
              {},
              el(
                "button",
                { type: "button", class: "pick is-critical", "data-testid": "alert", "data-alert-id": a.id, "data-mother-id": a.mother_id || "", onclick: () => openAlert(a) },
                el("span", { class: "pick-main" }, el("strong", {}, names.get(a.mother_id) || "")),
                el("span", { class: "pick-sub critical-text" }, a.reason),
                el(
                  "span",
                  { class: "pick-sub" },
                  el("span", { class: overdue ? "badge critical" : "muted" }, overdue ? t("al.overdue") : t("al.due", { time: clockTime(a.due_at) })),
                  " ",
                  el("span", { class: "muted" }, `${dateTime(a.raised_at)} · ${tOr(`tier.${a.tier_name}`, t("al.tier", { n: a.tier }))}`),
                  a.mother_contacted_at ? el("span", { class: "muted block" }, t("al.contacted", { note: a.mother_contact_note || "" })) : "",
                ),
              ),
            );
          })
        : [el("li", { class: "muted" }, t("al.empty"))]),
    );
  } catch (err) {
    list.replaceChildren(el("li", {}, failBox(err)));
  }
}

// ---- the chart --------------------------------------------------------------------------

async function openMother(id, { keepAction = false } = {}) {
  for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
  const chart = document.getElementById("chart");
  if (!keepAction) document.getElementById("action-area").replaceChildren();
  try {
    mother = (await api(`/v1/mothers/${id}`)).data;
  } catch (err) {
    toast(problemText(err), "error");
    return;
  }
  const url = new URL(location.href);
  url.searchParams.set("mother", id);
  history.replaceState(null, "", url.pathname + url.search);
  document.getElementById("chart-empty").hidden = true;
  chart.hidden = false;
  renderHead();
  for (const name of ["timeline", "reports", "careplan", "healthplan", "rules", "reviews"]) {
    document.getElementById(`tab-${name}`).replaceChildren(el("p", { class: "muted" }, t("chart.loading")));
  }
  showTab(activeTab);
  loadAllTabs();
}

function renderHead() {
  const m = mother;
  const p = m.pregnancy;
  const bits = [
    t("chart.age", { n: m.age }),
    p ? t("chart.ga", { ga: p.gestational_age.display }) : "",
    p ? t("chart.edd", { d: p.edd_date }) : "",
    p ? t("chart.gp", { g: p.gravida, p: p.para }) : "",
  ].filter(Boolean);
  document.getElementById("chart-head").replaceChildren(
    el("h2", {}, el("span", { "data-testid": "chart-name" }, m.name), " ", el("span", { class: "mono muted", "data-testid": "chart-mrn" }, m.mrn)),
    el("p", { class: "row" },
      p ? el("span", { class: "risk" }, gradeDot(p.risk_grade), t(`grade.${p.risk_grade}`)) : "",
      el("span", {}, bits.join(" · ")),
      p?.infection_control ? el("span", { class: "badge infection" }, t("chart.infection")) : "",
      p?.managed_case ? el("span", { class: "badge warn" }, t("chart.managed")) : "",
      el("span", { id: "head-flags", class: "row" }),
    ),
  );
}

let healthPlanLoaded = null;
function showTab(name) {
  activeTab = name;
  selectTab(document.getElementById("chart-tabs"), name, "tab-");
  if (name === "healthplan" && mother && healthPlanLoaded !== mother.id) {
    healthPlanLoaded = mother.id;
    loadHealthPlan(mother.id);
  }
}

function loadAllTabs() {
  const id = mother.id;
  const guard = (fn) => fn().catch((err) => console.warn(err)); // each tab shows its own failure
  const can = CAN[me.role] || CAN.doctor;
  guard(() => loadTimeline(id));
  if (can.tabs.includes("reports")) guard(() => loadReports(id));
  if (can.tabs.includes("careplan")) guard(() => loadCarePlan(id));
  healthPlanLoaded = null; // read when its tab opens ("no plan yet" is a 404 the console would log)
  if (activeTab === "healthplan") showTab("healthplan");
  if (can.tabs.includes("rules")) guard(() => loadRules(id));
  guard(() => loadMotherReviews(id));
}

async function into(tabName, id, build) {
  const box = document.getElementById(`tab-${tabName}`);
  try {
    const content = await build();
    if (mother?.id === id) box.replaceChildren(...[content].flat());
  } catch (err) {
    if (mother?.id === id) box.replaceChildren(failBox(err));
  }
}

/** "孕20–24周产检" / "20–24-week visit" for a care-plan window code ("w20", "w37-38"), from
 *  the plan's window (its weeks) when the answer has it, else read from the code itself. */
function windowName(code, windows) {
  const w = (windows || []).find((x) => x.code === code);
  const week = (ga) => String(ga || "").split("+")[0];
  let from;
  let to;
  if (w) {
    from = week(w.ga_from);
    to = week(w.ga_to);
  } else {
    const m = /^w(\d+)(?:-(\d+))?$/.exec(code || "");
    if (!m) return code;
    from = m[2] || m[1]; // "w37-38": the 38th week of the weekly visits from 37
    to = from;
  }
  return from === to ? t("cp.window.week", { from }) : t("cp.window.range", { from, to });
}

function valueText(item) {
  if (item.result) return item.result;
  if (item.value == null) return "";
  const v = item.value2 != null ? `${item.value}/${item.value2}` : `${item.value}`;
  return `${v} ${item.unit || ""}`.trim();
}

function loadTimeline(id) {
  return into("timeline", id, async () => {
    const [tl, plan] = await Promise.all([
      api(`/v1/mothers/${id}/timeline`).then((r) => r.data),
      (CAN[me.role] || CAN.doctor).tabs.includes("careplan") ? api(`/v1/mothers/${id}/care-plan`).then((r) => r.data).catch(() => null) : api(`/v1/visits${query({ mother_id: id })}`).then((r) => ({ past_visits: r.data.items })).catch(() => null),
    ]);
    const rows = tl.items.map((i) => ({ at: i.at, node: el(
      "tr",
      { "data-testid": "timeline-row", "data-type": i.type, class: i.flag ? "flagged" : "" },
      el("td", {}, dateTime(i.at)),
      el("td", {}, i.gestational_age || ""),
      el("td", {}, tOr(`kind.${i.kind}`, i.kind), i.type === "lab" ? el("span", { class: "muted" }, " · ", i.code || "") : ""),
      el("td", { class: "num" }, valueText(i)),
      el("td", {}, flagBadge(i.flag)),
      el("td", { class: "muted" }, i.reported_by_mother ? t("tl.by_mother") : i.type === "lab" ? t("rep.name") : ""),
    ) }));
    for (const v of [...(plan?.past_visits || []), ...(plan?.upcoming_visits || [])]) {
      rows.push({ at: v.scheduled_at, node: el(
        "tr",
        { "data-testid": "timeline-row", "data-type": "visit", class: "visit-row" },
        el("td", {}, dateTime(v.scheduled_at)),
        el("td", {}, ""),
        el("td", {}, el("strong", {}, t("tl.visit")), v.window_code ? el("span", { class: "muted", "data-window": v.window_code }, ` · ${windowName(v.window_code, plan?.windows)}`) : ""),
        el("td", {}, tOr(`visit.${v.status}`, v.status)),
        el("td", {}, ""),
        el("td", {}, ""),
      ) });
    }
    rows.sort((a, b) => (b.at || "").localeCompare(a.at || "")); // newest first
    if (!rows.length) return el("p", { class: "muted" }, t("chart.none"));
    return [
      table([t("tl.when"), t("tl.ga"), t("tl.what"), t("tl.value"), t("tl.flag"), t("tl.source")], rows.map((r) => r.node), { id: "timeline", class: "dense" }),
      tl.unmapped_results ? el("p", { class: "muted" }, t("tl.unmapped", { n: tl.unmapped_results })) : "",
    ];
  });
}

function loadReports(id) {
  return into("reports", id, async () => {
    const { data } = await api(`/v1/reports${query({ mother_id: id, limit: 100 })}`);
    if (!data.items.length) return el("p", { class: "muted" }, t("chart.none"));
    const rows = data.items.map((r) => {
      const detail = el("tr", { class: "report-detail", hidden: true }, el("td", { colspan: 5 }));
      const open = el("button", { type: "button", class: "link-like", "aria-expanded": "false", onclick: () => toggleReport(r, detail, open) }, r.display || r.code || r.id.slice(0, 8));
      return [
        el(
          "tr",
          { "data-testid": "report-row", "data-report-id": r.id, class: r.critical ? "critical-row" : "" },
          el("td", {}, open, r.critical ? el("span", { class: "badge critical" }, " ", t("rep.critical")) : ""),
          el("td", {}, r.status),
          el("td", {}, tOr(`pickup.${r.pickup_state}`, r.pickup_state)),
          el("td", {}, dateTime(r.issued_at || r.received_at)),
          el("td", {}, me.role === "doctor" && r.needs_review ? el("button", { type: "button", "data-action": "review", onclick: () => openReview({ report_id: r.id, mother_id: id, name: mother.name, display: r.display }) }, t("rep.review")) : ""),
        ),
        detail,
      ];
    });
    return table([t("rep.name"), t("rep.status"), t("rep.pickup"), t("rep.issued"), ""], rows.flat(), { id: "reports", class: "dense" });
  });
}

async function toggleReport(r, detailRow, button) {
  const show = detailRow.hidden;
  detailRow.hidden = !show;
  button.setAttribute("aria-expanded", String(show));
  if (!show || detailRow.dataset.loaded) return;
  try {
    const { data } = await api(`/v1/reports/${r.id}`);
    detailRow.dataset.loaded = "1";
    detailRow.firstChild.replaceChildren(observationTable(data), data.conclusion ? el("p", {}, data.conclusion) : "");
  } catch (err) {
    detailRow.firstChild.replaceChildren(failBox(err));
  }
}

function observationTable(report) {
  return table(
    [t("rep.obs.item"), t("rep.obs.value"), t("rep.obs.range"), t("rep.obs.flag")],
    report.observations.map((o) =>
      el(
        "tr",
        { class: o.flag && o.flag !== "N" ? "flagged" : "" },
        el("td", {}, o.display || o.code),
        el("td", { class: "num" }, `${o.comparator || ""}${o.value ?? ""} ${o.unit || ""}`.trim()),
        el("td", { class: "muted" }, o.reference_range || ""),
        el("td", {}, o.flag && o.flag !== "N" ? flagBadge(o.flag) : "", o.critical_reason ? el("span", { class: "muted" }, ` ${o.critical_reason}`) : ""),
      ),
    ),
    { class: "dense obs" },
  );
}

// The exams' names in both languages (GET /v1/exam-types: name, name_zh), read once.
let examNames = null;
function loadExamNames() {
  examNames = examNames || api("/v1/exam-types")
    .then(({ data }) => new Map(data.items.map((x) => [x.code, x])))
    .catch(() => new Map());
  return examNames;
}
function examLabel(names, code, name) {
  const x = names.get(code);
  if (lang() === "zh") return x?.name_zh || name || x?.name || code;
  return name || x?.name || code;
}

function loadCarePlan(id) {
  return into("careplan", id, async () => {
    const [{ data: p }, names] = await Promise.all([api(`/v1/mothers/${id}/care-plan`), loadExamNames()]);
    const exam = (x) =>
      el(
        "li",
        { class: `exam is-${x.state}`, "data-exam": x.code },
        el("span", {}, examLabel(names, x.code, x.name)),
        x.fasting ? el("span", { class: "badge fasting" }, t("cp.fasting")) : "",
        " ",
        el("span", { class: `state state-${x.state}` }, tOr(`is.${x.state}`, x.state)),
        x.condition ? el("span", { class: "muted" }, ` · ${x.condition}`) : "",
      );
    const out = [];
    out.push(el("p", { class: "muted" }, t("cp.guideline", { code: p.guideline_code, version: p.guideline_version })));
    if (p.next_visit) out.push(el("p", { class: "next-visit" }, el("strong", {}, t("cp.next", { from: p.next_visit.from_date, to: p.next_visit.to_date })), " ", p.next_visit.exams.map((c) => examLabel(names, c, "")).join(lang() === "zh" ? "、" : ", ")));
    out.push(el("h3", {}, t("cp.windows")));
    out.push(
      el(
        "ol",
        { class: "plain windows", id: "care-plan" },
        p.windows.map((w) =>
          el(
            "li",
            { class: `window ws-${w.status}`, "data-window": w.code },
            el("div", { class: "window-head" }, el("strong", {}, windowName(w.code, [w])), el("span", { class: "muted" }, ` ${w.ga_from}–${w.ga_to} · ${w.start_date} – ${w.end_date}`), el("span", { class: `state ws ws-${w.status}` }, tOr(`ws.${w.status}`, w.status))),
            el("ul", { class: "plain exams" }, w.exams.map(exam)),
          ),
        ),
      ),
    );
    if (p.booking_panel.length) out.push(el("h3", {}, t("cp.booking")), el("ul", { class: "plain exams cols" }, p.booking_panel.map(exam)));
    if (p.indicated.length) out.push(el("h3", {}, t("cp.indicated")), el("ul", { class: "plain exams cols" }, p.indicated.map(exam)));
    if (p.choices.length) {
      out.push(el("h3", {}, t("cp.choices")), el("ul", { class: "plain" }, p.choices.map((c) => el("li", {}, el("strong", {}, c.label), "：", c.chosen ? c.options.find((o) => o.code === c.chosen)?.name || c.chosen : t("chart.none")))));
    }
    return out;
  });
}

// ---- the health-management plan ---------------------------------------------------------

function loadHealthPlan(id) {
  return into("healthplan", id, async () => {
    let plan = null;
    let etag = null;
    // Her versions first (an empty list while she has no plan), so that no request fails
    // (and no console error is logged) for the expected "no plan yet".
    let versionList = [];
    try {
      versionList = (await api(`/v1/mothers/${id}/health-plan/versions`)).data.items;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err; // no pregnancy in care
    }
    if (versionList.length) {
      try {
        const r = await api(`/v1/mothers/${id}/health-plan`);
        plan = r.data;
        etag = r.etag;
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    }
    const out = [];
    const clinician = me.role === "doctor" || me.role === "nutritionist";
    if (!plan) {
      out.push(el("p", { class: "muted" }, t("hp.none")));
      if (clinician) out.push(generateForm(id, null, t("hp.generate")));
    } else {
      const v = plan.latest;
      out.push(
        el(
          "div",
          { class: "hp-status row", id: "health-plan" },
          v.signed
            ? el("span", { class: "badge ok" }, t("hp.signed", { n: v.version, name: v.signed_by_name, at: dateTime(v.signed_at) }))
            : el("span", { class: "badge warn" }, t("hp.unsigned", { n: v.version })),
          plan.signed_version && plan.signed_version !== v.version ? el("span", { class: "muted" }, t("hp.in_force", { n: plan.signed_version })) : "",
          clinician && !v.signed ? el("button", { type: "button", class: "primary", id: "hp-sign", onclick: (e) => signPlan(id, v.version, etag, e.currentTarget) }, t("hp.sign", { n: v.version })) : "",
        ),
      );
      if (plan.stale) out.push(el("p", { class: "stale" }, el("strong", {}, t("hp.stale")), plan.stale_reasons.join("；")));
      if (clinician) out.push(generateForm(id, etag, t("hp.regenerate")));
      out.push(el("div", { class: "hp-sections" }, Object.entries(v.sections || {}).map(([name, sec]) => section(name, sec))));
    }
    out.push(el("h3", {}, t("hp.charts")));
    const weight = el("figure", { class: "hp-chart" }, el("figcaption", {}, t("hp.chart.weight")));
    const bp = el("figure", { class: "hp-chart" }, el("figcaption", {}, t("hp.chart.bp")));
    out.push(el("div", { class: "hp-charts" }, weight, bp));
    chartImage(weight, `/v1/mothers/${id}/charts/weight-gain.svg`, "chart-weight", t("hp.chart.weight"));
    chartImage(bp, `/v1/mothers/${id}/charts/blood-pressure.svg`, "chart-bp", t("hp.chart.bp"));
    if (plan) {
      const versions = el("div", { id: "hp-versions" });
      out.push(el("h3", {}, t("hp.versions")), versions);
      versions.replaceChildren(
        el("ul", { class: "plain versions" }, versionList.map((x) =>
          el("li", {}, el("strong", {}, `v${x.version}`), ` ${x.kind} · ${x.created_by_name} · ${dateTime(x.created_at)}`,
            x.signed_by_name ? el("span", { class: "badge ok" }, ` ${x.signed_by_name} ${dateTime(x.signed_at)}`) : "",
            x.change_note ? el("span", { class: "muted" }, ` — ${x.change_note}`) : ""))),
      );
    }
    return out;
  });
}

function section(name, sec) {
  const items = sec.items || [];
  return el(
    "section",
    { class: "hp-section", "data-section": name },
    el("h3", {}, tOr(`sec.${name}`, name)),
    sec.reason ? el("p", { class: "muted" }, sec.reason) : "",
    el("ul", { class: "plain hp-items" }, items.map((i) =>
      el("li", { "data-code": i.code },
        el("div", {}, el("strong", {}, i.title), i.for_butler ? el("span", { class: "badge" }, " ", t("hp.for_butler")) : "", i.due_date ? el("span", { class: "muted" }, ` ${i.due_date}`) : ""),
        i.detail ? el("div", { class: "muted detail" }, i.detail) : ""))),
    sec.source || sec.edition ? el("p", { class: "source muted" }, sec.source || sec.edition) : "",
  );
}

async function chartImage(figure, path, id, alt) {
  try {
    const src = await imageUrl(path);
    objectUrls.push(src);
    figure.prepend(el("img", { id, src, alt }));
  } catch {
    figure.append(el("p", { class: "muted" }, t("hp.chart.none")));
  }
}

function generateForm(id, etag, label) {
  const form = el(
    "form",
    { class: "row hp-generate-form" },
    el("p", { class: "form-error", tabindex: "-1", hidden: true }),
    el("label", { for: "hp-note", class: "inline" }, t("hp.note")),
    el("input", { id: "hp-note", name: "note", maxlength: 500 }),
    el("button", { type: "submit", id: "hp-generate" }, label),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const headers = etag ? { "If-Match": etag } : {};
      await api(`/v1/mothers/${id}/health-plan`, { method: "POST", headers, body: { note: form.note.value.trim() || label } });
      toast(t("hp.done.generate"), "ok");
      loadHealthPlan(id);
    } catch (err) {
      showProblem(form, err);
    }
  });
  return form;
}

async function signPlan(id, n, etag, button) {
  button.disabled = true;
  try {
    await api(`/v1/mothers/${id}/health-plan/versions/${n}/sign`, { method: "POST", headers: { "If-Match": etag } });
    toast(t("hp.done.sign"), "ok");
    loadHealthPlan(id);
  } catch (err) {
    toast(problemText(err), "error");
    button.disabled = false;
  }
}

// ---- rules and flags --------------------------------------------------------------------

function loadRules(id) {
  return into("rules", id, async () => {
    const [firings, flags] = await Promise.all([
      api(`/v1/mothers/${id}/rule-firings`).then((r) => r.data.items),
      api(`/v1/mothers/${id}/flags`).then((r) => r.data.items),
    ]);
    const head = document.getElementById("head-flags");
    if (head) head.replaceChildren(...flags.map((f) => el("span", { class: `badge ${f.suggested ? "warn" : "high"}` }, tOr(`flag.${f.code}`, f.code), f.grade ? ` · ${tOr(`fg.${f.grade}`, f.grade)}` : "")));
    const out = [el("h3", {}, t("ru.flags"))];
    out.push(
      flags.length
        ? el("ul", { class: "plain row", id: "flags" }, flags.map((f) => el("li", {}, el("span", { class: `badge ${f.suggested ? "warn" : "high"}` }, tOr(`flag.${f.code}`, f.code), f.grade ? ` · ${tOr(`fg.${f.grade}`, f.grade)}` : ""), el("span", { class: "muted" }, ` ${dateTime(f.raised_at)}`))))
        : el("p", { class: "muted", id: "flags" }, t("chart.none")),
    );
    out.push(el("h3", {}, t("ru.firings")));
    out.push(
      firings.length
        ? el("ul", { class: "plain firings", id: "firings" }, firings.map(firing))
        : el("p", { class: "muted", id: "firings" }, t("chart.none")),
    );
    return out;
  });
}

function firing(f) {
  const li = el(
    "li",
    { class: `firing fs-${f.state}`, "data-testid": "firing", "data-firing-id": f.id, "data-state": f.state },
    el("div", { class: "row" }, el("strong", {}, f.rule_id), el("span", { class: `badge fs fs-${f.state}` }, tOr(`fs.${f.state}`, f.state)), f.grade ? el("span", {}, tOr(`fg.${f.grade}`, f.grade)) : "", el("span", { class: "muted" }, dateTime(f.fired_at))),
    el("p", {}, f.explanation),
    f.suggested_grade ? el("p", {}, t("ru.suggested_grade", { g: tOr(`grade.${f.suggested_grade}`, f.suggested_grade) })) : "",
    f.decided_at ? el("p", { class: "muted" }, t("ru.decided", { name: f.decided_by_name, at: dateTime(f.decided_at), state: tOr(`fs.${f.state}`, f.state) }), f.decision_note ? ` — ${f.decision_note}` : "") : "",
  );
  if (f.state === "suggested") {
    if (me.role !== "doctor") {
      li.append(el("p", { class: "muted" }, t("ru.doctor_only")));
    } else {
      const noteId = `note-${f.id}`;
      const form = el(
        "form",
        { class: "row decision" },
        el("p", { class: "form-error", tabindex: "-1", hidden: true }),
        el("label", { for: noteId, class: "inline" }, t("ru.note")),
        el("input", { id: noteId, name: "note", maxlength: 500, required: true }),
        el("button", { type: "submit", class: "primary", "data-action": "confirm", value: "confirmed" }, t("ru.confirm")),
        el("button", { type: "submit", "data-action": "dismiss", value: "dismissed" }, t("ru.dismiss")),
      );
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const decision = e.submitter?.value || "confirmed";
        try {
          await api(`/v1/rule-firings/${f.id}/decision`, { method: "POST", body: { decision, note: form.note.value.trim() } });
          toast(t("ru.done"), "ok");
          loadRules(mother.id);
          openMother(mother.id, { keepAction: true }); // a confirmed grade changes the head
        } catch (err) {
          showProblem(form, err);
        }
      });
      li.append(form);
    }
  }
  return li;
}

// ---- reviews ----------------------------------------------------------------------------

function loadMotherReviews(id) {
  return into("reviews", id, async () => {
    const { data } = await api(`/v1/mothers/${id}/reviews`);
    if (!data.items.length) return el("p", { class: "muted" }, t("chart.none"));
    return el("ul", { class: "plain reviews", id: "reviews" }, data.items.map((r) =>
      el("li", { class: `review ${r.current ? "" : "old"}`, "data-review-id": r.id, "data-report-id": r.report_id },
        el("div", { class: "row" }, el("strong", {}, t("rw.by", { name: r.reviewer_name, at: dateTime(r.reviewed_at) })),
          r.withdrawn ? el("span", { class: "badge" }, t("rw.withdrawn")) : !r.current ? el("span", { class: "badge" }, t("rw.superseded")) : "",
          el("span", { class: "muted" }, `v${r.report_version} · ${r.report_status}`)),
        el("p", {}, r.interpretation),
        r.abnormal_items.length ? el("p", {}, r.abnormal_items.map((a) => el("span", { class: "badge warn" }, `${a.display || a.code} ${a.value ?? ""}${a.unit ? ` ${a.unit}` : ""}`))) : "",
        r.advice_for_mother ? el("p", {}, el("strong", {}, t("rw.advice")), r.advice_for_mother) : "",
        r.follow_ups.length ? el("p", { class: "muted" }, t("rw.followups"), r.follow_ups.map((f) => `${tOr(`fu.${f.kind}`, f.kind)} ${dateTime(f.due_at)}${f.note ? ` (${f.note})` : ""}`).join("；")) : "",
      )));
  });
}

async function openReview(item) {
  await openMother(item.mother_id);
  const area = document.getElementById("action-area");
  if (me.role !== "doctor") {
    area.replaceChildren(el("p", { class: "panel muted" }, t("rv.doctor_only")));
    return;
  }
  let report;
  try {
    report = (await api(`/v1/reports/${item.report_id}`)).data;
  } catch (err) {
    area.replaceChildren(failBox(err));
    return;
  }
  const flagged = new Set(report.observations.filter((o) => o.flag && o.flag !== "N").map((o) => o.seq));
  const abnormal = el("fieldset", { id: "review-abnormal", class: "checks" }, el("legend", {}, t("rv.abnormal")),
    report.observations.map((o) => {
      const id = `abn-${o.seq}`;
      return el("div", { class: "check" },
        el("input", { type: "checkbox", id, name: "abnormal", value: o.seq, checked: flagged.has(o.seq) }),
        el("label", { for: id, class: "inline" }, `${o.display || o.code}: ${o.comparator || ""}${o.value ?? ""} ${o.unit || ""}`, o.flag && o.flag !== "N" ? flagBadge(o.flag) : ""));
    }));
  const kinds = ["", "repeat_test", "see_nutritionist", "call_mother", "see_doctor", "other"];
  const form = el(
    "form",
    { id: "review-form", class: "panel review-form", "data-report-id": report.id },
    el("h3", {}, t("rv.title"), " · ", report.display || report.code || "", " ", report.critical ? el("span", { class: "badge critical" }, t("rep.critical")) : ""),
    item.earlier_review ? el("p", { class: "muted" }, t("rv.earlier", { name: item.earlier_review.reviewer_name })) : "",
    el("p", { class: "form-error", tabindex: "-1", hidden: true }),
    el("div", { class: "review-grid" },
      el("div", {},
        el("label", { for: "review-interpretation" }, t("rv.interpretation")),
        el("textarea", { id: "review-interpretation", name: "interpretation", rows: 3, required: true, maxlength: 4000 }),
        el("label", { for: "review-advice" }, t("rv.advice")),
        el("textarea", { id: "review-advice", name: "advice_for_mother", rows: 2, maxlength: 2000 }),
        el("div", { class: "row followup" },
          el("label", { for: "review-followup-kind", class: "inline" }, t("rv.followup")),
          el("select", { id: "review-followup-kind", name: "kind" }, kinds.map((k) => el("option", { value: k }, k ? t(`fu.${k}`) : t("rv.followup.none")))),
          el("input", { id: "review-followup-days", name: "in_days", type: "number", min: 1, max: 365, value: 14, "aria-label": t("rv.in_days"), class: "days" }),
          el("span", {}, t("rv.in_days")),
          el("input", { id: "review-followup-exam", name: "exam_code", placeholder: t("rv.exam_code"), "aria-label": t("rv.exam_code"), class: "exam", hidden: true }),
          el("input", { id: "review-followup-note", name: "note", placeholder: t("rv.note"), "aria-label": t("rv.note"), maxlength: 500 }),
        ),
      ),
      el("div", {}, abnormal),
    ),
    el("div", { class: "row" },
      el("button", { type: "submit", class: "primary", id: "review-submit" }, t("rv.submit")),
      el("button", { type: "button", onclick: () => area.replaceChildren() }, t("app.cancel"))),
  );
  form.kind.addEventListener("change", () => (form.exam_code.hidden = form.kind.value !== "repeat_test"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const picked = [...form.querySelectorAll("[name=abnormal]:checked")].map((c) => Number(c.value));
    const changed = picked.length !== flagged.size || picked.some((s) => !flagged.has(s));
    const body = {
      interpretation: form.interpretation.value.trim(),
      advice_for_mother: form.advice_for_mother.value.trim(),
      follow_ups: form.kind.value
        ? [{ kind: form.kind.value, in_days: Number(form.in_days.value) || 14, exam_code: form.kind.value === "repeat_test" ? form.exam_code.value.trim() || null : null, note: form.note.value.trim() || null }]
        : [],
    };
    if (changed) body.abnormal_items = picked.map((seq) => ({ seq }));
    try {
      await api(`/v1/reports/${report.id}/review`, { method: "POST", body });
      toast(t("rv.done"), "ok");
      area.replaceChildren();
      loadReviews();
      loadAllTabs();
    } catch (err) {
      showProblem(form, err);
    }
  });
  area.replaceChildren(form, el("details", { class: "panel", open: true }, el("summary", {}, report.display || report.code || ""), observationTable(report)));
  form.interpretation.focus();
}

async function openAlert(a) {
  if (a.mother_id) await openMother(a.mother_id);
  const area = document.getElementById("action-area");
  if (me.role !== "doctor") {
    area.replaceChildren(el("p", { class: "panel muted" }, t("al.doctor_only")));
    return;
  }
  const form = el(
    "form",
    { id: "ack-form", class: "panel ack-form", "data-alert-id": a.id },
    el("h3", {}, el("span", { class: "badge critical" }, t("rep.critical")), " ", t("al.title"), "：", a.reason),
    el("p", { class: "muted" }, `${dateTime(a.raised_at)} · ${t("al.due", { time: clockTime(a.due_at) })}`, a.mother_contacted_at ? ` · ${t("al.contacted", { note: a.mother_contact_note || "" })}` : ""),
    el("p", { class: "form-error", tabindex: "-1", hidden: true }),
    el("label", { for: "ack-read-back" }, t("al.read_back")),
    el("input", { id: "ack-read-back", name: "read_back", required: true, maxlength: 500, class: "wide" }),
    el("label", { for: "ack-action" }, t("al.action")),
    el("textarea", { id: "ack-action", name: "action_taken", rows: 2, required: true, maxlength: 2000, class: "wide" }),
    el("div", { class: "row" },
      el("button", { type: "submit", class: "danger", id: "ack-submit" }, t("al.submit")),
      el("button", { type: "button", onclick: () => area.replaceChildren() }, t("app.cancel"))),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/v1/alerts/${a.id}/acknowledge`, { method: "POST", body: { read_back: form.read_back.value.trim(), action_taken: form.action_taken.value.trim() } });
      toast(t("al.done"), "ok");
      area.replaceChildren();
      loadAlerts();
    } catch (err) {
      showProblem(form, err);
    }
  });
  area.replaceChildren(form);
  if (a.report_id) {
    api(`/v1/reports/${a.report_id}`).then(({ data }) => form.after(el("details", { class: "panel", open: true }, el("summary", {}, data.display || data.code || ""), observationTable(data)))).catch(() => {});
  }
  form.read_back.focus();
}

// ---- start ------------------------------------------------------------------------------

async function start() {
  me = await requireRole(["doctor", "nutritionist", "admin"]);
  topbar("chart.title", me);
  tabs(document.getElementById("side-tabs"), showSide);
  tabs(document.getElementById("chart-tabs"), showTab);
  const can = applyRole();
  selectTab(document.getElementById("side-tabs"), can.side[0], "panel-");
  selectTab(document.getElementById("chart-tabs"), can.tabs[0], "tab-");
  if (can.side[0] === "today") loadToday();
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-q");
  const later = debounce(() => search(input.value), 200);
  input.addEventListener("input", later);
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      document.querySelector("#search-results button")?.focus();
    }
  });
  document.getElementById("search-results").addEventListener("keydown", (e) => {
    if (!["ArrowDown", "ArrowUp"].includes(e.key)) return;
    const buttons = [...document.querySelectorAll("#search-results button")];
    const i = buttons.indexOf(document.activeElement);
    e.preventDefault();
    if (e.key === "ArrowUp" && i <= 0) input.focus();
    else buttons[Math.min(buttons.length - 1, i + (e.key === "ArrowDown" ? 1 : -1))]?.focus();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search(input.value).then(() => {
      const hits = document.querySelectorAll("#search-results button");
      if (hits.length === 1) hits[0].click();
    });
  });
  document.addEventListener("pb:lang", () => {
    topbar("chart.title", me);
    if (mother) openMother(mother.id, { keepAction: true });
    loadReviews();
    loadAlerts();
  });
  // the counts on the side tabs, kept fresh
  loadReviews();
  loadAlerts();
  setInterval(() => {
    if (document.visibilityState === "visible") {
      loadReviews();
      loadAlerts();
    }
  }, 30000);
  const wanted = new URLSearchParams(location.search).get("mother");
  if (wanted && /^[0-9a-f-]{36}$/i.test(wanted)) openMother(wanted);
}

start();
