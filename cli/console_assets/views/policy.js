// Policy: the current version and its history, a form editor (and the raw JSON) validated as you
// type, the diff against the current version, a simulation on the logged traffic, Apply with
// If-Match (a 412 explained and resolved), and Rollback.

import { ApiError, customerPath, etagVersion, get, post, put, query } from "../api.js";
import { debounce, empty, errorBox, h, loading, replace, time } from "../dom.js";
import { groupedBars } from "../charts.js";

const OUTCOMES = ["resolved", "unresolved", "escalated", "abandoned"];
const ACTIONS = ["survey", "callback", "none"];
const SYNC_DAYS = 90; // POST /policy/simulate answers up to 90 days; longer windows run as a job

let flash = null; // a message to show once after the view reloads itself (never stored)

const clone = (value) => JSON.parse(JSON.stringify(value));
const show = (value) => (value === undefined ? "–" : JSON.stringify(value));

function getAt(object, path) {
  return path.reduce((value, key) => (value === null || value === undefined ? undefined : value[key]), object);
}

function setAt(object, path, value) {
  let target = object;
  path.slice(0, -1).forEach((key, i) => {
    if (target[key] === null || typeof target[key] !== "object") target[key] = typeof path[i + 1] === "number" ? [] : {};
    target = target[key];
  });
  target[path[path.length - 1]] = value;
}

// The main fields of shared/domain/policy.py (docs/policy.md); everything else (overrides) in JSON.
const SECTIONS = [
  ["Timing", [
    { path: ["survey_delay_minutes"], label: "Survey delay after the close (minutes)", type: "int", min: 0, max: 10080 },
    { path: ["min_gap_hours_before_survey"], label: "Gap before a survey since any follow-up (hours)", type: "int", min: 0 },
    { path: ["survey_freshness_hours"], label: "Survey freshness: never later than (hours after the close)", type: "int", min: 1, max: 2160 },
    { path: ["skip", "max_event_age_hours"], label: "Ignore events older than (hours)", type: "int", min: 1, max: 720 },
  ]],
  ["Quiet hours", [
    { path: ["quiet_hours"], label: "Quiet hours on", type: "quiet" },
    { path: ["quiet_hours", "start"], label: "Start (customer's local time)", type: "time" },
    { path: ["quiet_hours", "end"], label: "End", type: "time" },
    { path: ["quiet_hours", "default_timezone"], label: "Time zone when the customer's is unknown", type: "text" },
  ]],
  ["Surveys", [
    { path: ["enabled", "survey"], label: "Surveys enabled", type: "bool" },
    { path: ["survey_sample_rate"], label: "Sample rate (0 to 1)", type: "float", min: 0, max: 1, step: 0.01 },
    { path: ["survey_cooldown_after_response_days"], label: "Cooldown after a response (days, 0: none)", type: "int", min: 0 },
    { path: ["skip", "min_handle_seconds_for_survey"], label: "Minimum handle time for a survey (seconds)", type: "int", min: 0 },
    { path: ["excluded_segments"], label: "Segments never surveyed (comma-separated)", type: "list" },
    { path: ["fatigue", "ignore_after_days"], label: "Fatigue: a survey is ignored after (days)", type: "int", min: 1, max: 365 },
    { path: ["fatigue", "ignored_in_a_row"], label: "Fatigue: ignored in a row to pause", type: "int", min: 1, max: 100 },
    { path: ["fatigue", "pause_days"], label: "Fatigue: pause (days, 0: off)", type: "int", min: 0 },
  ]],
  ["Callbacks", [
    { path: ["enabled", "callback"], label: "Callbacks enabled", type: "bool" },
    { path: ["callback_triggers", "outcomes"], label: "Outcomes that earn a callback", type: "outcomes" },
    { path: ["callback_triggers", "sentiment_at_or_below"], label: "Sentiment at or below (-1 to 1, empty: off)", type: "float", min: -1, max: 1, step: 0.05, nullable: true },
    { path: ["callback_triggers", "contact_attempts_at_least"], label: "Contact attempts at least (empty: off)", type: "int", min: 1, nullable: true },
    { path: ["callback_triggers", "reopen_count_at_least"], label: "Reopened at least (empty: off)", type: "int", min: 1, nullable: true },
    { path: ["skip", "outcomes"], label: "Outcomes never followed up", type: "outcomes" },
  ]],
];
const CAPS = [["survey", "Survey caps"], ["callback", "Callback caps"], ["any", "Caps across kinds"]];

