// The clinic's stations in Chinese and English by code, for the TV and her page (the API's
// station names are one language; a code not listed here shows the API's name).
export const STATION_NAMES = {
  VIT: ["体征测量", "Vitals"],
  LAB: ["抽血", "Blood draw"],
  BLOOD: ["抽血", "Blood draw"],
  US: ["B超", "Ultrasound"],
  URI: ["留尿", "Urine sample"],
  EXM: ["检查室", "Examination"],
  NST: ["胎心监护", "Fetal monitoring (NST)"],
  NUT: ["营养门诊", "Nutrition clinic"],
  DOC: ["医生诊室", "Doctor"],
};
// a counter with windows, not a room
export const WINDOW_STATIONS = new Set(["LAB", "BLOOD", "URI"]);

export function stationName(code, apiName) {
  return STATION_NAMES[code] || [apiName || code, apiName || code];
}

/** ["1 号诊室", "Room 1"] or ["1 号窗口", "Window 1"]; ["", ""] without a room. */
export function roomNames(code, room) {
  if (room == null) return ["", ""];
  return WINDOW_STATIONS.has(code) ? [`${room} 号窗口`, `Window ${room}`] : [`${room} 号诊室`, `Room ${room}`];
}
