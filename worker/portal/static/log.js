// A subscription's delivery log (one row per delivery, its attempts on demand, re-send of a
// failed delivery) and its dead letters (redrive).
import { api, badge, busy, confirmDialog, errorBox, fill, h, loading, toast, when, wsPath } from "./core.js";

const LIMIT = 50;

function bytes(n) {
  if (n === null || n === undefined) return "size unknown";
  return n < 1024 ? `${n} bytes` : `${(n / 1024).toFixed(1)} KiB`;
}

function headersTable(headers) {
  const names = Object.keys(headers || {}).sort();
  if (!names.length) return h("p.muted", { text: "No headers recorded." });
  return h("table.headers", {}, h("tbody", {}, names.map((n) =>
    h("tr", {}, h("th", { scope: "row", text: n }), h("td", {}, h("code", { text: headers[n] }))))));
}

function prettyBody(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (err) {
    return text;
  }
}

function exchange(label, side, cls) {
  if (!side) return h(`div.side.${cls}`, {}, h("h4", { text: label }), h("p.muted", { text: cls === "response" ? "No response." : "Not kept any more (the log's retention)." }));
  const cut = side.truncated ? ` — showing the first ${bytes(new TextEncoder().encode(side.body).length)} of ${bytes(side.size)}` : ` — ${bytes(side.size)}`;
  return h(`div.side.${cls}`, {},
    h("h4", { text: label }),
    h("details.headers-box", { open: cls === "request" }, h("summary", { text: `Headers (${Object.keys(side.headers || {}).length})` }), headersTable(side.headers)),
    h("p.muted.size", { text: `Body${cut}` }),
    h(`pre.${cls}-body`, { text: side.body ? prettyBody(side.body) : "(empty body)" }));
}

// One delivery in full: each attempt's request as sent and response as received.
function attemptsRow(sub, delivery, cols) {
  const cell = h("td", { colspan: cols }, loading("Loading attempts…"));
  const row = h("tr.attempts", {}, cell);
  api("GET", wsPath(`/subscriptions/${sub.id}/deliveries/${encodeURIComponent(delivery.webhook_id)}`))
    .then((detail) => {
      const attempts = detail.attempt_details;
      fill(
        cell,
        h("p.muted.ids", {}, "Webhook id ", h("code", { text: detail.webhook_id }), " · event id ", h("code", { text: detail.event_id })),
        attempts.length === 0 ? h("p.muted", { text: "No attempts recorded." }) : null,
        attempts.map((a) =>
          h("div.attempt", { "data-attempt": a.attempt },
            h("p.attempt-head", {},
              h("strong", { text: `Attempt ${a.attempt}` }), " · ", when(a.started_at), " · ",
              h("span.attempt-status", { text: a.status ?? "no response" }), " · ",
              h("span.latency", { text: `${Math.round(a.latency_ms)} ms` }), " · ", badge(a.outcome)),
            a.error ? h("p.error.attempt-error", { text: a.error }) : null,
            a.next_attempt_at ? h("p.notice.next-retry", { text: `Next attempt ${when(a.next_attempt_at)}` }) : null,
            a.url ? h("p.muted.wrap", {}, "POST ", h("code", { text: a.url })) : null,
            h("div.exchange", {}, exchange("Request", a.request, "request"), exchange("Response", a.response, "response")),
          ),
        ),
      );
    })
    .catch((err) => cell.replaceChildren(errorBox(err)));
  return row;
}

const REFRESH_MS = 5000;

