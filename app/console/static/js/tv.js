// The waiting-room TV (1920×1080, no login): every station's board, the latest call shown
// large with a chime (Web Audio, no sound file) and a spoken call where the browser has a
// Chinese voice; both languages at once; a clock in the clinic's time zone. Updated through
// the boards' long-poll (ETag + ?wait=), never by reloading the page.
import { ApiError, CLINIC_TZ, addStrings, api, both, clockTime, el, longPoll, sleep } from "./core.js";
import { loadStations, roomNames, stationName } from "./stations.js";

addStrings({
  "tv.brand": ["孕期管家 · 候诊", "Waiting room"],
  "tv.sound": ["点击开启声音", "Click to enable sound"],
  "tv.sound.on": ["声音已开启", "Sound on"],
  "tv.offline": ["连接中断，正在重试…", "Connection lost, retrying…"],
  "tv.now": ["正在呼叫", "Now calling"],
  "tv.next": ["下一位", "Next"],
  "tv.later": ["稍后抽血", "Later draws"],
  "tv.none": ["暂无", "None"],
  "tv.waiting": ["候诊 {n} 人", "{n} waiting"],
  "tv.elsewhere": ["另有 {n} 人在其他检查", "{n} more at another exam"],
  "tv.held": ["另有 {n} 人先等定时抽血", "{n} more wait for a timed draw first"],
  "tv.foot": ["请留意叫号，过号请到前台", "Please watch for your number; if you missed it, ask at the front desk"],
  "tv.go": ["请到 {station} {room}", "Please go to {station_en}, {room_en}"],
  "tv.after": ["{time} 后", "after {time}"],
  "tv.due": ["{time} 抽血", "draw at {time}"],
  "tv.unknown": ["未找到诊区 {code}", "No station {code}"],
  "tv.recalled": ["再次呼叫", "Called again"],
});


const boards = new Map(); // code → last board answer
const seen = new Set(); // "ticket|called_at|recalls" already announced
let primed = false; // the first answers are the state we start from: no chime for them
let soundOn = false;
let audio = null;
const announcements = [];
let announcing = false;

function roomText(code, room, lang) {
  const [zh, en] = roomNames(code, room, boards.get(code)?.place_kind);
  return lang === "zh" ? zh : en;
}

// ---- the clock --------------------------------------------------------------------------

function tick() {
  const now = new Date();
  document.getElementById("tv-clock").textContent = clockTime(now.toISOString(), { seconds: true });
  document.getElementById("tv-date").textContent = new Intl.DateTimeFormat("zh-CN", {
    timeZone: CLINIC_TZ, month: "long", day: "numeric", weekday: "long",
  }).format(now);
}

// ---- rendering --------------------------------------------------------------------------

function line(code, t, { later = false } = {}) {
  return el(
    "li",
    { "data-ticket": t.ticket },
    el("span", { class: "t" }, t.ticket),
    el("span", { class: "n" }, t.masked_name),
    // a draw not yet due says its time (its window opens a few minutes before); a rejoin when
    later && t.due_at ? el("span", { class: "w" }, both("tv.due", { time: clockTime(t.due_at) })) : "",
    later && !t.due_at && t.not_before ? el("span", { class: "w" }, both("tv.after", { time: clockTime(t.not_before) })) : "",
    !later && t.room != null ? el("span", { class: "r" }, roomText(code, t.room, "zh")) : "",
  );
}