const pathText = (path) => ["policy", ...path].join(".");

export async function policyView(container, route, { alive }) {
  const wanted = route.params.get("version");
  replace(container, h("h1", {}, "Policy"), loading("the policy"));
  let current;
  let history;
  try {
    const answer = await get("/policy");
    current = { ...answer.data, version: etagVersion(answer.headers) ?? answer.data.version };
    history = (await get(`/policy/versions${query({ limit: 20 })}`)).data;
  } catch (error) {
    if (alive()) replace(container, h("h1", {}, "Policy"), errorBox(error, { title: "Could not load the policy", retry: () => policyView(container, route, { alive }) }));
    return;
  }
  if (!alive()) return;
  const editor = new Editor(current, () => policyView(container, route, { alive }));
  const message = flash;
  flash = null;
  replace(container,
    h("h1", {}, "Policy"),
    message ? h("p", { class: "ok", role: "status" }, message) : null,
    h("section", { class: "card current", "aria-labelledby": "h-current" },
      h("h2", { id: "h-current" }, `Current: version ${current.version}`),
      versionFacts(current)),
    wanted !== null && Number(wanted) !== current.version ? versionPanel(Number(wanted), current, editor, alive) : null,
    editor.element,
    historySection(history, current, editor));
  if (wanted !== null) {
    const target = container.querySelector(Number(wanted) === current.version ? "#h-current" : "#h-version");
    if (target) target.scrollIntoView();
  }
}

function versionFacts(v) {
  return h("p", { class: "facts-line" },
    h("strong", {}, v.kind), ` by ${v.author}, `, time(v.created_at, { withYear: true }),
    v.based_on !== null && v.based_on !== undefined ? `, based on version ${v.based_on}` : "",
    v.comment ? [": ", h("q", {}, v.comment)] : "");
}

function diffTable(diff, caption) {
  if (!diff || !diff.length) return empty("No change.");
  return h("div", { class: "table-wrap" }, h("table", { class: "diff" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))),
    h("tbody", {}, diff.map((c) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, c.path)),
      h("td", { class: "before" }, h("code", {}, show(c.before))), h("td", { class: "after" }, h("code", {}, show(c.after))))))));
}

function versionPanel(version, current, editor, alive) {
  const panel = h("section", { class: "card version", "aria-labelledby": "h-version" }, h("h2", { id: "h-version" }, `Version ${version}`), loading(`version ${version}`));
  get(`/policy/versions/${version}`).then(({ data }) => {
    if (!alive()) return;
    replace(panel, h("h2", { id: "h-version" }, `Version ${version}`), versionFacts(data),
      h("h3", {}, "What it changed"), diffTable(data.diff),
      h("details", {}, h("summary", {}, "Its document"), h("pre", { class: "json" }, JSON.stringify(data.policy, null, 2))),
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: () => editor.load(data.policy, `version ${version}`) }, "Copy into the editor"),
        rollbackForm(version, current)));
  }, (error) => {
    if (alive()) replace(panel, h("h2", { id: "h-version" }, `Version ${version}`), errorBox(error, { title: `Could not load version ${version}` }));
  });
  return panel;
}

function rollbackForm(version, current) {
  const comment = h("input", { type: "text", id: `rollback-comment-${version}`, required: true, maxlength: 500, placeholder: "why" });
  const status = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "rollback", onsubmit: async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const answer = await post("/policy/rollback", { version, comment: comment.value.trim() }, { headers: { "if-match": `"${current.version}"` } });
      flash = `Rolled back: version ${answer.data.version} is version ${version}'s policy again.`;
      location.hash = "#/policy";
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (error) {
      const conflict = error instanceof ApiError && error.status === 412;
      replace(status, errorBox(error, { title: conflict ? "Someone changed the policy meanwhile: reload to see the new version, then roll back again" : "The rollback failed" }));
      button.disabled = false;
    }
  } },
  h("label", { for: `rollback-comment-${version}` }, `Roll back to version ${version}, because`), comment,
  h("button", { type: "submit", class: "danger" }, `Roll back to version ${version}`), status);
  return form;
}

