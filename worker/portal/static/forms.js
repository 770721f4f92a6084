// Create and edit a webhook: name, description, URL, events from the catalogue by category
// with Select All (per category and overall), entity, and an advanced part (filters, fields,
// headers, ordering scope and max in flight, rate limit, timeout). Limits come from the
// API's OpenAPI schema; errors (the form's own and the API's per-field `errors`) show next
// to their fields, all at once. An edit sends only what changed.
import { api, h, loading, secretPanel, show, wsPath } from "./core.js";
import { limits } from "./schema.js";

// The router's rule for one pattern and one event type (worker/subscriptions/patterns.py).
export function matches(pattern, name) {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return name.startsWith(pattern.slice(0, -1));
  if (pattern.endsWith(".saved")) {
    const stem = pattern.slice(0, -"saved".length);
    return name === `${stem}created` || name === `${stem}updated`;
  }
  return pattern === name;
}

// What Select All of a category stores: "category.*" when that pattern selects exactly the
// category's types (so it also takes its future types), else their names (Catalogue.select_all).
export function selectAll(types, category) {
  const names = types.filter((t) => t.category === category).map((t) => t.name);
  const wildcard = `${category}.*`;
  const matched = types.filter((t) => matches(wildcard, t.name)).map((t) => t.name);
  const same = names.length > 0 && matched.length === names.length && matched.every((n, i) => n === names[i]);
  return same ? [wildcard] : names;
}

// A labelled input with its hint and the slot its error goes in (#err-<input id>).
function field(label, input, hint) {
  const error = h("p.field-error", { id: `err-${input.id}`, role: "alert", hidden: true });
  input.setAttribute("aria-describedby", error.id);
  return h("div.field", {}, h("label", { for: input.id, text: label }), input, hint ? h("span.muted", { text: hint }) : null, error);
}

function eventPicker(types, chosen) {
  const boxes = [];
  const categories = [...new Set(types.map((t) => t.category))];
  const all = h("input#select-all", { type: "checkbox" });
  const categoryBoxes = new Map();
  const sync = () => {
    for (const [category, box] of categoryBoxes) {
      const mine = boxes.filter((b) => b.dataset.category === category);
      const on = mine.filter((b) => b.checked).length;
      box.checked = on === mine.length;
      box.indeterminate = on > 0 && on < mine.length;
    }
    const on = boxes.filter((b) => b.checked).length;
    all.checked = on === boxes.length;
    all.indeterminate = on > 0 && on < boxes.length;
  };
  all.addEventListener("change", () => {
    for (const b of boxes) b.checked = all.checked;
    sync();
  });
  const groups = categories.map((category) => {
    const box = h("input.select-category", { type: "checkbox", id: `all-${category}`, "data-category": category });
    categoryBoxes.set(category, box);
    box.addEventListener("change", () => {
      for (const b of boxes) if (b.dataset.category === category) b.checked = box.checked;
      sync();
    });
    const items = types.filter((t) => t.category === category).map((t) => {
      const input = h("input.event", {
        type: "checkbox", id: `ev-${t.name}`, value: t.name, "data-category": category,
        checked: chosen.some((p) => matches(p, t.name)),
      });
      input.addEventListener("change", sync);
      boxes.push(input);
      return h("label.check", { for: input.id, title: t.description }, input, h("span", { text: t.name }));
    });
    return h("fieldset.category", {},
      h("legend", { text: category }),
      h("label.check.all", { for: box.id }, box, h("span", { text: `Select all ${category}` })),
      h("div.types", {}, items));
  });
  sync();
  const patterns = () => {
    if (boxes.length && boxes.every((b) => b.checked)) return ["*"];
    const out = [];
    for (const category of categories) {
      const mine = boxes.filter((b) => b.dataset.category === category);
      if (mine.every((b) => b.checked)) out.push(...selectAll(types, category));
      else out.push(...mine.filter((b) => b.checked).map((b) => b.value));
    }
    return out;
  };
  const node = h("fieldset.events", {},
    h("legend", { text: "Events" }),
    h("label.check.all", { for: "select-all" }, all, h("span", { text: "Select all events" })),
    groups);
  return { node, patterns };
}

function rows(make, initial) {
  const list = h("div.rows");
  const add = (value) => {
    const row = make(value);
    const remove = h("button", { type: "button", text: "Remove", "aria-label": "Remove this row" });
    remove.addEventListener("click", () => row.remove());
    row.append(remove);
    list.append(row);
  };
  for (const value of initial) add(value);
  return { list, add };
}