function renderBoards(codes) {
  const box = document.getElementById("tv-boards");
  box.dataset.count = String(codes.length);
  box.replaceChildren(
    ...codes.map((code) => {
      const b = boards.get(code);
      const [zh, en] = stationName(code, b?.name, b?.name_zh);
      if (b?.missing) return el("article", { class: "board missing", "data-testid": "board", "data-station": code }, both("tv.unknown", { code }));
      const listed = new Set(); // one line per ticket, whatever the answer holds
      const uniq = (list) => (list || []).filter((t) => !listed.has(t.ticket) && listed.add(t.ticket));
      const now = uniq(b?.now_calling);
      const next = uniq(b?.next).slice(0, 5);
      const later = uniq(b?.later).slice(0, 3);
      return el(
        "article",
        { class: "board", "data-testid": "board", "data-station": code },
        el("h3", {}, el("span", { class: "zh" }, zh), el("span", { class: "en" }, en)),
        el("ul", { class: "plain now" }, now.length ? now.map((t) => line(code, t)) : el("li", { class: "none" }, "—")),
        el("h4", {}, both("tv.next"), b?.waiting != null ? el("span", { class: "count" }, both("tv.waiting", { n: b.waiting })) : ""),
        el("ol", { class: "plain next" }, next.length ? next.map((t) => line(code, t)) : el("li", { class: "none" }, both("tv.none"))),
        later.length ? el("h4", { class: "later-h" }, both("tv.later")) : "",
        later.length ? el("ul", { class: "plain later" }, later.map((t) => line(code, t, { later: true }))) : "",
        // the count says everyone waiting here; those busy at another station are not called
        // now (call-next skips them), so they are named by number, not listed as next
        elsewhere(b) > 0 ? el("p", { class: "elsewhere", "data-testid": "elsewhere" }, both("tv.elsewhere", { n: elsewhere(b) })) : "",
        // kept for a timed draw due soon: here, not at another exam, and not called now
        b?.held > 0 ? el("p", { class: "elsewhere", "data-testid": "held" }, both("tv.held", { n: b.held })) : "",
      );
    }),
  );
}

const elsewhere = (b) => b?.busy_elsewhere || 0;

function showCall(code, t) {
  const b = boards.get(code);
  const [zh, en] = stationName(code, b?.name, b?.name_zh);
  document.getElementById("tv-calling-ticket").textContent = t.ticket;
  document.getElementById("tv-calling-name").textContent = t.masked_name;
  document.getElementById("tv-calling-room").textContent = `${zh} ${roomText(code, t.room, "zh")}`.trim();
  document.getElementById("tv-calling-room-en").textContent = [en, roomText(code, t.room, "en")].filter(Boolean).join(" · ");
  const panel = document.getElementById("tv-calling");
  panel.dataset.station = code;
  panel.dataset.ticket = t.ticket;
  panel.dataset.recalls = String(t.recalls ?? 0);
  panel.dataset.announced = String(Number(panel.dataset.announced || 0) + 1); // for the browser tests
  panel.classList.remove("flash");
  void panel.offsetWidth; // restart the animation
  panel.classList.add("flash");
}

// ---- the call: chime and voice -----------------------------------------------------------

function chime() {
  if (!soundOn || !audio) return Promise.resolve();
  const start = audio.currentTime + 0.05;
  // ding-dong: two soft bell tones (E6, C6), each with a quick attack and a long decay
  [[1318.5, 0], [1046.5, 0.45]].forEach(([freq, at]) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start + at);
    gain.gain.exponentialRampToValueAtTime(0.5, start + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 1.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + at);
    osc.stop(start + at + 1.3);
  });
  return sleep(1500);
}

function chineseVoice() {
  if (!("speechSynthesis" in window)) return null;
  const voices = speechSynthesis.getVoices();
  return voices.find((v) => v.lang === "zh-CN") || voices.find((v) => v.lang?.startsWith("zh")) || null;
}

function speak(code, t) {
  const voice = chineseVoice();
  if (!soundOn || !voice) return Promise.resolve();
  const [zh] = stationName(code, boards.get(code)?.name, boards.get(code)?.name_zh);
  // "请 LAB 0 0 2 号到抽血 1 号窗口": the ticket's digits one by one, as a caller reads them
  const ticket = t.ticket.replace(/-/g, " ").replace(/(\d)/g, " $1 ").replace(/\s+/g, " ").trim();
  const text = `请 ${ticket} 号，到${zh}${roomText(code, t.room, "zh")}`;
  return new Promise((resolve) => {
    const u = new SpeechSynthesisUtterance(text);
    u.voice = voice;
    u.lang = voice.lang;
    u.rate = 0.9;
    u.onend = u.onerror = () => resolve();
    speechSynthesis.speak(u);
    setTimeout(resolve, 8000); // never wait on a voice that does not end
  });
}

async function announceNext() {
  if (announcing) return;
  announcing = true;
  while (announcements.length) {
    const { code, t, name } = announcements.shift();
    showCall(code, t, name);
    await chime();
    await speak(code, t);
    await sleep(600);
  }
  announcing = false;
}

