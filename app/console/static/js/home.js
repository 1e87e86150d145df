// The login page and, once signed in, the screens this role may open.
import { addStrings, applyI18n, boot, currentUser, el, login, showProblem, t, token, topbar } from "./core.js";

addStrings({
  "login.title": ["登录", "Log in"],
  "login.username": ["用户名", "Username"],
  "login.password": ["密码", "Password"],
  "login.submit": ["登录", "Log in"],
  "home.title": ["工作台", "Console"],
  "home.choose": ["请选择工作台", "Choose a screen"],
  "screen.desk": ["前台", "Front desk"],
  "screen.station": ["检查站", "Exam station"],
  "screen.chart": ["孕妇档案与审核", "Charts and reviews"],
  "screen.butler": ["管家手机端", "Butler (phone)"],
  "screen.tv": ["候诊大屏", "Waiting-room TV"],
  "screen.docs": ["接口文档", "API docs"],
});

// Which screen each role works in (the API decides what each may do on it).
const SCREENS = {
  admin: ["desk", "station", "chart", "butler", "tv", "docs"],
  front_desk: ["desk", "tv"],
  station: ["station", "tv"],
  doctor: ["chart", "tv"],
  nutritionist: ["chart", "station"],
  butler: ["butler"],
};
const PATHS = {
  desk: "/console/desk.html",
  station: "/console/station.html",
  chart: "/console/chart.html",
  butler: "/console/butler.html",
  tv: "/console/tv.html",
  docs: "/docs",
};

boot();

function showHome(me) {
  topbar("home.title", me);
  document.getElementById("login").hidden = true;
  const list = document.getElementById("screens");
  list.replaceChildren(
    ...(SCREENS[me.role] || []).map((s) => el("a", { href: PATHS[s] }, t(`screen.${s}`))),
  );
  document.getElementById("home").hidden = false;
}

function next() {
  const wanted = new URLSearchParams(location.search).get("next");
  // only a console page of this origin: never a URL someone put in the link
  return wanted && /^[a-z-]+\.html(\?[\w=&%.-]*)?$/.test(wanted) ? `/console/${wanted}` : null;
}

const form = document.getElementById("login");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const me = await login(form.username.value.trim(), form.password.value);
    form.password.value = "";
    const target = next();
    if (target) location.assign(target);
    else showHome(me);
  } catch (err) {
    showProblem(form, err);
  }
});

document.addEventListener("pb:lang", () => {
  const me = currentUser();
  if (me && token()) showHome(me);
  else topbar("login.title", null);
});

if (token() && currentUser()) showHome(currentUser());
else {
  topbar("login.title", null);
  form.hidden = false;
  applyI18n(document);
  form.username.focus();
}