function filterRow(f = { path: "", op: "eq", values: [] }) {
  const op = h("select.filter-op", { "aria-label": "Operator" },
    ["eq", "in", "exists"].map((o) => h("option", { value: o, selected: o === f.op, text: o })));
  return h("div.row.filter",
    {},
    h("input.filter-path", { type: "text", "aria-label": "Path (e.g. record.stage)", placeholder: "record.stage", value: f.path }),
    op,
    h("input.filter-values", { type: "text", "aria-label": "Values, comma-separated", placeholder: "won, lost", value: f.values.join(", ") }));
}

function headerRow(name = "") {
  return h("div.row.header",
    {},
    h("input.header-name", { type: "text", "aria-label": "Header name", placeholder: "X-Team", value: name }),
    h("input.header-value", { type: "text", "aria-label": "Header value", placeholder: name ? "(unchanged)" : "value" }));
}

const split = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

export const SCOPES = [
  ["key", "In order per record", "Events about the same record arrive in order; different records go in parallel."],
  ["endpoint", "In order, one at a time", "Every event waits for the previous one to be delivered."],
  ["none", "Any order, in parallel", "Fastest; events may arrive in any order."],
];

const MALFORMED_URL = "This is not a valid URL. It looks like https://example.com/webhooks.";

// Which slot an API error's field goes to (its first segment: "filters.0.path" -> filters).
const SLOTS = {
  name: "name", description: "description", url: "url", events: "events", entity: "entity",
  filters: "filters", fields: "fields", headers: "headers", ordering: "ordering",
  max_in_flight: "max-in-flight", rate_limit: "rate-limit", timeout_ms: "timeout",
};

function numberError(input, lim, label) {
  if (input.value === "") return null;
  const n = Number(input.value);
  const whole = input.step !== "any";
  if (!Number.isFinite(n) || (whole && !Number.isInteger(n))) return whole ? "Enter a whole number." : "Enter a number.";
  if (lim.exclusiveMinimum !== undefined && n <= lim.exclusiveMinimum) return `${label} must be more than ${lim.exclusiveMinimum}.`;
  if (lim.minimum !== undefined && lim.exclusiveMinimum === undefined && n < lim.minimum) return `${label} must be at least ${lim.minimum}.`;
  if (lim.maximum !== undefined && n > lim.maximum) return `${label} must be at most ${lim.maximum}.`;
  return null;
}

