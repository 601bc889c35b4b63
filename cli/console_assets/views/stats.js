// Stats: follow-ups per day by action and reason, the suppression rate, releases and
// cancellations over a chosen range, and the range's decisions exported as CSV or NDJSON.

import { ApiError, get, query } from "../api.js";
import { daysBefore, empty, errorBox, h, isoDay, loading, replace } from "../dom.js";
import { groupedBars, stackedColumns } from "../charts.js";

const ACTIONS = [["survey", "Survey"], ["callback", "Callback"], ["none", "None (suppressed)"]];
const EXPORT_DAYS = 31; // GET /decisions/export takes at most 31 days without a customer
const percent = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 1000) / 10} %`);

function rangeForm(from, to) {
  const fromInput = h("input", { id: "stats-from", type: "date", value: from, required: true, "aria-describedby": "stats-from-problem" });
  const toInput = h("input", { id: "stats-to", type: "date", value: to, required: true, "aria-describedby": "stats-to-problem" });
  return h("form", { class: "range", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/stats${query({ from: fromInput.value, to: toInput.value })}`;
  } },
  h("div", { class: "field" }, h("label", { for: "stats-from" }, "From (UTC day)"), fromInput, h("p", { class: "problem", id: "stats-from-problem" })),
  h("div", { class: "field" }, h("label", { for: "stats-to" }, "To (UTC day, inclusive)"), toInput, h("p", { class: "problem", id: "stats-to-problem" })),
  h("p", { class: "field" }, h("button", { type: "submit" }, "Show")));
}

export async function statsView(container, route, { alive }) {
  const today = new Date();
  const from = route.params.get("from") || isoDay(daysBefore(today, 29));
  const to = route.params.get("to") || isoDay(today);
  const body = h("div", {}, loading("the statistics"));
  replace(container, h("h1", {}, "Stats"), rangeForm(from, to), exportLinks(from, to), body);
  let report;
  try {
    report = (await get(`/stats${query({ from, to })}`)).data;
  } catch (error) {
    if (!alive()) return;
    replace(body, errorBox(error, { title: "Could not load the statistics", retry: () => statsView(container, route, { alive }) }));
    // A refused range is shown at the date it concerns, to be corrected there.
    for (const problem of error.fields || []) {
      const input = container.querySelector(`#stats-${problem.field}`);
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      container.querySelector(`#stats-${problem.field}-problem`).textContent = problem.message;
    }
    return;
  }
  if (!alive()) return;
  const t = report.total;
  if (!t.total && !t.released && !t.cancelled) {
    replace(body, empty(`No decision, release or cancellation from ${from} to ${to}. Pick another range.`));
    return;
  }
  const days = report.days.map((d) => d.day);
  const reasons = Object.entries(t.by_reason).sort((a, b) => b[1] - a[1]);
  const cancelReasons = Object.entries(t.cancelled_by_reason || {}).sort((a, b) => b[1] - a[1]);
  replace(body,
    h("dl", { class: "totals" },
      h("div", {}, h("dt", {}, "Decisions"), h("dd", {}, String(t.total))),
      ACTIONS.map(([key, name]) => h("div", {}, h("dt", {}, name), h("dd", {}, String(t.by_action[key] || 0)))),
      h("div", {}, h("dt", {}, "Suppression rate"), h("dd", {}, percent(t.suppression_rate))),
      h("div", {}, h("dt", {}, "Released"), h("dd", {}, String(t.released))),
      h("div", {}, h("dt", {}, "Cancelled"), h("dd", {}, String(t.cancelled)))),
    h("div", { class: "charts" },
      stackedColumns({ title: "Follow-ups per day by action", days,
        series: ACTIONS.map(([key, name]) => ({ key, name, values: report.days.map((d) => d.by_action[key] || 0) })) }),
      stackedColumns({ title: "Follow-ups per day by deciding reason", days,
        series: reasonSeries(reasons.map(([r]) => r), report.days) }),
      groupedBars({ title: "Decisions by deciding reason", categories: reasons.map(([r]) => r),
        series: [{ key: "total", name: "Decisions", values: reasons.map(([, n]) => n) }] }),
      stackedColumns({ title: "Suppression rate per day", days, max: 1, format: percent,
        series: [{ key: "none", name: "Suppressed", values: report.days.map((d) => d.suppression_rate || 0) }] }),
      stackedColumns({ title: "Releases and cancellations per day", days,
        series: [
          { key: "released", name: "Released", values: report.days.map((d) => d.released) },
          { key: "cancelled", name: "Cancelled", values: report.days.map((d) => d.cancelled) },
        ] }),
      cancelReasons.length
        ? groupedBars({ title: "Cancellations by reason", categories: cancelReasons.map(([r]) => r),
          series: [{ key: "cancelled", name: "Cancelled", values: cancelReasons.map(([, n]) => n) }] })
        : null));
}

