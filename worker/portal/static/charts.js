// An endpoint's health: the 24-hour success rate, last delivery and failures in a row (on
// the list and the detail page), and the activity chart (successes and failures per hour,
// 24 h or 7 d) drawn as SVG from the delivery-log index.
import { api, h, when, wsPath } from "./core.js";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 15000;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// 0.4 -> "40%", 0.9951 -> "99.5%": one decimal at most.
function percent(rate) {
  return `${Math.round(rate * 1000) / 10}%`;
}

export function rateText(health) {
  if (!health || health.success_rate_24h === null || health.success_rate_24h === undefined) return "no attempts in 24 h";
  return `${percent(health.success_rate_24h)} in 24 h`;
}

function rateClass(health) {
  const rate = health && health.success_rate_24h;
  if (rate === null || rate === undefined) return "none";
  return rate >= 0.99 ? "good" : rate >= 0.9 ? "fair" : "poor";
}

// The compact cell of the endpoints list.
export function healthCell(health) {
  if (!health) return h("span.muted", { text: "—" });
  return h("div.health", { "data-rate": health.success_rate_24h ?? "" },
    h(`span.rate.${rateClass(health)}`, { text: rateText(health) }),
    health.consecutive_failures > 0
      ? h("div.reason.streak", { text: `${health.consecutive_failures}${health.consecutive_failures >= 100 ? "+" : ""} failed in a row` })
      : null,
    health.last_attempt_at ? h("div.reason", { text: `last ${when(health.last_attempt_at)}` }) : null);
}

// The detail page's summary tiles.
export function healthTiles(health) {
  const tile = (label, value, cls) => h(`div.tile${cls ? `.${cls}` : ""}`, {}, h("div.tile-value", { text: value }), h("div.tile-label", { text: label }));
  return h("div.tiles.health-tiles", {},
    tile("Success rate (24 h)", health.success_rate_24h === null ? "—" : percent(health.success_rate_24h), rateClass(health)),
    tile("Attempts (24 h)", String(health.attempts_24h)),
    tile("Failed in a row", String(health.consecutive_failures), health.consecutive_failures ? "poor" : null),
    tile("Last delivery", health.last_attempt_at ? `${when(health.last_attempt_at)} · ${health.last_status ?? "no response"}` : "none yet"));
}

// Stacked bars: successes below, failures on top, one bar per hour, with an axis and a
// text alternative (the table the chart draws, for screen readers).
export function activityChart(activity) {
  const data = activity.data;
  const width = 720;
  const height = 160;
  const pad = { left: 36, right: 8, top: 10, bottom: 22 };
  const max = Math.max(1, ...data.map((d) => d.successes + d.failures));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = plotW / data.length;
  const bar = Math.max(1, step * 0.8);
  const y = (v) => pad.top + plotH - (v / max) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `Successful and failed attempts per hour over ${activity.window === "7d" ? "7 days" : "24 hours"}` });
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: pad.left - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(v)));
  }
  data.forEach((d, i) => {
    const x = pad.left + i * step + (step - bar) / 2;
    const title = `${when(d.start)}: ${d.successes} succeeded, ${d.failures} failed`;
    if (d.successes) chart.append(svg("rect", { x, y: y(d.successes), width: bar, height: y(0) - y(d.successes), class: "ok", "data-hour": d.start }, svg("title", {}, title)));
    if (d.failures) chart.append(svg("rect", { x, y: y(d.successes + d.failures), width: bar, height: y(d.successes) - y(d.successes + d.failures), class: "bad", "data-hour": d.start }, svg("title", {}, title)));
    const every = data.length > 48 ? 24 : 6;
    if (i % every === 0) {
      const t = new Date(d.start);
      const label = data.length > 48 ? t.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      chart.append(svg("text", { x: x + bar / 2, y: height - 6, class: "axis", "text-anchor": "middle" }, label));
    }
  });
  const totals = data.reduce((a, d) => [a[0] + d.successes, a[1] + d.failures], [0, 0]);
  return h("figure.activity", {},
    chart,
    h("figcaption.legend", {},
      h("span.key.ok", { text: `Succeeded ${totals[0]}` }), " ", h("span.key.bad", { text: `Failed ${totals[1]}` })));
}

// The detail page's health section: tiles, and the chart with its 24 h / 7 d switch.
export function healthSection(sub) {
  const section = h("section.health-section", { "aria-label": "Health" });
  const chartBox = h("div.chart-box");
  let window = "24h";
  const switcher = h("div.segmented", { role: "group", "aria-label": "Chart period" });
  const load = async () => {
    const [health, activity] = await Promise.all([
      api("GET", wsPath(`/subscriptions/${sub.id}/health`)),
      api("GET", wsPath(`/subscriptions/${sub.id}/activity?window=${window}`)),
    ]);
    section.querySelector(".health-tiles")?.remove();
    section.prepend(healthTiles(health));
    chartBox.replaceChildren(activityChart(activity));
  };
  for (const [value, label] of [["24h", "24 hours"], ["7d", "7 days"]]) {
    const button = h("button", { type: "button", "data-window": value, "aria-pressed": String(value === window), text: label });
    button.addEventListener("click", () => {
      window = value;
      for (const b of switcher.children) b.setAttribute("aria-pressed", String(b === button));
      load().catch(() => {});
    });
    switcher.append(button);
  }
  section.append(h("div.head", {}, h("h2", { text: "Activity" }), switcher), chartBox);
  load().catch((err) => chartBox.replaceChildren(h("p.muted", { text: err.message })));
  // Kept current while the page is open and visible, like the log.
  const timer = setInterval(() => {
    if (!section.isConnected) { clearInterval(timer); return; }
    if (document.visibilityState === "visible") load().catch(() => {});
  }, REFRESH_MS);
  return section;
}
