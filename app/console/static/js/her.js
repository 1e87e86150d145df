// Her own page, on her or her family's phone, with no login: the link's token (in the
// address's #fragment, never sent to a server log) is read once, kept in this tab only, and
// taken out of the address bar so a screenshot or a shared screen does not show it. Live
// through the long-poll (ETag + ?wait=). Her name, MRN and id are never on this page.
import { addStrings, both, clockTime, el, sleep } from "./core.js";
import { roomNames, stationName } from "./stations.js";

addStrings({
  "her.title": ["我的就诊", "My visit today"],
  "her.offline": ["连接中断，正在重试…", "Connection lost, retrying…"],
  "her.expired.title": ["链接已失效", "This link no longer works"],
  "her.expired.text": ["此链接仅限就诊当天使用，或已被撤销。请到前台重新获取二维码。", "It works only on the day of the visit, or it was withdrawn. Ask the front desk for a new QR code."],
  "her.tickets": ["我的排队", "My queues"],
  "her.called": ["请到", "Please go to"],
  "her.called.again": ["再次呼叫", "Called again"],
  "her.ticket": ["号码", "Number"],
  "her.next": ["接下来", "What comes next"],
  "her.next.at": ["{time} 后", "after {time}"],
  "her.next.wait": ["等待：{what}", "Waiting for: {what}"],
  "her.status.waiting": ["排队中", "Waiting"],
  "her.status.called": ["正在呼叫", "Called"],
  "her.status.in_service": ["检查中", "In the room"],
  "her.status.done": ["已完成", "Done"],
  "her.position": ["前面 {n} 人", "{n} ahead of you"],
  "her.first": ["下一位就是您", "You are next"],
  "her.wait": ["约 {n} 分钟", "about {n} min"],
  "her.soon": ["即将叫到", "Almost your turn"],
  "her.not_before": ["{time} 后抽血", "draw after {time}"],
  "her.steps": ["已完成 {done}/{total} 项", "{done} of {total} steps done"],
  "her.finish": ["预计 {time} 完成", "expected to finish by {time}"],
  "her.asof": ["更新于 {time}", "Updated {time}"],
  "her.none": ["暂无排队", "Not in a queue right now"],
  "her.done.all": ["今天的检查都已完成，祝您一切顺利！", "All done for today. Take care!"],
});

const KEY = "pb.her";

function readToken() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromHash = hash.get("k");
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    // out of the address bar (and of the history entry) at once
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromHash || sessionStorage.getItem(KEY);
}

function translateStatic() {
  for (const node of document.querySelectorAll("[data-both]")) node.textContent = both(node.dataset.both);
}

function pair(zh, en, cls = "") {
  return el("span", { class: `pair ${cls}` }, el("span", { class: "zh" }, zh), el("span", { class: "en", lang: "en" }, en));
}

function expired() {
  sessionStorage.removeItem(KEY);
  for (const id of ["her-called", "her-next", "her-tickets-panel"]) document.getElementById(id).hidden = true;
  document.getElementById("her-expired").hidden = false;
  document.getElementById("her-asof").textContent = "";
}

/** "体重血压 Weight and blood pressure、…": the Chinese name first where the API gives one. */
function examNames(exams, examsZh) {
  return exams.map((en, i) => {
    const zh = examsZh?.[i];
    return zh && zh !== en ? `${zh} ${en}` : en;
  }).join("、");
}

let lastCall = null;