function historySection(history, current, editor) {
  const list = h("ol", { class: "history", reversed: true });
  const more = h("div", {});
  const add = (items) => {
    for (const v of items) {
      list.append(h("li", { dataset: { version: v.version } },
        h("a", { href: `#/policy?version=${v.version}` }, `Version ${v.version}`), v.version === current.version ? " (current) " : " ",
        versionFacts(v), v.diff && v.diff.length ? h("span", { class: "muted" }, `${v.diff.length} change${v.diff.length === 1 ? "" : "s"}`) : null));
    }
  };
  const pager = (token) => {
    if (!token) return replace(more);
    replace(more, h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const next = (await get(`/policy/versions${query({ limit: 20, next_token: token })}`)).data;
        add(next.items);
        pager(next.next_token);
      } catch (error) {
        replace(more, errorBox(error));
      }
    } }, "Older versions"));
  };
  add(history.items);
  pager(history.next_token);
  return h("section", { class: "card", "aria-labelledby": "h-history" }, h("h2", { id: "h-history" }, "History"),
    history.items.length ? list : empty("No version yet."), more);
}

class Editor {
  constructor(current, reload) {
    this.current = current;
    this.base = current.version;
    this.reload = reload;
    this.draft = clone(current.policy);
    this.sequence = 0;
    this.validateSoon = debounce(() => this.validate(), 350);
    this.form = h("div", { class: "policy-form", id: "policy-form-panel" });
    this.json = h("textarea", { id: "policy-json", rows: 24, spellcheck: "false", "aria-describedby": "policy-json-problem",
      oninput: () => this.fromJson() });
    this.jsonProblem = h("p", { class: "problem", id: "policy-json-problem" });
    this.jsonPanel = h("div", { class: "field json-panel hidden", id: "policy-json-panel", dataset: { path: "policy" } },
      h("label", { for: "policy-json" }, "The policy as JSON (overrides are edited here)"), this.json, this.jsonProblem);
    this.tabs = [["form", "Form"], ["json", "JSON"]].map(([key, label]) =>
      h("button", { type: "button", class: "tab", "aria-pressed": key === "form" ? "true" : "false", dataset: { tab: key },
        "aria-controls": key === "form" ? "policy-form-panel" : "policy-json-panel", onclick: () => this.tab(key) }, label));
    this.validity = h("div", { class: "validity", "aria-live": "polite" });
    this.diff = h("div", { class: "diff-box" });
    this.comment = h("input", { id: "policy-comment", type: "text", maxlength: 500, placeholder: "why this change (shown in the history)" });
    this.outcome = h("div", { class: "apply-status", "aria-live": "polite" });
    this.days = h("input", { id: "simulate-days", type: "number", min: 1, max: 3660, value: 30 });
    this.simulation = h("div", { class: "simulation", "aria-live": "polite" });
    this.baseLine = h("p", { class: "muted" });
    this.element = h("section", { class: "card editor", "aria-labelledby": "h-editor" },
      h("h2", { id: "h-editor" }, "Edit"),
      this.baseLine,
      h("div", { class: "tabs", role: "group", "aria-label": "Editor view" }, this.tabs),
      this.form, this.jsonPanel, this.validity,
      h("h3", {}, "Diff against the current version"), this.diff,
      h("div", { class: "apply" },
        h("p", { class: "field" }, h("label", { for: "policy-comment" }, "Comment"), this.comment),
        h("div", { class: "row" },
          h("button", { type: "button", id: "apply-policy", onclick: () => this.apply() }, "Apply"),
          h("button", { type: "button", class: "secondary", onclick: () => this.load(this.current.policy, "the current version") }, "Reset to current")),
        this.outcome),
      h("h3", {}, "Simulate on the logged traffic"),
      h("div", { class: "row" },
        h("p", { class: "field" }, h("label", { for: "simulate-days" }, "Days of log to replay"), this.days),
        h("button", { type: "button", id: "simulate-policy", onclick: () => this.simulate() }, "Simulate")),
      this.simulation);
    this.load(this.draft, null);
  }

