// Customer: what an admin with the customer on the phone needs in ten seconds: when the next
// survey or callback may go, what was decided and why, what is held, opt-outs, responses.

import { ApiError, customerPath, get, put, query } from "../api.js";
import { badge, empty, errorBox, h, loading, replace, time } from "../dom.js";

const KINDS = [
  ["all", "All follow-ups"],
  ["survey", "Surveys"],
  ["callback", "Callbacks"],
];
// Why a held follow-up never went out, in the words an admin can repeat to the customer (docs/reasons.md).
const CANCELLED_BECAUSE = {
  SUPERSEDED_BY_NEWER_INTERACTION: "a newer interaction's decision replaced it",
  OPTED_OUT: "the customer opted out before the send time",
  EXPIRED: "too long after the interaction closed to still be worth sending",
  POLICY_FORBIDS: "the policy at the send time no longer allowed it",
};
const NOUN = { survey: ["survey", "surveys"], callback: ["callback", "callbacks"], any: ["follow-up", "follow-ups"] };

function searchForm(id, autofocus) {
  const input = h("input", { id: "customer-search", name: "customer", type: "search", value: id, required: true,
    autocomplete: "off", spellcheck: "false", placeholder: "e.g. cust-118989", "aria-describedby": "customer-search-help customer-search-problem" });
  const form = h("form", { class: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const wanted = input.value.trim();
    if (wanted) location.hash = `#/customer/${encodeURIComponent(wanted)}`;
  } },
  h("label", { for: "customer-search" }, "Customer id"),
  h("div", { class: "row" }, input, h("button", { type: "submit" }, "Search")),
  h("p", { id: "customer-search-problem", class: "problem" }),
  h("p", { id: "customer-search-help", class: "muted" }, "The opaque id your systems send (never an e-mail or phone number). Press Enter to search."));
  if (autofocus) queueMicrotask(() => input.focus());
  return form;
}

export async function customerView(container, route, { alive }) {
  const id = route.id;
  replace(container, h("h1", {}, id ? `Customer ${id}` : "Customer"), searchForm(id, true));
  if (!id) {
    container.append(empty("Search for a customer to see their follow-ups, caps, opt-outs and every decision with its reasons."));
    return;
  }
  const body = h("div", { class: "customer-body" }, loading("the customer"));
  container.append(body);
  let state;
  let page;
  let preferences;
  try {
    [state, page, preferences] = await Promise.all([
      get(customerPath(id, "contact-state")).then((r) => r.data),
      get(`/decisions${query({ customer_id: id, limit: 50 })}`).then((r) => r.data),
      getPreferences(id),
    ]);
  } catch (error) {
    if (!alive()) return;
    replace(body, errorBox(error, { title: "Could not load the customer", retry: () => customerView(container, route, { alive }) }));
    // A refused id (an e-mail address, a phone number) is shown at the search box, to be corrected there.
    const problem = (error.fields || []).find((f) => f.field === "customer_id");
    if (problem) {
      container.querySelector("#customer-search").setAttribute("aria-invalid", "true");
      container.querySelector("#customer-search-problem").textContent = problem.message.replace(/^Value error, /, "");
    }
    return;
  }
  if (!alive()) return;
  const zone = customerZone(page.items, state.last_entries);
  const seen = page.items.length > 0 || state.last_entries.length > 0 || state.recent_follow_ups.length > 0;
  replace(body,
    seen ? summary(state, zone) : neverSeen(id),
    h("div", { class: "grid" },
      section("Cap windows", "caps", gauges(state, zone)),
      section("Opt-outs", "optouts", optOuts(id, preferences)),
      section("Pending follow-ups", "pending", pending(state, zone)),
      section("Responses and fatigue", "record", record(state.survey_record, zone))),
    section("Timeline", "timeline", timeline(id, page, state.last_entries, zone)));
}

function section(title, key, ...content) {
  const headingId = `h-${key}`;
  return h("section", { class: `card ${key}`, "aria-labelledby": headingId }, h("h2", { id: headingId }, title), ...content);
}

/** The customer's own zone, from their newest decision that names one. */
function customerZone(items, entries) {
  for (const entry of [...items, ...entries]) {
    const zone = entry && entry.input && entry.input.customer_timezone;
    if (zone) return zone;
  }
  return null;
}

function neverSeen(id) {
  return h("div", { class: "notice never-seen", role: "status" },
    h("p", {}, h("strong", {}, "Never seen. "), `No interaction of ${id} has reached the governor: nothing was decided, nothing is held.`),
    h("p", { class: "muted" }, "Check the id for typos. Opt-outs recorded below apply from the customer's first interaction."));
}