export async function formView(id) {
  show(loading());
  const [catalogue, sub, lim] = await Promise.all([
    api("GET", "/portal/api/v1/event-types"),
    id ? api("GET", wsPath(`/subscriptions/${id}`)) : Promise.resolve(null),
    limits(id ? "SubscriptionPatch" : "SubscriptionCreate"),
  ]);
  const L = (name) => lim[name] || {};
  const types = catalogue.data;
  const s = sub || { name: "", description: "", url: "", events: [], entity: null, filters: [], fields: [], headers: [], ordering: "key", max_in_flight: null, rate_limit: null, timeout_ms: null };
  const name = h("input#name", { type: "text", maxlength: L("name").maxLength, required: true, value: s.name, autocomplete: "off" });
  const description = h("textarea#description", { rows: 2, maxlength: L("description").maxLength });
  description.value = s.description;
  const url = h("input#url", { type: "url", required: true, maxlength: L("url").maxLength, value: s.url, placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const entity = h("input#entity", { type: "text", maxlength: L("entity").maxLength, value: s.entity || "", placeholder: "any entity" });
  const picker = eventPicker(types, s.events);
  const known = (p) => types.some((t) => matches(p, t.name));
  const other = h("input#other-events", { type: "text", value: s.events.filter((p) => !types.length || !known(p)).join(", "), placeholder: types.length ? "" : "record.created, contact.*" });
  const filters = rows(filterRow, s.filters);
  const headers = rows(headerRow, s.headers);
  let headersTouched = !sub;
  headers.list.addEventListener("input", () => { headersTouched = true; });
  headers.list.addEventListener("click", () => { headersTouched = true; });
  const fields = h("input#fields", { type: "text", value: s.fields.join(", "), placeholder: "id, record.name" });
  const ordering = h("select#ordering", {},
    SCOPES.map(([v, t]) => h("option", { value: v, selected: v === s.ordering, text: t })));
  const scopeHint = h("span.muted#ordering-hint");
  const maxInFlight = h("input#max-in-flight", { type: "number", min: L("max_in_flight").minimum, max: L("max_in_flight").maximum, value: s.max_in_flight ?? "", placeholder: "10" });
  const syncScope = () => {
    const scope = SCOPES.find(([v]) => v === ordering.value);
    scopeHint.textContent = scope ? scope[2] : "";
    maxInFlight.disabled = ordering.value === "endpoint";
  };
  ordering.addEventListener("change", syncScope);
  syncScope();
  const rateLimit = h("input#rate-limit", { type: "number", step: "any", min: 0, max: L("rate_limit").maximum, value: s.rate_limit ?? "", placeholder: "no limit" });
  const timeout = h("input#timeout", { type: "number", min: L("timeout_ms").minimum, max: L("timeout_ms").maximum, value: sub ? s.timeout_ms : "", placeholder: "default" });
  const summary = h("div.form-errors", { "aria-live": "assertive" });
  const submit = h("button.primary#save", { type: "submit", text: sub ? "Save" : "Create" });
  const addFilter = h("button", { type: "button", text: "Add filter" });
  addFilter.addEventListener("click", () => filters.add(undefined));
  const addHeader = h("button", { type: "button", text: "Add header" });
  addHeader.addEventListener("click", () => { headersTouched = true; headers.add(""); });
  const slot = (key) => h("p.field-error", { id: `err-${key}`, role: "alert", hidden: true });
  const advanced = h("details.advanced", { open: Boolean(sub) },
    h("summary", { text: "Advanced" }),
    h("h3", { text: "Filters" }), h("p.muted", { text: "Deliver only events whose JSON matches every condition." }),
    filters.list, addFilter, slot("filters"),
    field("Fields", fields, "Send only these fields of the event (comma-separated paths; empty: all)."),
    h("h3", { text: "Headers" }), h("p.muted", { text: sub ? "Values are not shown. Editing replaces the whole set." : "Sent with every delivery." }),
    headers.list, addHeader, slot("headers"),
    field("Ordering", ordering), scopeHint,
    field("Max in flight", maxInFlight, `Deliveries attempted at once (${L("max_in_flight").minimum ?? 1}–${L("max_in_flight").maximum ?? 100}; empty: 10).`),
    field("Rate limit (per second)", rateLimit, "Empty: no limit."),
    field("Timeout (ms)", timeout, `${L("timeout_ms").minimum ?? 1}–${L("timeout_ms").maximum ?? 30000} ms; empty: the default.`),
    types.length ? field("Other event patterns", other, "Patterns the catalogue above does not list.") : null);

  const form = h("form.subscription", { novalidate: true },
    summary,
    field("Name", name),
    field("Description", description, L("description").maxLength ? `At most ${L("description").maxLength} characters.` : null),
    field("Endpoint URL", url, "Receives a signed POST per event. It must answer a verification request when saved."),
    picker.node, slot("events"),
    types.length ? null : field("Event patterns", other, "Comma-separated: record.created, contact.*, *"),
    field("Entity", entity, "Only events about this entity (leave empty for all)."),
    advanced,
    h("div.actions", {}, submit, h("a.button", { href: sub ? `#/subs/${id}` : "#/", text: "Cancel" })));

  // Everything the form holds, as the API's body (headers only once touched).
  const current = () => {
    const body = {
      name: name.value.trim(),
      description: description.value.trim(),
      url: url.value.trim(),
      events: [...new Set([...picker.patterns(), ...split(other.value)])],
      entity: entity.value.trim() || null,
      filters: [...filters.list.querySelectorAll(".filter")].map((row) => ({
        path: row.querySelector(".filter-path").value.trim(),
        op: row.querySelector(".filter-op").value,
        values: row.querySelector(".filter-op").value === "exists" ? [] : split(row.querySelector(".filter-values").value),
      })).filter((f) => f.path),
      fields: split(fields.value),
      ordering: ordering.value,
      max_in_flight: maxInFlight.value === "" ? null : Number(maxInFlight.value),
      rate_limit: rateLimit.value === "" ? null : Number(rateLimit.value),
      timeout_ms: timeout.value === "" ? null : Number(timeout.value),
    };
    if (headersTouched) {
      body.headers = {};
      for (const row of headers.list.querySelectorAll(".header")) {
        const key = row.querySelector(".header-name").value.trim();
        if (key) body.headers[key] = row.querySelector(".header-value").value;
      }
    }
    return body;
  };
  const initial = current();

  const clearErrors = () => {
    summary.replaceChildren();
    for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  };
  // Show every error at once: each next to its field, the rest (and a count) on top.
  const showErrors = (errors) => {
    clearErrors();
    const loose = [];
    let first = null;
    for (const e of errors) {
      const key = SLOTS[String(e.field || "").split(".")[0]];
      const el = key && form.querySelector(`#err-${key}`);
      if (!el) { loose.push(e.message); continue; }
      el.textContent = el.textContent ? `${el.textContent} ${e.message}` : e.message;
      el.hidden = false;
      const input = form.querySelector(`#${key}`);
      if (input) input.setAttribute("aria-invalid", "true");
      if (el.closest("details")) el.closest("details").open = true;
      first = first || input || el;
    }
    const placed = errors.length - loose.length;
    summary.replaceChildren(
      placed ? h("p.error.summary", { role: "alert", text: placed === 1 ? "Fix the field marked below." : `Fix the ${placed} fields marked below.` }) : null,
      ...loose.map((m) => h("p.error", { role: "alert", text: m })),
    );
    (first || summary).scrollIntoView({ block: "center" });
    if (first && first.focus) first.focus();
  };
  const validate = (body) => {
    const errors = [];
    const text = (key, value, label) => {
      const l = L(key);
      if ((l.minLength || 0) > 0 && key === "name" && !value) errors.push({ field: key, message: `Enter a ${label}.` });
      else if (l.maxLength && value.length > l.maxLength) errors.push({ field: key, message: `At most ${l.maxLength} characters (now ${value.length}).` });
    };
    // An endpoint made without a name (through the API) can still be edited as it is.
    if (!sub || body.name !== initial.name) text("name", body.name, "name");
    text("description", body.description, "description");
    if (!body.url) errors.push({ field: "url", message: "Enter the endpoint URL." });
    else if (url.validity.typeMismatch || /[\s<>"{}|\\^`]/.test(body.url) || !/^https?:\/\/[^/?#]+/i.test(body.url)) errors.push({ field: "url", message: MALFORMED_URL });
    if (body.events.length === 0) errors.push({ field: "events", message: "Pick at least one event." });
    for (const [key, input, label] of [["max_in_flight", maxInFlight, "Max in flight"], ["rate_limit", rateLimit, "The rate limit"], ["timeout_ms", timeout, "The timeout"]]) {
      const message = numberError(input, L(key), label);
      if (message) errors.push({ field: key, message });
    }
    return errors;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = current();
    const problems = validate(body);
    if (problems.length) {
      showErrors(problems);
      return;
    }
    let send = body;
    if (sub) {
      // Only what changed: a field the user did not touch keeps its stored value.
      send = {};
      for (const [key, value] of Object.entries(body)) {
        if (JSON.stringify(value) !== JSON.stringify(initial[key])) send[key] = value;
      }
      if (Object.keys(send).length === 0) {
        location.hash = `#/subs/${id}`;
        return;
      }
    } else {
      for (const key of ["max_in_flight", "rate_limit", "timeout_ms"]) if (send[key] === null) delete send[key];
    }
    submit.disabled = true;
    clearErrors();
    summary.replaceChildren(loading(sub ? "Saving…" : "Creating (we send the endpoint a verification request)…"));
    try {
      const saved = sub
        ? await api("PATCH", wsPath(`/subscriptions/${id}`), send)
        : await api("POST", wsPath("/subscriptions"), send);
      if (sub) {
        location.hash = `#/subs/${id}`;
        return;
      }
      show(
        h("h1", { text: "Webhook created" }),
        h("p", {}, "Events now go to ", h("code", { text: saved.url }), "."),
        secretPanel(saved.secret, "Store it in your receiver to verify signatures."),
        h("div.actions", {}, h("a.button.primary#open-created", { href: `#/subs/${saved.id}`, text: "Open the webhook" })),
      );
    } catch (err) {
      showErrors(err.errors && err.errors.length ? err.errors : [{ field: "", message: err.message }]);
    } finally {
      submit.disabled = false;
    }
  });
  show(h("p", {}, h("a", { href: sub ? `#/subs/${id}` : "#/", text: "← Back" })), h("h1.wrap", { text: sub ? `Edit ${s.name || "webhook"}` : "Create webhook" }), form);
  name.focus();
}
