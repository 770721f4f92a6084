// The list of endpoints (with their health), the event catalogue and how to verify
// signatures. One endpoint's page is detail.js.
import { api, badge, busy, h, loading, show, state, toast, wsPath } from "./core.js";
import { healthCell } from "./charts.js";

const PAGE = 100;

// The status badge and reason; on the list, an Enable button for an endpoint that is off
// (the detail page has its own, in its actions).
export function statusCell(sub, refresh, withButton = true) {
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

// What to call an endpoint without a name: its host.
export function title(sub) {
  if (sub.name) return sub.name;
  try {
    return new URL(sub.url).host;
  } catch (err) {
    return sub.url;
  }
}

export async function listView() {
  show(loading("Loading endpoints…"));
  const health = new Map();
  const rows = h("tbody");
  const more = h("div.actions");
  const render = async (cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", wsPath(`/subscriptions?${query}`));
    if (page.data.length) {
      const ids = new URLSearchParams(page.data.map((s) => ["id", s.id]));
      await api("GET", wsPath(`/subscription-health?${ids}`))
        .then((found) => { for (const x of found.data) health.set(x.subscription_id, x); })
        .catch(() => {}); // the list shows without health rather than not at all
    }
    for (const sub of page.data) {
      rows.append(
        h(
          "tr.sub",
          { "data-id": sub.id },
          h("td.name", { "data-label": "Name" }, h("a", { href: `#/subs/${sub.id}`, text: title(sub) })),
          h("td.url", { "data-label": "URL", text: sub.url }),
          h("td.events", { "data-label": "Events", text: sub.events.join(", ") }),
          h("td.status", { "data-label": "Status" }, statusCell(sub, listView)),
          h("td.health-cell", { "data-label": "Health" }, healthCell(health.get(sub.id))),
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
          h("thead", {}, h("tr", {}, ["Name", "URL", "Events", "Status", "Health"].map((t) => h("th", { scope: "col", text: t })))),
          rows,
        ),
    more,
  );
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