const REASON_COLOURS = 6; // .fill-r0 ... .fill-r5 in console.css; the rarer reasons share "other"

/** One series per deciding reason (the most frequent first), the rest summed as "other reasons". */
function reasonSeries(reasons, days) {
  const shown = reasons.slice(0, reasons.length > REASON_COLOURS ? REASON_COLOURS - 1 : REASON_COLOURS);
  const series = shown.map((reason, i) => ({ key: `r${i}`, name: reason, values: days.map((d) => d.by_reason[reason] || 0) }));
  const rest = reasons.slice(shown.length);
  if (rest.length) {
    series.push({ key: `r${REASON_COLOURS - 1}`, name: `other reasons (${rest.length})`,
      values: days.map((d) => rest.reduce((sum, reason) => sum + (d.by_reason[reason] || 0), 0)) });
  }
  return series;
}

function exportLinks(from, to) {
  const status = h("div", { class: "export-status", "aria-live": "polite" });
  const tooLong = (Date.parse(to) - Date.parse(from)) / 86400000 >= EXPORT_DAYS;
  const link = (format, label) => {
    const href = `/decisions/export${query({ from, to, format })}`;
    return h("a", { href, download: `decisions-${from}-${to}.${format}`, class: "button-link", dataset: { format },
      onclick: (event) => {
        // The API answers a page at a time (X-Next-Token); the download holds every page.
        event.preventDefault();
        downloadAll(href, format, `decisions-${from}-${to}.${format}`, status);
      } }, label);
  };
  return h("section", { class: "export", "aria-labelledby": "h-export" },
    h("h2", { id: "h-export" }, "Export the range's decisions"),
    tooLong
      ? h("p", { class: "muted" }, `Exports cover at most ${EXPORT_DAYS} days: narrow the range to export it.`)
      : h("p", { class: "row" }, link("csv", "Download CSV"), link("ndjson", "Download NDJSON")),
    status);
}

async function downloadAll(href, format, name, status) {
  replace(status, loading("the export"));
  const parts = [];
  let token = null;
  try {
    do {
      const url = token ? `${href}&next_token=${encodeURIComponent(token)}` : href;
      const response = await fetch(url, { cache: "no-store" });
      const text = await response.text();
      if (!response.ok) {
        let data = {};
        try { data = JSON.parse(text); } catch { data = { message: text.slice(0, 200) }; }
        throw new ApiError(response.status, data);
      }
      parts.push(text);
      token = response.headers.get("x-next-token");
    } while (token);
  } catch (error) {
    replace(status, errorBox(error instanceof ApiError ? error : new ApiError(0, { message: error.message }), { title: "The export failed" }));
    return;
  }
  const type = format === "csv" ? "text/csv" : "application/x-ndjson";
  const url = URL.createObjectURL(new Blob(parts, { type }));
  const anchor = h("a", { href: url, download: name, class: "hidden" });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  replace(status, h("p", { class: "ok" }, `Downloaded ${name} (${parts.length} page${parts.length === 1 ? "" : "s"}).`));
}
