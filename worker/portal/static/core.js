// Shared by the portal's views: DOM building (text only, never HTML from data), the API
// client (session cookie + CSRF token), loading and error states, formatting.

export const state = { workspace: null, csrf: null };

// h("tag.class#id", {attr: value, onclick: fn}, ...children): an element; strings become text.
export function h(spec, attrs, ...children) {
  const [, tag, rest] = /^([a-z0-9]+)(.*)$/.exec(spec);
  const el = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace el's children with `children` (nested arrays flattened, null and false skipped).
export function fill(el, ...children) {
  el.replaceChildren(
    ...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false),
  );
  return el;
}

// A failed call: `errors` are the problem document's per-field errors ({field, message}).
export class ApiError extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.errors = errors || [];
  }
}

export function wsPath(suffix) {
  return `/portal/api/v1/workspaces/${encodeURIComponent(state.workspace)}${suffix}`;
}

// A call to the portal's API; rejects with ApiError (problem+json detail) when not 2xx.
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = state.csrf || "";
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached; check the connection and retry");
  }
  if (response.status === 204 || response.status === 202) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const detail = (data && data.detail) || `${response.status} ${response.statusText}`;
    if (response.status === 401) sessionEnded(detail);
    throw new ApiError(response.status, detail, data && Array.isArray(data.errors) ? data.errors : []);
  }
  return data;
}

let ended = false;
export function sessionEnded(detail) {
  if (ended) return;
  ended = true;
  document.getElementById("nav").hidden = true;
  show(
    h("h1", { text: "This portal session has ended" }),
    h("p.error", { role: "alert", text: detail }),
    h("p", { text: "Open the portal again from the product (a new link)." }),
  );
}

export function main() {
  return document.getElementById("main");
}

export function show(...nodes) {
  const list = nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false);
  if (ended && !list.some((n) => n.textContent.includes("session has ended"))) return;
  fill(main(), list);
}

export function loading(text = "Loading…") {
  return h("p.loading", { role: "status", text });
}

export function errorBox(err, retry) {
  return h(
    "div.error",
    { role: "alert" },
    h("span", { text: err.message || String(err) }),
    retry ? [" ", h("button", { type: "button", onclick: retry, text: "Retry" })] : null,
  );
}

// Run an async action from a button: disabled while it runs, errors shown in `where`.
export async function busy(button, action, where) {
  button.disabled = true;
  const spinner = loading("Working…");
  if (where) where.replaceChildren(spinner);
  try {
    return await action();
  } catch (err) {
    if (where) where.replaceChildren(errorBox(err));
    else toast(err.message);
    return undefined;
  } finally {
    spinner.remove();
    button.disabled = false;
  }
}

let toastTimer = null;
export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 4000);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function badge(value) {
  return h(`span.badge.${value}`, { text: value.replaceAll("_", " ") });
}

// The secret, shown once, with a copy button.
export function secretPanel(secret, note) {
  const code = h("code.secret-value", { text: secret });
  const copy = h("button", {
    type: "button",
    text: "Copy",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        toast("Secret copied");
      } catch (err) {
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        toast("Press Ctrl+C (or ⌘C) to copy the selected secret");
      }
    },
  });
  return h(
    "div.notice.secret-panel",
    { role: "region", "aria-label": "Signing secret" },
    h("p", {}, h("strong", { text: "Signing secret — shown only now. " }), note || ""),
    h("div.secret", {}, code, copy),
  );
}

// A modal dialog; resolves true when confirmed.
export function confirmDialog(title, body, confirmText, danger) {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.close();
      resolve(value);
    };
    dialog.replaceChildren(
      h("h2#dialog-title", { text: title }),
      ...(Array.isArray(body) ? body : [body]),
      h(
        "div.actions",
        {},
        h("button", { type: "button", text: "Cancel", onclick: () => done(false) }),
        h(`button.${danger ? "danger" : "primary"}.confirm`, {
          type: "button",
          text: confirmText,
          onclick: () => done(true),
        }),
      ),
    );
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}
