// The portal's entry point: exchange the link in the URL's fragment for a session (a POST,
// so link previews never spend it), then route between views on #/... fragments.
import { ApiError, api, errorBox, h, loading, show, state } from "./core.js";
import { catalogueView, listView, verifyView } from "./views.js";
import { subscriptionView } from "./detail.js";
import { formView } from "./forms.js";

const routes = [
  [/^#\/?$/, () => listView()],
  [/^#\/new$/, () => formView(null)],
  [/^#\/subs\/([\w-]+)$/, (m) => subscriptionView(m[1])],
  [/^#\/subs\/([\w-]+)\/edit$/, (m) => formView(m[1])],
  [/^#\/catalogue$/, () => catalogueView()],
  [/^#\/verify$/, () => verifyView()],
];

function isLink(fragment) {
  return fragment !== "" && !fragment.startsWith("/");
}

function route() {
  if (isLink(location.hash.slice(1))) {
    start(); // a new link opened in this page: exchange it (another workspace, perhaps)
    return;
  }
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.getAttribute("href") === hash || (hash === "#/" && link.getAttribute("href") === "#/");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, view] of routes) {
    const match = pattern.exec(hash);
    if (match) {
      view(match).catch((err) => show(errorBox(err, route)));
      return;
    }
  }
  show(h("h1", { text: "Not found" }), h("p", {}, h("a", { href: "#/", text: "Back to the endpoints" })));
}

async function openSession() {
  const fragment = location.hash.slice(1);
  if (isLink(fragment)) {
    // Drop the link from the address bar and history before using it.
    history.replaceState(null, "", location.pathname + "#/");
    const response = await fetch("/portal/session", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ link: fragment }),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, (data && data.detail) || "this portal link cannot be opened");
    return data;
  }
  return api("GET", "/portal/api/session");
}

async function start() {
  document.getElementById("nav").hidden = true;
  state.workspace = null;
  state.csrf = null;
  show(loading("Opening the portal…"));
  let session;
  try {
    session = await openSession();
  } catch (err) {
    if (err.status === 401 || err.status === 422) {
      show(
        h("h1", { text: "This link cannot be opened" }),
        h("p.error", { role: "alert", text: err.message }),
        h("p", { text: "Portal links work once and for a limited time. Ask the product for a new one." }),
      );
    } else {
      show(errorBox(err, start));
    }
    return;
  }
  state.workspace = session.workspace;
  state.csrf = session.csrf_token;
  document.getElementById("nav").hidden = false;
  route();
}

window.addEventListener("hashchange", route);
start();