function render(v) {
  document.getElementById("her-date").textContent = v.date;
  // called: the big box
  const called = document.getElementById("her-called");
  if (v.called) {
    const [zh, en] = stationName(v.called.station, v.called.station_name, v.called.station_name_zh);
    const [rzh, ren] = roomNames(v.called.station, v.called.room, v.called.place_kind);
    called.replaceChildren(
      el("p", { class: "lead" }, both("her.called")),
      // the station and the room each kept on one line ("1 号诊室" never split as 诊|室)
      el("p", { class: "where" }, el("span", { class: "nobreak" }, zh), rzh ? " " : "", rzh ? el("span", { class: "nobreak" }, rzh) : ""),
      el("p", { class: "where-en", lang: "en" }, [en, ren].filter(Boolean).join(", ")),
      el("p", { class: "ticket" }, el("span", { class: "muted" }, both("her.ticket"), " "), v.called.ticket),
      v.called.recalls ? el("p", { class: "again" }, both("her.called.again")) : "",
    );
    called.hidden = false;
    const key = `${v.called.ticket}|${v.called.called_at}|${v.called.recalls}`;
    if (lastCall !== null && key !== lastCall) navigator.vibrate?.([300, 150, 300]);
    lastCall = key;
  } else {
    called.hidden = true;
    lastCall = "";
  }
  // what comes next
  const next = document.getElementById("her-next");
  if (v.next && (v.next.station || v.next.exams?.length)) {
    const [zh, en] = v.next.station ? stationName(v.next.station, v.next.station_name, v.next.station_name_zh) : ["", ""];
    next.replaceChildren(
      el("h2", {}, both("her.next")),
      v.next.station ? el("p", { class: "next-where" }, pair(zh, en), v.next.ticket ? el("span", { class: "mono" }, ` ${v.next.ticket}`) : "") : "",
      v.next.not_before ? el("p", { class: "next-time" }, both("her.next.at", { time: clockTime(v.next.not_before) })) : "",
      v.next.exams?.length ? el("p", { class: "muted" }, examNames(v.next.exams, v.next.exams_zh)) : "",
      v.next.waiting_for?.length ? el("p", { class: "muted" }, both("her.next.wait", { what: v.next.waiting_for.join("、") })) : "",
    );
    next.hidden = false;
  } else {
    next.hidden = true;
  }
  // every ticket
  const list = document.getElementById("her-tickets");
  list.replaceChildren(
    ...v.tickets.map((t) => {
      const [zh, en] = stationName(t.station, t.station_name, t.station_name_zh);
      const status = ["waiting", "called", "in_service", "done"].includes(t.status) ? t.status : null;
      const details = [];
      if (t.status === "waiting") {
        const first = t.position === 0 || t.position === 1;
        if (first) details.push(both("her.first"));
        else if (t.position != null) details.push(both("her.position", { n: t.position - 1 }));
        // "about 0 min" says nothing: the next in line is told she is next, anyone else "almost"
        if (t.estimated_wait_minutes > 0) details.push(both("her.wait", { n: t.estimated_wait_minutes }));
        else if (t.estimated_wait_minutes === 0 && !first) details.push(both("her.soon"));
      }
      if (t.not_before) details.push(both("her.not_before", { time: clockTime(t.not_before) }));
      if (t.status === "called" && t.room != null) details.push(roomNames(t.station, t.room, t.place_kind).join(" "));
      return el(
        "li",
        { class: `her-ticket st-${t.status}`, "data-ticket": t.ticket, "data-station": t.station },
        el("div", { class: "row1" }, el("span", { class: "ticket mono" }, t.ticket), pair(zh, en, "station"),
          el("span", { class: "status" }, status ? both(`her.status.${status}`) : t.status)),
        // each detail kept whole ("约 3 分钟 about 3 min" never split after 约 3): lines break between them
        details.length ? el("p", { class: "details" }, ...details.flatMap((d, i) => [i ? " · " : "", el("span", { class: "detail" }, d)])) : "",
        t.exams?.length ? el("p", { class: "muted exams" }, examNames(t.exams, t.exams_zh)) : "",
      );
    }),
  );
  const steps = [both("her.steps", { done: v.steps_done, total: v.steps_total })];
  if (v.expected_finish) steps.push(both("her.finish", { time: clockTime(v.expected_finish) }));
  document.getElementById("her-steps").textContent = steps.join(" · ");
  if (!v.tickets.length) {
    list.replaceChildren(el("li", { class: "muted" }, v.steps_total && v.steps_done >= v.steps_total ? both("her.done.all") : both("her.none")));
  }
  document.getElementById("her-tickets-panel").hidden = false;
  document.getElementById("her-asof").textContent = both("her.asof", { time: clockTime(new Date().toISOString()) });
}

async function follow(tokenValue) {
  let etag = null;
  let delay = 1000;
  const banner = document.getElementById("offline-banner");
  for (;;) {
    try {
      const headers = { Accept: "application/json", "X-Her-Link": tokenValue };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(etag ? "/v1/her/visit?wait=25" : "/v1/her/visit", { headers, cache: "no-store", referrerPolicy: "no-referrer" });
      if (response.status === 404 || response.status === 401 || response.status === 410) {
        expired();
        return;
      }
      if (response.status === 429) throw new Error("slow down");
      banner.hidden = true;
      delay = 1000;
      if (response.status === 304) continue;
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      etag = response.headers.get("ETag");
      render(await response.json());
    } catch {
      banner.hidden = false;
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }
}

translateStatic();
const tokenValue = readToken();
if (!tokenValue) expired();
else follow(tokenValue);