  load(policy, from) {
    this.draft = clone(policy);
    this.drawForm();
    this.json.value = JSON.stringify(this.draft, null, 2);
    this.jsonProblem.textContent = "";
    this.baseLine.textContent = `Based on version ${this.base}${from ? `; loaded from ${from}` : ""}.`;
    this.validate();
  }

  tab(key) {
    for (const button of this.tabs) button.setAttribute("aria-pressed", String(button.dataset.tab === key));
    this.form.classList.toggle("hidden", key !== "form");
    this.jsonPanel.classList.toggle("hidden", key !== "json");
    if (key === "form") this.drawForm();
  }

  changed() {
    this.json.value = JSON.stringify(this.draft, null, 2);
    this.validateSoon();
  }

  fromJson() {
    try {
      const parsed = JSON.parse(this.json.value);
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("the policy must be a JSON object");
      this.jsonProblem.textContent = "";
      this.json.removeAttribute("aria-invalid");
      this.draft = parsed;
      this.validateSoon();
    } catch (error) {
      this.sequence += 1; // an answer for older text must not mark this one valid
      this.jsonProblem.textContent = `Not valid JSON: ${error.message}`;
      this.json.setAttribute("aria-invalid", "true");
      replace(this.validity, h("p", { class: "bad" }, "Fix the JSON to validate the policy."));
    }
  }

  // -- the form ----------------------------------------------------------------------------------

  drawForm() {
    replace(this.form,
      h("fieldset", { class: "caps" }, h("legend", {}, "Caps (windows: at most N follow-ups in any D days)"),
        CAPS.map(([kind, label]) => this.capList(kind, label))),
      SECTIONS.map(([title, fields]) => h("fieldset", {}, h("legend", {}, title), fields.map((f) => this.field(f)))),
      h("p", { class: "muted" }, `Overrides (${(this.draft.overrides || []).length}) are edited in the JSON view.`));
  }

  fieldWrap(path, label, input, id) {
    const problemId = `${id}-problem`;
    input.setAttribute("aria-describedby", problemId);
    return h("div", { class: "field", dataset: { path: pathText(path) } },
      h("label", { for: id }, label), input, h("p", { class: "problem", id: problemId }));
  }

  field(f) {
    const id = `f-${f.path.join("-")}`;
    const value = getAt(this.draft, f.path);
    const set = (v) => {
      setAt(this.draft, f.path, v);
      this.changed();
    };
    let input;
    if (f.type === "bool") {
      input = h("input", { id, type: "checkbox", checked: Boolean(value), onchange: (e) => set(e.target.checked) });
      const wrap = this.fieldWrap(f.path, f.label, input, id);
      wrap.classList.add("check");
      return wrap;
    }
    if (f.type === "quiet") {
      input = h("input", { id, type: "checkbox", checked: value !== null && value !== undefined, onchange: (e) => {
        this.draft.quiet_hours = e.target.checked ? { start: "20:00", end: "09:00", default_timezone: "UTC" } : null;
        this.changed();
        this.drawForm();
        this.form.querySelector(`#${id}`).focus();
      } });
      const wrap = this.fieldWrap(f.path, f.label, input, id);
      wrap.classList.add("check");
      return wrap;
    }
    if (f.path[0] === "quiet_hours" && !this.draft.quiet_hours) return null;
    if (f.type === "outcomes") {
      const chosen = new Set(value || []);
      const group = h("div", { class: "field checks", dataset: { path: pathText(f.path) }, role: "group", "aria-labelledby": `${id}-label` },
        h("p", { id: `${id}-label`, class: "label" }, f.label),
        OUTCOMES.map((o) => h("label", { class: "inline" }, h("input", { type: "checkbox", checked: chosen.has(o), dataset: { outcome: o }, onchange: (e) => {
          const next = new Set(getAt(this.draft, f.path) || []);
          if (e.target.checked) next.add(o); else next.delete(o);
          set(OUTCOMES.filter((x) => next.has(x)));
        } }), ` ${o}`)),
        h("p", { class: "problem", id: `${id}-problem` }));
      return group;
    }
    if (f.type === "list") {
      input = h("input", { id, type: "text", value: (value || []).join(", "), oninput: (e) =>
        set(e.target.value.split(",").map((x) => x.trim()).filter(Boolean)) });
      return this.fieldWrap(f.path, f.label, input, id);
    }
    if (f.type === "time") {
      input = h("input", { id, type: "time", value: value ? String(value).slice(0, 5) : "", oninput: (e) => set(e.target.value || null) });
      return this.fieldWrap(f.path, f.label, input, id);
    }
    if (f.type === "text") {
      input = h("input", { id, type: "text", value: value ?? "", oninput: (e) => set(e.target.value) });
      return this.fieldWrap(f.path, f.label, input, id);
    }
    input = h("input", { id, type: "number", inputmode: f.type === "int" ? "numeric" : "decimal", value: value ?? "",
      min: f.min, max: f.max, step: f.step || 1,
      oninput: (e) => set(e.target.value === "" ? null : Number(e.target.value)) });
    return this.fieldWrap(f.path, f.label, input, id);
  }