// "2h" or a datetime-local value -> the API's since/until (RFC 3339 or a duration).
function timeParam(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export async function deliveryLogPanel(sub, panel) {
  const outcome = h("select#outcome", { "aria-label": "Outcome" },
    [["", "All outcomes"], ["success", "Succeeded"], ["retry", "Retrying"], ["dead_letter", "Failed"]].map(
      ([value, text]) => h("option", { value, text }),
    ));
  const search = h("input#log-search", { type: "search", placeholder: "Event id or webhook id", "aria-label": "Event id or webhook id" });
  const eventType = h("select#log-event", { "aria-label": "Event type" }, h("option", { value: "", text: "All event types" }));
  api("GET", "/portal/api/v1/event-types").then((c) => {
    for (const t of c.data) eventType.append(h("option", { value: t.name, text: t.name }));
  }).catch(() => {});
  const since = h("input#log-since", { type: "datetime-local", "aria-label": "From" });
  const until = h("input#log-until", { type: "datetime-local", "aria-label": "Until" });
  const refresh = h("button#refresh-log", { type: "button", text: "Refresh" });
  const auto = h("input#auto-refresh", { type: "checkbox", checked: true });
  const stamp = h("span.muted.refreshed", { "aria-live": "off" });
  const body = h("div.log-body");
  const open = new Set(); // webhook ids whose attempts are shown: kept across refreshes
  let rendered = "";
  const load = async (quiet) => {
    if (!quiet) body.replaceChildren(loading("Loading the delivery log…"));
    const query = new URLSearchParams({ limit: String(LIMIT) });
    if (outcome.value) query.set("outcome", outcome.value);
    if (eventType.value) query.set("event", eventType.value);
    if (timeParam(since.value)) query.set("since", timeParam(since.value));
    if (timeParam(until.value)) query.set("until", timeParam(until.value));
    const term = search.value.trim();
    let deliveries;
    if (term) {
      // An id is a webhook id or an event id: ask for both, show what matches.
      const [byWebhook, byEvent] = await Promise.all([
        api("GET", wsPath(`/subscriptions/${sub.id}/deliveries?${query}&webhook_id=${encodeURIComponent(term)}`)),
        api("GET", wsPath(`/subscriptions/${sub.id}/deliveries?${query}&event_id=${encodeURIComponent(term)}`)),
      ]);
      const seen = new Set();
      deliveries = { data: [...byWebhook.data, ...byEvent.data].filter((d) => !seen.has(d.webhook_id) && seen.add(d.webhook_id)) };
    } else {
      deliveries = await api("GET", wsPath(`/subscriptions/${sub.id}/deliveries?${query}`));
    }
    stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    const fingerprint = JSON.stringify(deliveries.data);
    if (quiet && fingerprint === rendered) return; // nothing new: keep the page as it is
    rendered = fingerprint;
    if (deliveries.data.length === 0) {
      body.replaceChildren(h("p.notice.empty", { text: term || outcome.value || eventType.value || since.value || until.value ? "No deliveries match these filters." : "No deliveries yet." }));
      return;
    }
    const rows = h("tbody");
    for (const d of deliveries.data) {
      const details = h("button.details", { type: "button", "aria-expanded": "false", text: "Attempts" });
      const actions = h("td", { "data-label": "" }, details);
      const row = h(
        "tr.delivery",
        { "data-event": d.event_id, "data-webhook": d.webhook_id, "data-outcome": d.outcome, "data-first": d.first_attempt_at },
        h("td.time", { "data-label": "Time", title: `Last attempt ${when(d.last_attempt_at)}`, text: when(d.first_attempt_at) }),
        h("td", { "data-label": "Event" }, d.event, d.webhook_id.startsWith("msg_test_") ? [" ", h("span.badge.test", { text: "test" })] : null),
        h("td", { "data-label": "Status" }, h("span.status", { text: d.last_status ?? "—" }), " ", badge(d.outcome)),
        h("td", { "data-label": "Attempts", text: String(d.attempts) }),
        actions,
      );
      let shown = null;
      const toggle = () => {
        if (shown) {
          shown.remove();
          shown = null;
          open.delete(d.webhook_id);
          details.setAttribute("aria-expanded", "false");
        } else {
          shown = attemptsRow(sub, d, 5);
          row.after(shown);
          open.add(d.webhook_id);
          details.setAttribute("aria-expanded", "true");
        }
      };
      details.addEventListener("click", toggle);
      const resend = h("button.resend", { type: "button", text: "Re-send" });
      resend.addEventListener("click", () =>
        busy(resend, async () => {
          await api("POST", wsPath(`/subscriptions/${sub.id}/deliveries/${encodeURIComponent(d.webhook_id)}/resend`));
          toast("Sent again: it appears in the log once attempted");
        }),
      );
      if (d.outcome !== "retry" && !d.webhook_id.startsWith("msg_test_")) actions.append(" ", resend);
      rows.append(row);
      if (open.has(d.webhook_id)) {
        open.delete(d.webhook_id);
        queueMicrotask(toggle);
      }
    }
    body.replaceChildren(
      h("table.cards.log", {},
        h("thead", {}, h("tr", {}, ["Time", "Event", "Status", "Attempts", ""].map((t) => h("th", { scope: "col", text: t })))),
        rows),
    );
  };
  const run = (quiet = false) => load(quiet).catch((err) => { if (!quiet) body.replaceChildren(errorBox(err, () => run())); });
  for (const input of [outcome, eventType, since, until]) input.addEventListener("change", () => run());
  let typing = null;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => run(), 300); });
  refresh.addEventListener("click", () => run());
  // Auto-refresh while this panel is on the page and the tab is visible.
  const timer = setInterval(() => {
    if (!panel.isConnected || !body.isConnected) { clearInterval(timer); return; }
    if (auto.checked && document.visibilityState === "visible") run(true);
  }, REFRESH_MS);
  panel.replaceChildren(
    h("div.row.filters", {}, search, eventType, outcome,
      h("label.inline", { for: since.id, text: "From" }), since,
      h("label.inline", { for: until.id, text: "Until" }), until),
    h("div.row", {}, refresh, h("label.check", { for: auto.id }, auto, h("span", { text: "Auto-refresh" })), stamp),
    body,
  );
  run();
}

