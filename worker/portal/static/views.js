// The list of endpoints, one endpoint's page (actions, test, roll, delete, its logs), the
// event catalogue and how to verify signatures.
import {
  api, badge, busy, confirmDialog, h, loading, secretPanel, show, state, toast, wsPath,
} from "./core.js";
import { deadLettersPanel, deliveryLogPanel } from "./log.js";

const PAGE = 100;

// The status badge and reason; on the list, an Enable button for an endpoint that is off
// (the detail page has its own, in its actions).
function statusCell(sub, refresh, withButton = true) {
  const cell = [badge(sub.status)];
  if (sub.status_reason) cell.push(h("div.reason", { text: sub.status_reason }));
  if (withButton && (sub.status === "TOO_MANY_ERRORS" || sub.status === "DISABLED")) {
    const button = h("button.enable", { type: "button", text: "Enable" });
    button.addEventListener("click", () =>
      busy(button, async () => {
        await api("POST", wsPath(`/subscriptions/${sub.id}/enable`));
        toast(`${sub.name || sub.url} is active again`);
        refresh();
      }),
    );
    cell.push(h("div", {}, button));
  }
  if (sub.status === "BLOCKED") cell.push(h("div.reason", { text: "Blocked by the operator." }));
  return cell;
}

export async function listView() {
  show(loading("Loading endpoints…"));
  const rows = h("tbody");
  const more = h("div.actions");
  const render = async (cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", wsPath(`/subscriptions?${query}`));
    for (const sub of page.data) {
      rows.append(
        h(
          "tr.sub",
          { "data-id": sub.id },
          h("td", { "data-label": "Name" }, h("a", { href: `#/subs/${sub.id}`, text: sub.name || "(unnamed)" })),
          h("td.url", { "data-label": "URL", text: sub.url }),
          h("td.events", { "data-label": "Events", text: sub.events.join(", ") }),
          h("td.status", { "data-label": "Status" }, statusCell(sub, listView)),
        ),
      );
    }
    more.replaceChildren();
    if (page.next_cursor) {
      const button = h("button", { type: "button", text: "Load more" });
      button.addEventListener("click", () => busy(button, () => render(page.next_cursor), more));
      more.append(button);
    }
    return page.data.length;
  };
  const count = await render(null);
  show(
    h(
      "div.head",
      {},
      h("h1", { text: "Endpoints" }),
      h("a.button.primary#new-webhook", { href: "#/new", text: "+ Create webhook" }),
    ),
    count === 0 && !more.children.length
      ? h("p.notice.empty", { text: "No webhooks yet. Create one to receive events." })
      : h(
          "table.cards.subs",
          {},
          h("thead", {}, h("tr", {}, ["Name", "URL", "Events", "Status"].map((t) => h("th", { scope: "col", text: t })))),
          rows,
        ),
    more,
  );
}

function testPanel(sub) {
  const out = h("div.test-result", { "aria-live": "polite" });
  const button = h("button#test", { type: "button", text: "Send test" });
  button.addEventListener("click", () =>
    busy(button, async () => {
      const result = await api("POST", wsPath(`/subscriptions/${sub.id}/test`), {});
      out.replaceChildren(
        h(
          "div.notice",
          {},
          h("p", {}, h("strong", { text: "Status: " }), h("span.test-status", { text: result.status ?? "no response" }),
            " · ", h("span.test-latency", { text: `${Math.round(result.latency_ms)} ms` })),
          result.error ? h("p.error", { text: result.error }) : null,
          h("p", { text: "Response body (first 500 characters):" }),
          h("pre.test-body", { text: result.body || "(empty)" }),
        ),
      );
    }, out),
  );
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
        h("p", { text: `${sub.name || sub.url} receives nothing until you enable it again. Events that happen meanwhile fail and appear under Dead letters, from where you can send them later.` }),
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
      h("p", { text: `${sub.name || sub.url} stops receiving events, and this cannot be undone.` }),
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
    h("div.head", {}, h("h1", { text: sub.name || "(unnamed)" }), h("div.sub-status", {}, statusCell(sub, () => subscriptionView(id), false))),
    h("p.url.wrap", { text: sub.url }),
    sub.description ? h("p.muted", { text: sub.description }) : null,
    h("p", {}, h("span.muted", { text: "Events: " }), sub.events.join(", ")),
    h(
      "div.actions",
      {},
      h("a.button#edit", { href: `#/subs/${id}/edit`, text: "Edit" }),
      testButton,
      toggle,
      rollButton(sub, notices),
      remove,
    ),
    notices,
    testOut,
    tabs,
    panel,
  );
  tabs.children[0].click();
}

