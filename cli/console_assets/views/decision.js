// Decision: the "why" page. Every rule the engine evaluated, passed or failed, with its figures,
// and the policy version and scope that decided, linked to that version.

import { get } from "../api.js";
import { badge, errorBox, h, loading, replace, time } from "../dom.js";

function figureValue(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "–");
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return time(value, { withYear: true });
  if (Array.isArray(value)) return value.length ? value.join(", ") : h("span", { class: "muted" }, "none");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export async function decisionView(container, route, { alive }) {
  const id = route.id;
  replace(container, h("h1", {}, "Decision"), loading("the decision"));
  if (!id) {
    replace(container, h("h1", {}, "Decision"), h("p", { class: "empty" }, "Open a decision from a customer's timeline."));
    return;
  }
  let d;
  try {
    d = (await get(`/decisions/${encodeURIComponent(id)}`)).data;
  } catch (error) {
    if (alive()) replace(container, h("h1", {}, `Decision ${id}`), errorBox(error, { title: "Could not load the decision", retry: () => decisionView(container, route, { alive }) }));
    return;
  }
  if (!alive()) return;
  const input = d.input || {};
  const zone = input.customer_timezone || null;
  const failed = d.explanation.filter((rule) => !rule.passed);
  replace(container,
    h("h1", {}, `Why ${d.action}? `, h("span", { class: "muted small" }, d.decision_id)),
    h("p", { class: "verdict" }, badge(d.action), " ", badge(d.state, "state"), " decided ", time(d.decided_at, { withYear: true }),
      " because ", h("code", { class: "reason" }, d.reasons[0]),
      d.reasons.length > 1 ? h("span", { class: "muted" }, ` (also ${d.reasons.slice(1).join(", ")})`) : ""),
    h("dl", { class: "facts" },
      h("dt", {}, "Customer"), h("dd", {}, h("a", { href: `#/customer/${encodeURIComponent(d.customer_id)}` }, d.customer_id)),
      h("dt", {}, "Interaction"), h("dd", {}, h("code", {}, d.interaction_id), ` · ${input.channel}, ${input.outcome}, closed `, time(input.closed_at, { withYear: true })),
      h("dt", {}, "Policy"), h("dd", {}, h("a", { href: `#/policy?version=${d.policy_version}`, class: "policy-link" }, `version ${d.policy_version}`), `, scope ${d.policy_scope || "default"}`),
      h("dt", {}, "Send time"), h("dd", {}, d.send_at ? time(d.send_at, { zone, withYear: true }) : "none (nothing to send)"),
      h("dt", {}, "State"), h("dd", {}, d.state, d.state_reason ? ` (${d.state_reason})` : "", " since ", time(d.state_changed_at, { withYear: true })),
      d.supersedes && d.supersedes.length ? [h("dt", {}, "Cancelled older"), h("dd", {}, d.supersedes.map((x) => [h("a", { href: `#/decision/${encodeURIComponent(x)}` }, x), " "]))] : null,
      h("dt", {}, "Event"), h("dd", {}, h("code", {}, d.event_id),
        ["segment", "brand", "customer_timezone", "handle_seconds", "contact_attempts", "reopen_count", "sentiment"]
          .filter((k) => input[k] !== null && input[k] !== undefined).map((k) => ` · ${k.replace("_", " ")} ${input[k]}`))),
    h("h2", {}, `Rules evaluated (${d.explanation.length}, ${failed.length} failed)`),
    h("div", { class: "table-wrap" }, h("table", { class: "rules" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Rule"), h("th", { scope: "col" }, "Result"), h("th", { scope: "col" }, "Why"), h("th", { scope: "col" }, "Figures"))),
      h("tbody", {}, d.explanation.map((rule) => h("tr", { class: rule.passed ? "passed" : "failed", dataset: { rule: rule.rule } },
        h("th", { scope: "row" }, h("code", {}, rule.rule)),
        h("td", {}, rule.passed ? badge("passed", "ok") : badge("failed", "bad")),
        h("td", {}, rule.message),
        h("td", {}, Object.keys(rule.figures || {}).length
          ? h("dl", { class: "figures" }, Object.entries(rule.figures).map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, figureValue(v))]))
          : h("span", { class: "muted" }, "–"))))))));
}