  capList(kind, label) {
    const windows = getAt(this.draft, ["caps", kind]) || [];
    const path = ["caps", kind];
    return h("div", { class: "field cap-list", dataset: { path: pathText(path) } },
      h("p", { class: "label" }, label),
      windows.length ? null : h("p", { class: "muted" }, "none"),
      windows.map((w, i) => {
        const row = ["caps", kind, i];
        const number = (key, text, min) => {
          const id = `f-caps-${kind}-${i}-${key}`;
          const input = h("input", { id, type: "number", min, value: w[key] ?? "", inputmode: "numeric", oninput: (e) => {
            setAt(this.draft, [...row, key], e.target.value === "" ? null : Number(e.target.value));
            this.changed();
          } });
          return this.fieldWrap([...row, key], text, input, id);
        };
        return h("div", { class: "cap-row", dataset: { path: pathText(row) } },
          number("max", "At most", 0), number("days", "in days", 1),
          h("button", { type: "button", class: "secondary small", "aria-label": `Remove ${label.toLowerCase()} window ${i + 1}`, onclick: () => {
            windows.splice(i, 1);
            this.changed();
            this.drawForm();
          } }, "Remove"),
          h("p", { class: "problem" }));
      }),
      h("button", { type: "button", class: "secondary small", onclick: () => {
        setAt(this.draft, path, [...windows, { max: 1, days: 30 }]);
        this.changed();
        this.drawForm();
        const added = this.form.querySelector(`#f-caps-${kind}-${windows.length}-max`);
        if (added) added.focus();
      } }, `Add a ${kind === "any" ? "cross-kind" : kind} window`),
      h("p", { class: "problem" }));
  }

  // -- validation --------------------------------------------------------------------------------

  /** Puts each problem at its field: the deepest element whose data-path starts the problem's path. */
  showProblems(problems) {
    for (const node of this.element.querySelectorAll(".problem")) if (node !== this.jsonProblem) node.textContent = "";
    for (const node of this.element.querySelectorAll("[aria-invalid]")) if (node !== this.json) node.removeAttribute("aria-invalid");
    const unplaced = [];
    for (const problem of problems) {
      let parts = String(problem.field).split(".");
      let target = null;
      while (parts.length && !target) {
        const key = parts.join(".");
        target = [...this.form.querySelectorAll("[data-path]")].find((node) => node.dataset.path === key) || null;
        parts = parts.slice(0, -1);
      }
      if (!target) {
        unplaced.push(problem);
        continue;
      }
      const slot = [...target.children].find((child) => child.classList.contains("problem"));
      if (slot) slot.textContent = [slot.textContent, problem.message].filter(Boolean).join("; ");
      const input = target.querySelector("input");
      if (input) input.setAttribute("aria-invalid", "true");
    }
    return unplaced;
  }

