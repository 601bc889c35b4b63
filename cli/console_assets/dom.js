// Small helpers to build the page: elements, times, and the loading / empty / error states.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "value" && "value" in element) element.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected") element[key] = Boolean(value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** h("p", {class: "x"}, "text", child...) */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
/** The same for SVG elements (charts are drawn by hand, no library). */
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

export function replace(container, ...children) {
  container.replaceChildren();
  build(container, {}, children);
  return container;
}

// -- times -------------------------------------------------------------------------------------

/** The API writes microseconds ("...09.000000Z"); Date takes milliseconds. */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(String(text).replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) ? null : date;
}

function formatter(zone, withYear) {
  const options = { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withYear) options.year = "numeric";
  if (zone) options.timeZone = zone;
  try {
    return new Intl.DateTimeFormat(undefined, options);
  } catch {
    // An unknown zone name: the viewer's own zone, and the caller says so.
    delete options.timeZone;
    return new Intl.DateTimeFormat(undefined, options);
  }
}

export const viewerZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function utcText(date) {
  return `${date.toISOString().replace(/\.\d{3}Z$/, "Z").replace("T", " ")} UTC`;
}

/** A <time>: shown in `zone` (default: the viewer's), with UTC on hover. */
export function time(text, { zone, withYear = false, label = "" } = {}) {
  const date = parseTime(text);
  if (!date) return h("span", { class: "muted" }, text ? String(text) : "–");
  const shown = formatter(zone, withYear).format(date);
  const suffix = zone ? ` (${zone})` : "";
  // A time in the customer's zone also says the viewer's own time on hover; UTC always.
  const yours = zone && zone !== viewerZone() ? `${formatter(null, true).format(date)} your time (${viewerZone()}) · ` : "";
  return h("time", { datetime: date.toISOString(), title: `${yours}${utcText(date)}` }, label, shown, suffix);
}

export const isoDay = (date) => date.toISOString().slice(0, 10);

export function daysBefore(date, days) {
  const copy = new Date(date.getTime());
  copy.setUTCDate(copy.getUTCDate() - days);
  return copy;
}

// -- states --------------------------------------------------------------------------------------

export const loading = (what) => h("p", { class: "loading", role: "status" }, `Loading ${what}…`);

export const empty = (text) => h("p", { class: "empty" }, text);

/** An API error as the operator needs it: what happened (its message), the code, and each field. */
export function errorBox(error, { title, retry } = {}) {
  const forbidden = error && error.status === 403;
  const heading = forbidden ? "Not permitted with these credentials" : title || "The request failed";
  const fields = (error && error.fields) || [];
  return h(
    "div",
    { class: forbidden ? "error forbidden" : "error", role: "alert" },
    h("p", { class: "error-title" }, h("strong", {}, heading)),
    h("p", { class: "error-message" }, error ? error.message : "unknown error"),
    error && error.status
      ? h("p", { class: "muted error-code" }, `HTTP ${error.status}`, error.code ? ` · ${error.code}` : "")
      : error && error.code
        ? h("p", { class: "muted error-code" }, error.code)
        : null,
    fields.length
      ? h("ul", { class: "error-fields" }, fields.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.message)))
      : null,
    retry ? h("button", { type: "button", class: "secondary", onclick: retry }, "Try again") : null,
  );
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""} b-${String(text).toLowerCase()}` }, text);
}

export function focusHeading(container) {
  const heading = container.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

/** Waits `ms` after the last call before running `fn` (validation as you type). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