function summary(state, zone) {
  const next = (kind, value) => h("div", { class: "next" },
    h("p", { class: "label" }, `Next ${kind} allowed`),
    h("p", { class: "value" }, value ? time(value, { zone }) : h("span", { class: "blocked" }, "not under the current rules")));
  const scope = state.scope || {};
  const labels = ["segment", "brand", "channel"].map((k) => scope[k]).filter(Boolean).join(" / ");
  return h("div", { class: "summary" },
    next("survey", state.next_survey_allowed),
    next("callback", state.next_callback_allowed),
    h("p", { class: "muted scope" },
      `Rules of policy `, h("a", { href: `#/policy?version=${state.policy_version}` }, `version ${state.policy_version}`),
      `, scope ${state.policy_scope}`, labels ? ` (${labels}, from the ${String(scope.from).replace("_", " ")})` : "",
      zone ? `; customer's time zone ${zone}` : "; customer's time zone unknown (UTC)"));
}

function gauges(state, zone) {
  if (!state.windows.length) return empty("The current policy caps nothing for this customer.");
  return h("ul", { class: "gauges" }, state.windows.map((w) => {
    const [one, many] = NOUN[w.kind] || [w.kind, `${w.kind}s`];
    const full = w.count >= w.cap;
    const text = `${w.count} of ${w.cap} ${w.cap === 1 ? one : many} in ${w.window}`;
    return h("li", { class: full ? "gauge full" : "gauge" },
      h("meter", { min: 0, max: Math.max(w.cap, 1), value: w.count, low: Math.max(w.cap - 0.5, 0), high: Math.max(w.cap - 0.25, 0), optimum: 0, "aria-label": text }),
      h("p", {}, text, ", next eligible ",
        full && w.next_allowed ? time(w.next_allowed, { zone }) : full ? "never under these caps" : "now"));
  }));
}

function pending(state, zone) {
  if (!state.pending_follow_ups.length) return empty("Nothing held: no follow-up waits for its send time.");
  return h("ul", { class: "plain" }, state.pending_follow_ups.map((f) =>
    h("li", {}, badge(f.kind), " goes out ", time(f.send_at, { zone }), " for interaction ", h("code", {}, f.interaction_id), " · ",
      h("a", { href: `#/decision/${encodeURIComponent(f.decision_id)}` }, "why"))));
}

function record(r, zone) {
  return h("dl", { class: "facts" },
    h("dt", {}, "Survey responses"), h("dd", {}, String(r.responses), r.last_response ? [", last ", time(r.last_response, { zone })] : ""),
    h("dt", {}, "Ignored in a row"), h("dd", {}, `${r.ignored_in_a_row} (a pause starts at ${r.ignored_threshold})`),
    h("dt", {}, "Cooldown after a response"), h("dd", {}, r.cooldown_until ? ["until ", time(r.cooldown_until, { zone })] : "none"),
    h("dt", {}, "Fatigue pause"), h("dd", {}, r.fatigue_until ? ["until ", time(r.fatigue_until, { zone })] : "none"));
}

// -- opt-outs ------------------------------------------------------------------------------------

const describeOptOuts = (optOuts) =>
  optOuts.length ? optOuts.map((o) => `${o.kind} (${o.source})`).join(", ") : "no opt-out";

/** The opt-outs and their tag (ETag), which a change sends back as If-Match. */
const getPreferences = async (id) => {
  const answer = await get(customerPath(id, "preferences"));
  return { optOuts: answer.data.opt_outs, tag: answer.headers.get("etag") };
};

