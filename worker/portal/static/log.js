// A subscription's delivery log (one row per delivery, its attempts on demand, re-send of a
// failed delivery) and its dead letters (redrive).
import { api, badge, busy, errorBox, fill, h, loading, toast, when, wsPath } from "./core.js";

const LIMIT = 50;

function attemptsRow(sub, delivery, cols) {
  const cell = h("td", { colspan: cols }, loading("Loading attempts…"));
  const row = h("tr.attempts", {}, cell);
  const query = new URLSearchParams({ event_id: delivery.event_id, limit: "100" });
  api("GET", wsPath(`/subscriptions/${sub.id}/attempts?${query}`))
    .then((page) => {
      const attempts = page.data.filter((a) => a.webhook_id === delivery.webhook_id);
      fill(
        cell,
        attempts.length === 0 ? h("p.muted", { text: "No attempts recorded." }) : null,
        attempts.map((a) =>
          h(
            "div.attempt",
            {},
            h("p", {},
              h("strong", { text: `Attempt ${a.attempt}` }), " · ", when(a.started_at), " · ",
              h("span.attempt-status", { text: a.status ?? "no response" }), " · ",
              `${Math.round(a.latency_ms)} ms`, " · ", badge(a.outcome)),
            a.error ? h("p.error", { text: a.error }) : null,
            h("pre.response-body", { text: a.response_body || "(empty body)" }),
          ),
        ),
      );
    })
    .catch((err) => cell.replaceChildren(errorBox(err)));
  return row;
}

export async function deliveryLogPanel(sub, panel) {
  const outcome = h("select#outcome", { "aria-label": "Outcome" },
    [["", "All outcomes"], ["success", "Succeeded"], ["retry", "Retrying"], ["dead_letter", "Failed"]].map(
      ([value, text]) => h("option", { value, text }),
    ));
  const refresh = h("button#refresh-log", { type: "button", text: "Refresh" });
  const body = h("div.log-body");
  const load = async () => {
    body.replaceChildren(loading("Loading the delivery log…"));
    const query = new URLSearchParams({ limit: String(LIMIT) });
    if (outcome.value) query.set("outcome", outcome.value);
    const [deliveries, attempts] = await Promise.all([
      api("GET", wsPath(`/subscriptions/${sub.id}/deliveries?${query}`)),
      api("GET", wsPath(`/subscriptions/${sub.id}/attempts?limit=200`)),
    ]);
    const latency = new Map();
    for (const a of attempts.data) if (!latency.has(a.webhook_id)) latency.set(a.webhook_id, a.latency_ms);
    if (deliveries.data.length === 0) {
      body.replaceChildren(h("p.notice.empty", { text: "No deliveries yet." }));
      return;
    }
    const rows = h("tbody");
    for (const d of deliveries.data) {
      const details = h("button.details", { type: "button", "aria-expanded": "false", text: "Attempts" });
      const actions = h("td", { "data-label": "" }, details);
      const row = h(
        "tr.delivery",
        { "data-event": d.event_id, "data-outcome": d.outcome },
        h("td", { "data-label": "Time", text: when(d.last_attempt_at) }),
        h("td", { "data-label": "Event", text: d.event }),
        h("td", { "data-label": "Status" }, h("span.status", { text: d.last_status ?? "—" }), " ", badge(d.outcome)),
        h("td", { "data-label": "Latency", text: latency.has(d.webhook_id) ? `${Math.round(latency.get(d.webhook_id))} ms` : "—" }),
        h("td", { "data-label": "Attempts", text: String(d.attempts) }),
        actions,
      );
      let open = null;
      details.addEventListener("click", () => {
        if (open) {
          open.remove();
          open = null;
          details.setAttribute("aria-expanded", "false");
        } else {
          open = attemptsRow(sub, d, 6);
          row.after(open);
          details.setAttribute("aria-expanded", "true");
        }
      });
      if (d.outcome === "dead_letter") {
        const resend = h("button.resend", { type: "button", text: "Re-send" });
        resend.addEventListener("click", () =>
          busy(resend, async () => {
            await api("POST", wsPath(`/subscriptions/${sub.id}/deliveries/${encodeURIComponent(d.webhook_id)}/resend`));
            toast("Sent again: it appears in the log once attempted");
          }),
        );
        actions.append(" ", resend);
      }
      rows.append(row);
    }
    body.replaceChildren(
      h("table.cards.log", {},
        h("thead", {}, h("tr", {}, ["Time", "Event", "Status", "Latency", "Attempts", ""].map((t) => h("th", { scope: "col", text: t })))),
        rows),
    );
  };
  const run = () => load().catch((err) => body.replaceChildren(errorBox(err, run)));
  outcome.addEventListener("change", run);
  refresh.addEventListener("click", run);
  panel.replaceChildren(h("div.row", {}, outcome, refresh), body);
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
        h("thead", {}, h("tr", {}, ["Failed", "Event", "Reason", "Attempts", "Last status", "Redriven"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, page.data.map((d) =>
          h("tr.dead-letter", { "data-event": d.event_id },
            h("td", { "data-label": "Failed", text: when(d.failed_at) }),
            h("td", { "data-label": "Event", text: d.event }),
            h("td", { "data-label": "Reason" }, d.reason, d.last_error ? h("div.reason", { text: d.last_error }) : null),
            h("td", { "data-label": "Attempts", text: String(d.attempts) }),
            h("td", { "data-label": "Last status", text: d.last_status ?? "—" }),
            h("td.redriven", { "data-label": "Redriven", text: d.redriven_by ? "yes" : "no" }),
          ),
        )),
      ),
    );
  };
  const run = () => load().catch((err) => body.replaceChildren(errorBox(err, run)));
  redrive.addEventListener("click", () =>
    busy(redrive, async () => {
      const out = await api("POST", wsPath(`/subscriptions/${sub.id}/dead-letters/redrive`), {});
      result.replaceChildren(
        h("p.notice.redriven-count", { text: `Sent again: ${out.sent} · already redriven: ${out.already_redriven}` }),
      );
      await load();
    }, result),
  );
  panel.replaceChildren(
    h("p.muted", { text: "Deliveries that failed for good. Fix the endpoint, then send them again." }),
    h("div.actions", {}, redrive),
    result,
    body,
  );
  run();
}