export async function deadLettersPanel(sub, panel) {
  const body = h("div.dead-body");
  const result = h("div.redrive-result", { "aria-live": "polite" });
  const redrive = h("button.primary#redrive", { type: "button", text: "Redrive all" });
  const load = async () => {
    body.replaceChildren(loading("Loading dead letters…"));
    const page = await api("GET", wsPath(`/subscriptions/${sub.id}/dead-letters?limit=${LIMIT}`));
    if (page.data.length === 0) {
      body.replaceChildren(h("p.notice.empty", { text: "No dead letters." }));
      return;
    }
    body.replaceChildren(
      h("table.cards.dead", {},
        h("thead", {}, h("tr", {}, ["Failed", "Event", "Reason", "Attempts", "Last status", "Sent again"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, page.data.map((d) =>
          h("tr.dead-letter", { "data-event": d.event_id },
            h("td", { "data-label": "Failed", text: when(d.failed_at) }),
            h("td", { "data-label": "Event", text: d.event }),
            h("td", { "data-label": "Reason" }, d.reason, d.last_error ? h("div.reason", { text: d.last_error }) : null),
            h("td", { "data-label": "Attempts", text: String(d.attempts) }),
            h("td", { "data-label": "Last status", text: d.last_status ?? "—" }),
            h("td.redriven", { "data-label": "Sent again", text: d.redriven_by ? "yes" : "no" }),
          ),
        )),
      ),
    );
  };
  const run = () => load().catch((err) => body.replaceChildren(errorBox(err, run)));
  redrive.addEventListener("click", async () => {
    const preview = await api("POST", wsPath(`/subscriptions/${sub.id}/dead-letters/redrive`), { dry_run: true }).catch(() => null);
    const count = preview ? preview.matched - preview.already_redriven - preview.skipped : null;
    if (count === 0) {
      result.replaceChildren(h("p.notice.redriven-count", { text: "Nothing to send: every failed delivery here was already sent again." }));
      return;
    }
    const ok = await confirmDialog(
      "Send the failed deliveries again?",
      h("p", { text: `${count === null ? "Every" : count} failed ${count === 1 ? "delivery goes" : "deliveries go"} to ${sub.url} again, with the same webhook-id. Deliveries already sent again are left out.` }),
      count === null ? "Send again" : `Send ${count} again`,
    );
    if (!ok) return;
    await busy(redrive, async () => {
      const out = await api("POST", wsPath(`/subscriptions/${sub.id}/dead-letters/redrive`), {});
      result.replaceChildren(
        h("p.notice.redriven-count", { text: `Sent again: ${out.sent} · already sent again before: ${out.already_redriven}` }),
      );
      await load();
    }, result);
  });
  panel.replaceChildren(
    h("p.muted", { text: "Deliveries that failed for good. Fix the endpoint, then send them again." }),
    h("div.actions", {}, redrive),
    result,
    body,
  );
  run();
}
