// Create and edit a webhook: name, description, URL, events from the catalogue by category
// with Select All (per category and overall), entity, and an advanced part (filters, fields,
// headers, ordering, timeout).
import { api, errorBox, h, loading, secretPanel, show, wsPath } from "./core.js";

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

function field(label, input, hint) {
  return h("div.field", {}, h("label", { for: input.id, text: label }), input, hint ? h("span.muted", { text: hint }) : null);
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

export async function formView(id) {
  show(loading());
  const [catalogue, sub] = await Promise.all([
    api("GET", "/portal/api/v1/event-types"),
    id ? api("GET", wsPath(`/subscriptions/${id}`)) : Promise.resolve(null),
  ]);
  const types = catalogue.data;
  const s = sub || { name: "", description: "", url: "", events: [], entity: null, filters: [], fields: [], headers: [], ordering: "endpoint", timeout_ms: null };
  const name = h("input#name", { type: "text", maxlength: 200, value: s.name });
  const description = h("textarea#description", { rows: 2, maxlength: 2000 });
  description.value = s.description;
  const url = h("input#url", { type: "url", required: true, value: s.url, placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const entity = h("input#entity", { type: "text", value: s.entity || "", placeholder: "any entity" });
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
    [["endpoint", "In order, one at a time"], ["none", "Any order, in parallel"]].map(([v, t]) => h("option", { value: v, selected: v === s.ordering, text: t })));
  const timeout = h("input#timeout", { type: "number", min: 1, max: 30000, value: sub ? s.timeout_ms : "", placeholder: "default" });
  const errors = h("div.form-errors", { "aria-live": "assertive" });
  const submit = h("button.primary#save", { type: "submit", text: sub ? "Save" : "Create" });
  const addFilter = h("button", { type: "button", text: "Add filter" });
  addFilter.addEventListener("click", () => filters.add(undefined));
  const addHeader = h("button", { type: "button", text: "Add header" });
  addHeader.addEventListener("click", () => { headersTouched = true; headers.add(""); });

  const form = h("form.subscription", { novalidate: true },
    errors,
    field("Name", name),
    field("Description", description),
    field("Endpoint URL", url, "Receives a signed POST per event. It must answer a challenge when saved."),
    picker.node,
    types.length ? null : field("Event patterns", other, "Comma-separated: record.created, contact.*, *"),
    field("Entity", entity, "Only events about this entity (leave empty for all)."),
    h("details.advanced", {},
      h("summary", { text: "Advanced" }),
      h("h3", { text: "Filters" }), h("p.muted", { text: "Deliver only events whose JSON matches every condition." }),
      filters.list, addFilter,
      field("Fields", fields, "Send only these fields of the event (comma-separated paths; empty: all)."),
      h("h3", { text: "Headers" }), h("p.muted", { text: sub ? "Values are not shown. Editing replaces the whole set." : "Sent with every delivery." }),
      headers.list, addHeader,
      field("Ordering", ordering),
      field("Timeout (ms)", timeout),
      types.length ? field("Other event patterns", other, "Patterns the catalogue above does not list.") : null),
    h("div.actions", {}, submit, h("a.button", { href: sub ? `#/subs/${id}` : "#/", text: "Cancel" })));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const events = [...new Set([...picker.patterns(), ...split(other.value)])];
    const body = {
      name: name.value.trim(),
      description: description.value.trim(),
      url: url.value.trim(),
      events,
      entity: entity.value.trim() || null,
      filters: [...filters.list.querySelectorAll(".filter")].map((row) => ({
        path: row.querySelector(".filter-path").value.trim(),
        op: row.querySelector(".filter-op").value,
        values: row.querySelector(".filter-op").value === "exists" ? [] : split(row.querySelector(".filter-values").value),
      })).filter((f) => f.path),
      fields: split(fields.value),
      ordering: ordering.value,
    };
    if (timeout.value) body.timeout_ms = Number(timeout.value);
    if (headersTouched) {
      body.headers = {};
      for (const row of headers.list.querySelectorAll(".header")) {
        const key = row.querySelector(".header-name").value.trim();
        if (key) body.headers[key] = row.querySelector(".header-value").value;
      }
    }
    if (!body.url || events.length === 0) {
      errors.replaceChildren(errorBox(new Error(!body.url ? "Enter the endpoint URL." : "Pick at least one event.")));
      errors.scrollIntoView();
      return;
    }
    submit.disabled = true;
    errors.replaceChildren(loading(sub ? "Saving…" : "Creating (the endpoint is challenged)…"));
    try {
      const saved = sub
        ? await api("PATCH", wsPath(`/subscriptions/${id}`), body)
        : await api("POST", wsPath("/subscriptions"), body);
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
      errors.replaceChildren(errorBox(err));
      errors.scrollIntoView();
    } finally {
      submit.disabled = false;
    }
  });
  show(h("p", {}, h("a", { href: sub ? `#/subs/${id}` : "#/", text: "← Back" })), h("h1", { text: sub ? `Edit ${s.name || "webhook"}` : "Create webhook" }), form);
  name.focus();
}
