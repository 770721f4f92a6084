// One endpoint's page: its health and activity, everything it is set to, its actions (edit,
// send test, disable/enable, roll the secret, recover, delete) and its logs.
import {
  api, busy, confirmDialog, h, loading, secretPanel, show, toast, when, wsPath,
} from "./core.js";
import { healthSection } from "./charts.js";
import { matches, SCOPES } from "./forms.js";
import { deadLettersPanel, deliveryLogPanel } from "./log.js";
import { ownExample, statusCell, title } from "./views.js";

function testPanel(sub) {
  const out = h("div.test-result", { "aria-live": "polite" });
  const button = h("button#test", { type: "button", text: "Send test", "aria-expanded": "false" });
  let open = false;
  button.addEventListener("click", async () => {
    if (open) {
      out.replaceChildren();
      open = false;
      button.setAttribute("aria-expanded", "false");
      return;
    }
    open = true;
    button.setAttribute("aria-expanded", "true");
    out.replaceChildren(loading("Loading the event types…"));
    const catalogue = await api("GET", "/portal/api/v1/event-types").catch(() => ({ data: [] }));
    const types = catalogue.data.filter((t) => sub.events.some((p) => matches(p, t.name)));
    const kind = h("select#test-event", {}, types.map((t) => h("option", { value: t.name, text: t.name })));
    const payload = h("textarea#test-payload.code", { rows: 12, spellcheck: "false", "aria-label": "Event to send" });
    const fillExample = () => {
      const t = types.find((x) => x.name === kind.value);
      payload.value = t ? JSON.stringify(ownExample(t.example), null, 2) : "";
    };
    kind.addEventListener("change", fillExample);
    fillExample();
    const result = h("div.test-outcome", { "aria-live": "polite" });
    const send = h("button.primary#send-test", { type: "button", text: "Send" });
    send.addEventListener("click", () => {
      const body = {};
      if (kind.value) body.event_type = kind.value;
      if (payload.value.trim()) {
        try {
          body.event = JSON.parse(payload.value);
        } catch (err) {
          result.replaceChildren(h("p.error.field-error", { role: "alert", text: "The event is not valid JSON. Check commas and quotes." }));
          return;
        }
      }
      busy(send, async () => {
        const r = await api("POST", wsPath(`/subscriptions/${sub.id}/test`), body);
        result.replaceChildren(
          h("div.notice", {},
            h("p", {}, h("strong", { text: "Status: " }), h("span.test-status", { text: r.status ?? "no response" }),
              " · ", h("span.test-latency", { text: r.latency_ms === null ? "—" : `${Math.round(r.latency_ms)} ms` }),
              " · ", h("span.muted", { text: "recorded in the delivery log as a test" })),
            r.error ? h("p.error", { text: r.error }) : null,
            h("p", { text: "Response body (first 500 characters):" }),
            h("pre.test-body", { text: r.body || "(empty)" })),
        );
      }, result);
    });
    out.replaceChildren(h("div.notice.test-panel", {},
      types.length ? h("div.field", {}, h("label", { for: kind.id, text: "Event type" }), kind) : null,
      h("div.field", {}, h("label", { for: payload.id, text: "Event (edit it freely; the workspace is always yours)" }), payload),
      h("div.actions", {}, send), result));
  });
  return [button, out];
}

function rollButton(sub, out) {
  const button = h("button#roll", { type: "button", text: "Roll secret" });
  button.addEventListener("click", async () => {
    const grace = h("select#grace", {}, [["1h", "1 hour"], ["24h", "24 hours"], ["7d", "7 days"]].map(
      ([value, text]) => h("option", { value, selected: value === "24h", text }),
    ));
    const ok = await confirmDialog(
      "Roll the signing secret",
      [
        h("p", { text: "A new secret signs from now on. During the grace period the old one signs too, so receivers can switch without missing a delivery." }),
        h("div.field", {}, h("label", { for: "grace", text: "Grace period" }), grace),
      ],
      "Roll secret",
    );
    if (!ok) return;
    const chosen = grace.value;
    await busy(button, async () => {
      const rolled = await api("POST", wsPath(`/subscriptions/${sub.id}/roll-secret`), { grace: chosen });
      const ms = { "1h": 3600e3, "24h": 86400e3, "7d": 604800e3 }[chosen];
      out.replaceChildren(
        secretPanel(rolled.secret, `The previous secret keeps signing until ${new Date(Date.now() + ms).toLocaleString()}.`),
      );
    }, out);
  });
  return button;
}