function noteCalls(code, board) {
  // newest call first on the big panel: sort what is new by called_at
  const fresh = [];
  for (const t of board.now_calling || []) {
    const key = `${code}|${t.ticket}|${t.called_at}|${t.recalls ?? 0}`;
    if (seen.has(key)) continue;
    seen.add(key);
    fresh.push(t);
  }
  if (!primed) {
    // at start, the big panel shows the latest call already on the boards, silently
    for (const t of fresh) if (!latest || (t.called_at || "") > (latest.t.called_at || "")) latest = { code, t, name: board.name };
    return;
  }
  fresh.sort((a, b) => (a.called_at || "").localeCompare(b.called_at || ""));
  for (const t of fresh) announcements.push({ code, t, name: board.name });
  announceNext();
}
let latest = null;

// ---- the data ---------------------------------------------------------------------------

async function stationCodes() {
  const wanted = new URLSearchParams(location.search).get("stations");
  if (wanted) {
    return [...new Set(wanted.split(",").map((s) => s.trim().toUpperCase()).filter((s) => /^[A-Z0-9_-]{1,16}$/.test(s)))];
  }
  // Every open station's board (GET /v1/boards, public), read again until it answers.
  for (let delay = 2000; ; delay = Math.min(delay * 2, 30000)) {
    try {
      const codes = (await loadStations()).map((s) => s.code);
      document.getElementById("offline-banner").hidden = true;
      return codes;
    } catch {
      document.getElementById("offline-banner").hidden = false;
      await sleep(delay);
    }
  }
}

function follow(code, codes) {
  const onData = (board) => {
    boards.set(code, board);
    noteCalls(code, board);
    renderBoards(codes.filter((c) => boards.has(c) || !boards.size));
  };
  const onError = (err) => {
    if (err instanceof ApiError && err.status === 404) {
      stop?.();
      boards.delete(code);
      codes.splice(codes.indexOf(code), 1);
      renderBoards(codes);
    }
  };
  const stop = longPoll(`/v1/stations/${encodeURIComponent(code)}/board`, onData, { wait: 25, onError });
  return stop;
}

/** More boards than the browser keeps connections for (six per host): read them in turn with
 * ETag every 2 s instead of holding a long-poll each. */
function pollAll(codes) {
  const etags = new Map();
  const banner = document.getElementById("offline-banner");
  (async () => {
    for (;;) {
      let ok = true;
      for (const code of [...codes]) {
        try {
          const headers = etags.has(code) ? { "If-None-Match": etags.get(code) } : {};
          const r = await api(`/v1/stations/${encodeURIComponent(code)}/board`, { headers, auth: false });
          if (r.status !== 304) {
            etags.set(code, r.etag);
            boards.set(code, r.data);
            noteCalls(code, r.data);
          }
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) codes.splice(codes.indexOf(code), 1);
          else ok = false;
        }
      }
      banner.hidden = ok;
      renderBoards(codes);
      if (!primed) prime();
      await sleep(2000);
    }
  })();
}

function prime() {
  primed = true;
  if (latest) showCall(latest.code, latest.t, latest.name);
}

// ---- start ------------------------------------------------------------------------------

function translateStatic() {
  for (const node of document.querySelectorAll("[data-both]")) node.textContent = both(node.dataset.both);
}

async function start() {
  translateStatic();
  tick();
  setInterval(tick, 1000);
  const sound = document.getElementById("tv-sound");
  sound.addEventListener("click", async () => {
    audio = audio || new AudioContext();
    await audio.resume();
    soundOn = true;
    speechSynthesis?.getVoices(); // some browsers load voices on first ask
    sound.textContent = both("tv.sound.on");
    sound.classList.add("on");
    sound.setAttribute("aria-pressed", "true");
    chime();
    setTimeout(() => (sound.hidden = true), 3000);
  });
  const codes = await stationCodes();
  document.getElementById("tv-boards").dataset.count = String(codes.length);
  renderBoards(codes);
  if (codes.length <= 4) {
    codes.slice().forEach((code) => follow(code, codes));
    setTimeout(prime, 1500); // the first answers have come: from now on a new call chimes
  } else {
    pollAll(codes);
  }
  // the cursor and the screen saver: a TV shows no pointer and stays awake where it can
  document.body.classList.add("no-cursor");
  navigator.wakeLock?.request("screen").catch(() => {});
}

start();
