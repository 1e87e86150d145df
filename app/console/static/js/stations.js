// The clinic's stations in Chinese and English, as the API names them (GET /v1/boards, public:
// code, name (English), name_zh, place_kind). A screen passes the names its answer carries
// (board.name_zh, ticket.station_name_zh, place_kind); where an answer has none, the names
// learnt from /v1/boards are used; and with no Chinese name at all, the English one twice.
import { api } from "./core.js";

const known = new Map(); // code → {name, name_zh, place_kind}
let loading = null;

/** Remember stations (items of /v1/boards or /v1/stations). */
export function learnStations(items) {
  for (const s of items || []) if (s && s.code) known.set(s.code, s);
}

/** The public list of boards, read once (also learns their names). */
export function loadStations() {
  loading = loading || api("/v1/boards", { auth: false })
    .then(({ data }) => {
      learnStations(data.items);
      return data.items;
    })
    .catch((err) => {
      loading = null; // offline: try again next time
      throw err;
    });
  return loading;
}

/** [中文, English] for a station. */
export function stationName(code, apiName, apiNameZh) {
  const s = known.get(code);
  const en = apiName || s?.name || code;
  const zh = apiNameZh || s?.name_zh || en; // a station without a Chinese name: its name
  return [zh, en];
}

/** "room" or "window" (a counter). */
export function placeKind(code, kind) {
  return kind || known.get(code)?.place_kind || "room";
}

/** ["1 号诊室", "Room 1"] or ["1 号窗口", "Window 1"]; ["", ""] without a room. */
export function roomNames(code, room, kind) {
  if (room == null) return ["", ""];
  return placeKind(code, kind) === "window" ? [`${room} 号窗口`, `Window ${room}`] : [`${room} 号诊室`, `Room ${room}`];
}

// Her page and the TV have no login: the public list is read at once, so that an answer
// without names (an older server) still shows them.
loadStations().catch(() => {});