// "Re-send every failed delivery since <time>": the count comes first (a dry run), then the
// confirmation names it.
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function recoverButton(sub, out) {
  const button = h("button#recover", { type: "button", text: "Recover failed…" });
  button.addEventListener("click", async () => {
    const since = h("input#recover-since", { type: "datetime-local", value: localInput(new Date(Date.now() - 86400e3)) });
    const count = h("p.recover-count", { "aria-live": "polite", text: "Counting…" });
    let n = 0;
    const recount = async () => {
      count.textContent = "Counting…";
      const iso = new Date(since.value).toISOString();
      const dry = await api("POST", wsPath(`/subscriptions/${sub.id}/dead-letters/redrive`), { since: iso, dry_run: true });
      n = dry.matched - dry.already_redriven - dry.skipped;
      count.textContent = n === 0
        ? "No failed deliveries to send again since then."
        : `${n} failed ${n === 1 ? "delivery" : "deliveries"} will be sent again${dry.already_redriven ? ` (${dry.already_redriven} already sent again are left out)` : ""}.`;
      const confirm = document.querySelector("#dialog .confirm");
      if (confirm) {
        confirm.textContent = n ? `Re-send ${n}` : "Re-send";
        confirm.disabled = n === 0;
      }
    };
    since.addEventListener("change", () => recount().catch((err) => { count.textContent = err.message; }));
    const asked = confirmDialog(
      "Recover failed deliveries",
      [
        h("p", { text: "Send every delivery that failed for good since the time below again, oldest first, with its original webhook-id." }),
        h("div.field", {}, h("label", { for: since.id, text: "Failed since" }), since),
        count,
      ],
      "Re-send",
    );
    recount().catch((err) => { count.textContent = err.message; });
    if (!(await asked) || n === 0) return;
    await busy(button, async () => {
      const done = await api("POST", wsPath(`/subscriptions/${sub.id}/dead-letters/redrive`), { since: new Date(since.value).toISOString() });
      out.replaceChildren(h("p.notice.recovered", { text: `Sent again: ${done.sent}. They appear in the delivery log once attempted.` }));
    }, out);
  });
  return button;
}

function settingsList(sub) {
  const scope = SCOPES.find(([v]) => v === sub.ordering);
  const item = (label, ...value) => [h("dt", { text: label }), h("dd", {}, ...value)];
  return h("section.settings", { "aria-label": "Settings" },
    h("h2", { text: "Settings" }),
    h("dl.settings-list", {},
      item("URL", h("span.wrap", { text: sub.url })),
      item("Events", sub.events.join(", ")),
      item("Entity", sub.entity || "any"),
      item("Filters", sub.filters.length
        ? h("ul.plain", {}, sub.filters.map((f) => h("li", {}, h("code", { text: f.path }), ` ${f.op}${f.values.length ? ` ${f.values.join(", ")}` : ""}`)))
        : "none: every event"),
      item("Fields sent", sub.fields.length ? sub.fields.join(", ") : "the whole event"),
      item("Custom headers", sub.headers.length ? `${sub.headers.join(", ")} (values hidden)` : "none"),
      item("Ordering", scope ? `${scope[1]} — ${scope[2]}` : sub.ordering),
      item("Max in flight", sub.ordering === "endpoint" ? "1 (one at a time)" : String(sub.max_in_flight ?? 10)),
      item("Rate limit", sub.rate_limit ? `${sub.rate_limit} per second` : "none"),
      item("Timeout", `${sub.timeout_ms} ms`),
      sub.public_key ? item("Public key (v1a)", h("code.wrap", { text: sub.public_key })) : null,
      item("Created", when(sub.created_at)),
      item("Updated", when(sub.updated_at))));
}

export async function subscriptionView(id) {
  show(loading());
  const sub = await api("GET", wsPath(`/subscriptions/${id}`));
  const notices = h("div.notices");
  const [testButton, testOut] = testPanel(sub);
  const toggle = sub.status === "ACTIVE" || sub.status === "PENDING"
    ? h("button#disable", { type: "button", text: "Disable" })
    : h("button#enable", { type: "button", text: "Enable", disabled: sub.status === "BLOCKED" });
  toggle.addEventListener("click", async () => {
    const action = toggle.id === "disable" ? "disable" : "enable";
    if (action === "disable") {
      const ok = await confirmDialog(
        "Disable this webhook?",
        h("p", { text: `${title(sub)} receives nothing until you enable it again. Events that happen meanwhile fail and appear under Dead letters, from where you can send them later.` }),
        "Disable",
        true,
      );
      if (!ok) return;
    }
    await busy(toggle, async () => {
      await api("POST", wsPath(`/subscriptions/${id}/${action}`));
      toast(action === "disable" ? "Disabled: no deliveries until enabled" : "Enabled");
      await subscriptionView(id);
    }, notices);
  });
  const remove = h("button.danger#delete", { type: "button", text: "Delete" });
  remove.addEventListener("click", async () => {
    const ok = await confirmDialog(
      "Delete this webhook?",
      h("p", { text: `${title(sub)} stops receiving events, and this cannot be undone.` }),
      "Delete",
      true,
    );
    if (!ok) return;
    await busy(remove, async () => {
      await api("DELETE", wsPath(`/subscriptions/${id}`));
      toast("Webhook deleted");
      location.hash = "#/";
    }, notices);
  });
  const tabs = h("div.tabs", { role: "tablist" });
  const panel = h("div.tabpanel", { role: "tabpanel" });
  const tab = (label, key, render) => {
    const button = h("button", { type: "button", role: "tab", "data-tab": key, text: label });
    button.addEventListener("click", () => {
      for (const other of tabs.children) other.setAttribute("aria-selected", String(other === button));
      render(sub, panel);
    });
    return button;
  };
  tabs.append(tab("Delivery log", "log", deliveryLogPanel), tab("Dead letters", "dead", deadLettersPanel));
  show(
    h("p", {}, h("a", { href: "#/", text: "← Endpoints" })),
    h("div.head", {}, h("h1", { text: title(sub) }), h("div.sub-status", {}, statusCell(sub, () => subscriptionView(id), false))),
    sub.description ? h("p.muted.wrap", { text: sub.description }) : null,
    h("div.actions", {},
      h("a.button#edit", { href: `#/subs/${id}/edit`, text: "Edit" }),
      testButton, toggle, rollButton(sub, notices), recoverButton(sub, notices), remove),
    notices,
    testOut,
    healthSection(sub),
    settingsList(sub),
    tabs,
    panel,
  );
  tabs.children[0].click();
}