// A catalogue description: `backticked` words become code, never HTML.
export function prose(text) {
  return String(text || "").split(/(`[^`]+`)/).filter(Boolean).map((part) =>
    part.length > 2 && part.startsWith("`") && part.endsWith("`") ? h("code", { text: part.slice(1, -1) }) : part);
}

// The catalogue's example as this workspace receives it (its own workspace name).
export function ownExample(example) {
  if (example && typeof example === "object" && "workspace" in example) return { ...example, workspace: state.workspace };
  return example;
}

export async function catalogueView() {
  show(loading("Loading the event catalogue…"));
  const types = (await api("GET", "/portal/api/v1/event-types")).data;
  const byCategory = new Map();
  for (const t of types) {
    if (!byCategory.has(t.category)) byCategory.set(t.category, []);
    byCategory.get(t.category).push(t);
  }
  show(
    h("h1", { text: "Event catalogue" }),
    types.length === 0 ? h("p.notice", { text: "This deployment has no catalogue: any event type can be subscribed to." }) : null,
    [...byCategory].map(([category, list]) => [
      h("h2", { text: category }),
      list.map((t) =>
        h(
          "details.event-type",
          {},
          h("summary", {}, h("code", { text: t.name }), " — ", prose(t.description)),
          h("h3", { text: "Schema" }),
          h("pre", { text: JSON.stringify(t.schema, null, 2) }),
          h("h3", { text: "Example" }),
          h("pre.example", { text: JSON.stringify(ownExample(t.example), null, 2) }),
        ),
      ),
    ]),
  );
}

const SNIPPETS = [
  ["Python (pip install standardwebhooks)", `from standardwebhooks.webhooks import Webhook

wh = Webhook("whsec_...")  # the endpoint's signing secret
# raw body bytes and the request headers, before any JSON parsing
event = wh.verify(request_body, request_headers)  # raises WebhookVerificationError`],
  ["JavaScript / TypeScript (npm install standardwebhooks)", `import { Webhook } from "standardwebhooks";

const wh = new Webhook("whsec_...");
const event = wh.verify(rawBody, headers); // throws when the signature is wrong`],
  ["Go (github.com/standard-webhooks/standard-webhooks/libraries/go)", `wh, err := standardwebhooks.NewWebhook("whsec_...")
err = wh.Verify(rawBody, r.Header)`],
];

export async function verifyView() {
  show(
    h("h1", { text: "Verifying signatures" }),
    h("p", { text: "Every delivery is signed with the Standard Webhooks scheme. Check it before trusting a request: it proves the request came from us and was not changed or replayed." }),
    h("ul", {},
      h("li", {}, h("code", { text: "webhook-id" }), " — the delivery's id; the same on every retry, so use it to ignore duplicates."),
      h("li", {}, h("code", { text: "webhook-timestamp" }), " — seconds since 1970; reject requests older than 5 minutes."),
      h("li", {}, h("code", { text: "webhook-signature" }), " — ", h("code", { text: "v1,<base64 HMAC-SHA256>" }),
        " of ", h("code", { text: "id.timestamp.body" }), ", keyed with the base64-decoded part of your ", h("code", { text: "whsec_" }), " secret. While a rolled secret's grace period lasts, two signatures are sent, separated by a space: accept the request when either matches."),
    ),
    h("p", { text: "Use the raw request body exactly as received. The official libraries do all of this:" }),
    SNIPPETS.map(([title, code]) => [h("h2", { text: title }), h("pre", { text: code })]),
    h("p", {}, "More languages: ", h("a", { href: "https://www.standardwebhooks.com/", rel: "noreferrer noopener", target: "_blank", text: "standardwebhooks.com" }), "."),
  );
  return undefined;
}