function optOuts(id, preferences) {
  // What this page last saw, and its tag: a change is made only on these opt-outs (If-Match), so
  // one made by someone else meanwhile is reported (412), never silently merged.
  let seen = preferences.optOuts;
  let tag = preferences.tag;
  const box = h("div", { class: "optout-box" });
  const status = h("div", { class: "optout-status", "aria-live": "polite" });
  const source = h("input", { id: "optout-source", type: "text", value: "web console", maxlength: 200, required: true });

  function draw() {
    const byKind = Object.fromEntries(seen.map((o) => [o.kind, o]));
    replace(box,
      h("fieldset", {},
        h("legend", {}, "Opted out of (switch on to record the customer's wish)"),
        KINDS.map(([kind, label]) => {
          const current = byKind[kind];
          const inputId = `optout-${kind}`;
          return h("div", { class: "toggle" },
            h("input", { id: inputId, type: "checkbox", role: "switch", checked: Boolean(current), dataset: { kind },
              onchange: (event) => change(kind, event.target.checked) }),
            h("label", { for: inputId }, label),
            current ? h("span", { class: "muted" }, " since ", time(current.at), ` · ${current.source}`) : null);
        })),
      h("p", { class: "field" }, h("label", { for: "optout-source" }, "Where the wish came from"), source));
  }

  function lock(locked) {
    for (const input of box.querySelectorAll("input[type=checkbox]")) input.disabled = locked;
  }

  async function send(kind, wanted) {
    const headers = tag ? { "if-match": tag } : {};
    const answer = await put(customerPath(id, "preferences"), { [kind]: wanted, source: source.value.trim() || "web console" }, { headers });
    seen = answer.data.opt_outs;
    tag = answer.headers.get("etag");
    draw();
    replace(status, h("p", { class: "ok", role: "status" }, `${wanted ? "Recorded the opt-out of" : "Lifted the opt-out of"} ${kind}. Now: ${describeOptOuts(seen)}.`));
  }

  function conflict(kind, wanted, latest) {
    // Someone (another admin, the customer's own channel) changed the opt-outs since this page
    // read them: show what is there now, keep the operator's change, let them re-apply it on that.
    seen = latest.optOuts;
    tag = latest.tag;
    draw();
    const mine = `${wanted ? "opt out of" : "lift the opt-out of"} ${kind}`;
    replace(status, h("div", { class: "conflict", role: "alert" },
      h("p", {}, h("strong", {}, "Changed by someone else meanwhile. "), `The opt-outs are now: ${describeOptOuts(seen)}. Your change (${mine}) was not made.`),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => change(kind, wanted) }, `Re-apply: ${mine}`),
        h("button", { type: "button", class: "secondary", onclick: () => replace(status) }, "Keep the current state"))));
  }

  async function change(kind, wanted) {
    lock(true);
    replace(status, h("p", { class: "loading", role: "status" }, "Saving…"));
    try {
      await send(kind, wanted);
    } catch (error) {
      // 412: the opt-outs changed since this page read them (its If-Match); show them, keep the change.
      let shown = error;
      if (error instanceof ApiError && error.status === 412) {
        try {
          return conflict(kind, wanted, await getPreferences(id));
        } catch (reread) {
          shown = reread;
        }
      }
      draw();
      replace(status, errorBox(shown, { title: "The change was not saved" }));
    } finally {
      lock(false);
    }
  }

  draw();
  return h("div", {}, box, status);
}

// -- timeline ------------------------------------------------------------------------------------

function timeline(id, page, entries, zone) {
  const list = h("ol", { class: "timeline-list" });
  const more = h("div", {});
  const admin = entries.filter((e) => e.record_type === "admin");
  const rows = [...page.items.map((d) => ({ at: d.decided_at, decision: d })), ...admin.map((a) => ({ at: a.at, admin: a }))];

  function add(items) {
    for (const row of items) list.append(row.decision ? decisionRow(row.decision, zone) : adminRow(row.admin));
  }

  function pager(token) {
    if (!token) return replace(more);
    replace(more, h("button", { type: "button", class: "secondary", onclick: async (event) => {
      event.target.disabled = true;
      try {
        const next = (await get(`/decisions${query({ customer_id: id, limit: 50, next_token: token })}`)).data;
        add(next.items.map((d) => ({ decision: d })));
        pager(next.next_token);
      } catch (error) {
        replace(more, errorBox(error));
      }
    } }, "Show older decisions"));
  }

  if (!rows.length) return empty("No decision yet for this customer.");
  rows.sort((a, b) => String(b.at).localeCompare(String(a.at)));
  add(rows);
  pager(page.next_token);
  return h("div", {}, list, more);
}

function decisionRow(d, zone) {
  const input = d.input || {};
  const ownZone = input.customer_timezone || zone;
  return h("li", { class: `entry action-${d.action}`, dataset: { decision: d.decision_id } },
    h("div", { class: "entry-head" },
      time(d.decided_at), " ",
      badge(d.action), " ", badge(d.state, "state"), " ",
      h("code", { class: "reason" }, d.reasons[0])),
    h("p", { class: "entry-body" },
      `${input.channel || "?"} interaction `, h("code", {}, d.interaction_id), `, ${input.outcome || "?"}`,
      d.send_at ? [d.state === "released" ? "; sent " : "; send time ", time(d.send_at, { zone: ownZone })] : "",
      d.state === "cancelled" ? h("span", { class: "cancelled" }, "; cancelled ", time(d.state_changed_at),
        d.state_reason ? [": ", CANCELLED_BECAUSE[d.state_reason] || "", " ", h("code", {}, d.state_reason)] : "") : "",
      d.supersedes && d.supersedes.length ? `; cancelled ${d.supersedes.length} older pending` : ""),
    h("a", { href: `#/decision/${encodeURIComponent(d.decision_id)}`, class: "why" }, `Why ${d.action}? `, h("span", { class: "muted" }, d.decision_id)));
}

function adminRow(a) {
  const details = Object.entries(a.details || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  return h("li", { class: "entry admin" },
    h("div", { class: "entry-head" }, time(a.at), " ", badge("admin"), " ", h("code", {}, a.action)),
    h("p", { class: "entry-body" }, `by ${a.actor}`, details ? ` · ${details}` : ""));
}