  async validate() {
    const sequence = ++this.sequence;
    replace(this.validity, h("p", { class: "loading", role: "status" }, "Validating…"));
    let report;
    try {
      report = (await post("/policy/validate", { policy: this.draft })).data;
    } catch (error) {
      if (sequence === this.sequence) replace(this.validity, errorBox(error, { title: "Could not validate" }));
      return;
    }
    if (sequence !== this.sequence) return; // the draft changed meanwhile: a newer answer follows
    this.report = report;
    const unplaced = this.showProblems(report.problems);
    this.jsonProblem.textContent = report.problems.map((p) => `${p.field}: ${p.message}`).join("\n");
    if (report.valid) {
      replace(this.validity, h("p", { class: "ok valid" }, `Valid. ${report.diff.length} change${report.diff.length === 1 ? "" : "s"} against version ${this.current.version}.`));
    } else {
      replace(this.validity, h("div", { class: "bad invalid", role: "alert" },
        h("p", {}, `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}: nothing can be applied until they are fixed.`),
        h("ul", {}, report.problems.map((p) => h("li", {}, h("code", {}, p.field), `: ${p.message}`))),
        unplaced.length ? h("p", { class: "muted" }, "Problems in overrides are shown in the JSON view.") : null));
    }
    replace(this.diff, report.valid ? diffTable(report.diff) : empty("Fix the problems to see the diff."));
  }

  // -- apply, and the 412 --------------------------------------------------------------------------

  async apply() {
    const comment = this.comment.value.trim();
    if (!comment) {
      replace(this.outcome, h("p", { class: "bad", role: "alert" }, "Say why in the comment: it is shown in the history."));
      this.comment.focus();
      return;
    }
    const button = this.element.querySelector("#apply-policy");
    button.disabled = true;
    replace(this.outcome, h("p", { class: "loading", role: "status" }, `Applying onto version ${this.base}…`));
    try {
      const answer = await put("/policy", { policy: this.draft, comment }, { headers: { "if-match": `"${this.base}"` } });
      flash = `Applied: version ${answer.data.version} is current.`;
      this.reload();
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 412) return this.conflict(error);
      if (error instanceof ApiError && error.status === 400 && error.fields.length) this.showProblems(error.fields);
      replace(this.outcome, errorBox(error, { title: "Not applied" }));
    }
  }

  async conflict(error) {
    // Someone applied a version after the one this draft is based on. Show what they changed and
    // what the draft would change now; the draft stays as it is until the operator decides.
    let latest;
    try {
      const answer = await get("/policy");
      latest = { ...answer.data, version: etagVersion(answer.headers) ?? answer.data.version };
    } catch (failure) {
      replace(this.outcome, errorBox(error), errorBox(failure, { title: "Could not read the new version" }));
      return;
    }
    let mine = null;
    try {
      mine = (await post("/policy/validate", { policy: this.draft })).data;
    } catch {
      mine = null;
    }
    const was = this.base;
    replace(this.outcome, h("div", { class: "conflict", role: "alert" },
      h("p", {}, h("strong", {}, `Someone applied version ${latest.version} while you edited`), ` (your draft is based on version ${was}). Review the diff, then re-apply your draft onto version ${latest.version} or start again from it.`),
      versionFacts(latest),
      h("h4", {}, `What version ${latest.version} changed`), diffTable(latest.diff),
      h("h4", {}, `What your draft would change on version ${latest.version}`), mine && mine.valid ? diffTable(mine.diff) : empty("Your draft does not validate against the new version's rules: see the problems above."),
      h("div", { class: "row" },
        h("button", { type: "button", id: "reapply-policy", onclick: () => {
          this.current = latest;
          this.base = latest.version;
          this.baseLine.textContent = `Based on version ${this.base}; your draft kept after a conflict.`;
          this.validate();
          this.apply();
        } }, `Re-apply my draft onto version ${latest.version}`),
        h("button", { type: "button", class: "secondary", onclick: () => {
          this.current = latest;
          this.base = latest.version;
          this.load(latest.policy, `version ${latest.version}`);
          replace(this.outcome);
        } }, `Discard my draft, load version ${latest.version}`))));
  }

  // -- simulation ----------------------------------------------------------------------------------

  async simulate() {
    const days = Number(this.days.value);
    const button = this.element.querySelector("#simulate-policy");
    button.disabled = true;
    replace(this.simulation, h("p", { class: "loading", role: "status" }, `Replaying ${days} days of logged traffic under both policies…`));
    try {
      let result;
      if (days > SYNC_DAYS) {
        const started = (await post("/policy/simulations", { policy: this.draft, days })).data;
        result = await this.poll(started.job_id);
      } else {
        result = (await post("/policy/simulate", { policy: this.draft, days })).data;
      }
      if (result) replace(this.simulation, await simulationReport(result));
    } catch (error) {
      replace(this.simulation, errorBox(error, { title: "The simulation failed" }));
    } finally {
      button.disabled = false;
    }
  }

  async poll(jobId) {
    for (;;) {
      const job = (await get(`/policy/simulations/${encodeURIComponent(jobId)}`)).data;
      if (job.status === "succeeded") return job.result;
      if (job.status === "failed") throw new ApiError(500, { code: "JOB_FAILED", message: job.error ? job.error.message || JSON.stringify(job.error) : "the job failed" });
      const p = job.progress || {};
      replace(this.simulation, h("p", { class: "loading", role: "status" }, `Simulation job running: ${p.partitions_done || 0} of ${p.partitions || "?"} partitions, ${p.events_replayed || 0} events replayed…`));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

const outcomeText = (side) => (side ? [side.action, side.reason].filter(Boolean).join(" ") : "?");

async function simulationReport(r) {
  const actions = ACTIONS;
  const reasons = [...new Set([...Object.keys(r.current.by_reason), ...Object.keys(r.candidate.by_reason)])].sort();
  const sample = r.changed_customers_sample || [];
  // Links to the Customer view only when these credentials may read customers (a marketing-ops
  // role may not: the API answers 403); the ids are shown either way.
  let linkable = true;
  if (sample.length) {
    try {
      await get(customerPath(sample[0].customer_id, "preferences"));
    } catch (error) {
      linkable = !(error instanceof ApiError && error.forbidden);
    }
  }
  const change = (d) => `${d > 0 ? "+" : ""}${d}`;
  if (!r.events) {
    // Nothing logged in the window: zero bars would read as "the candidate changes nothing".
    return h("div", { class: "sim-result sim-empty" },
      empty(`No logged decision in the last ${r.days} day${r.days === 1 ? "" : "s"}: nothing to replay, so nothing to compare. Replay more days.`),
      (r.warnings || []).length ? h("ul", { class: "warnings" }, r.warnings.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w)))) : null);
  }
  return h("div", { class: "sim-result" },
    h("p", {}, `Replayed ${r.events} logged events of ${r.days} days (`, time(r.window.start, { withYear: true }), " to ", time(r.window.end, { withYear: true }),
      `): ${r.changed_events} decided differently. `,
      ...actions.map((a) => `${a} ${r.current.by_action[a] || 0} → ${r.candidate.by_action[a] || 0} (${change((r.candidate.by_action[a] || 0) - (r.current.by_action[a] || 0))}). `)),
    (r.warnings || []).length ? h("ul", { class: "warnings" }, r.warnings.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w)))) : null,
    h("div", { class: "charts" },
      groupedBars({ title: "Per action: current vs candidate", categories: actions,
        series: [{ key: "current", name: `Current (version ${r.current.version})`, values: actions.map((a) => r.current.by_action[a] || 0) },
          { key: "candidate", name: "Candidate", values: actions.map((a) => r.candidate.by_action[a] || 0) }] }),
      groupedBars({ title: "Per deciding reason: current vs candidate", categories: reasons,
        series: [{ key: "current", name: "Current", values: reasons.map((x) => r.current.by_reason[x] || 0) },
          { key: "candidate", name: "Candidate", values: reasons.map((x) => r.candidate.by_reason[x] || 0) }] })),
    h("h4", {}, "Customers who would be treated differently (a sample)"),
    sample.length
      ? h("ul", { class: "sample" }, sample.map((c) => h("li", {},
        linkable ? h("a", { href: `#/customer/${encodeURIComponent(c.customer_id)}` }, c.customer_id) : h("span", { class: "customer-id" }, c.customer_id),
        ": ", (c.events || []).slice(0, 3).map((e) => `${outcomeText(e.current)} → ${outcomeText(e.candidate)}`).join(", "))))
      : empty("Nobody: the candidate decides every replayed event as the current policy does."),
    sample.length && !linkable ? h("p", { class: "muted" }, "Customer links are hidden: these credentials are not permitted to read customers.") : null,
    r.current_vs_logged ? h("p", { class: "muted" }, (r.current_vs_logged.explanations || []).join(" ")) : null);
}
