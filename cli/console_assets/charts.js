// Charts drawn as inline SVG by hand: no library, no download. Colours come from console.css
// classes (the page's CSP allows no inline style), every bar has a <title> for hover, and each
// chart is followed by its numbers as a table for screen readers and copying.

import { h, s } from "./dom.js";

let counter = 0;
const nextId = (prefix) => `${prefix}-${++counter}`;

function figure(title, svg, table, legend) {
  return h("figure", { class: "chart" }, h("figcaption", {}, title), legend, svg,
    h("details", { class: "chart-data" }, h("summary", {}, "Numbers"), table));
}

function legendOf(series) {
  return h("ul", { class: "legend" }, series.map((one) =>
    h("li", {}, s("svg", { width: 12, height: 12, "aria-hidden": "true" },
      s("rect", { width: 12, height: 12, class: `fill-${one.key}` })), " ", one.name)));
}

function tableOf(categories, series, format) {
  return h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, ""), series.map((one) => h("th", { scope: "col" }, one.name)))),
    h("tbody", {}, categories.map((category, i) =>
      h("tr", {}, h("th", { scope: "row" }, category), series.map((one) => h("td", {}, format(one.values[i])))))));
}

/** Horizontal grouped bars: one row per category, one bar per series (current vs candidate). */
export function groupedBars({ title, categories, series, format = String }) {
  const barHeight = 12;
  const gap = 10;
  const labelWidth = 230;
  const width = 640;
  const plot = width - labelWidth - 50;
  const rowHeight = series.length * barHeight + gap;
  const height = Math.max(rowHeight * categories.length + 10, 30);
  const max = Math.max(1, ...series.flatMap((one) => one.values.map((v) => Math.abs(v || 0))));
  const id = nextId("chart");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t`, class: "bars", preserveAspectRatio: "xMinYMin meet" },
    s("title", { id: `${id}-t` }, title));
  categories.forEach((category, row) => {
    const top = row * rowHeight + 5;
    svg.append(s("text", { x: labelWidth - 8, y: top + (series.length * barHeight) / 2 + 4, class: "axis-label", "text-anchor": "end" }, category));
    series.forEach((one, i) => {
      const value = one.values[row] || 0;
      const length = (Math.abs(value) / max) * plot;
      const y = top + i * barHeight;
      svg.append(s("rect", { x: labelWidth, y, width: Math.max(length, value ? 1 : 0), height: barHeight - 2, class: `fill-${one.key}` },
        s("title", {}, `${category}, ${one.name}: ${format(value)}`)));
      svg.append(s("text", { x: labelWidth + length + 4, y: y + barHeight - 3, class: "value-label" }, format(value)));
    });
  });
  svg.append(s("line", { x1: labelWidth, x2: labelWidth, y1: 0, y2: height, class: "axis" }));
  return figure(title, svg, tableOf(categories, series, format), legendOf(series));
}

/** Vertical bars per day, stacked by series (follow-ups per day by action). */
export function stackedColumns({ title, days, series, format = String, max: fixedMax, dayLabel = (d) => d.slice(5) }) {
  const width = 640;
  const height = 220;
  const left = 40;
  const bottom = 30;
  const plotHeight = height - bottom - 10;
  const plotWidth = width - left - 10;
  const totals = days.map((_, i) => series.reduce((sum, one) => sum + (one.values[i] || 0), 0));
  const max = fixedMax || Math.max(1, ...totals);
  const step = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(Math.min(step * 0.8, 40), 1);
  const id = nextId("chart");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t`, class: "columns" },
    s("title", { id: `${id}-t` }, title));
  for (const fraction of [0, 0.5, 1]) {
    const y = 10 + plotHeight * (1 - fraction);
    svg.append(s("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid" }));
    svg.append(s("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "value-label" }, format(max * fraction)));
  }
  const labelEvery = Math.ceil(days.length / 10);
  days.forEach((day, i) => {
    const x = left + i * step + (step - barWidth) / 2;
    let base = 10 + plotHeight;
    for (const one of series) {
      const value = one.values[i] || 0;
      if (!value) continue;
      const barHeight = (value / max) * plotHeight;
      base -= barHeight;
      svg.append(s("rect", { x, y: base, width: barWidth, height: barHeight, class: `fill-${one.key}` },
        s("title", {}, `${day}, ${one.name}: ${format(value)}`)));
    }
    if (i % labelEvery === 0) {
      svg.append(s("text", { x: x + barWidth / 2, y: height - 12, "text-anchor": "middle", class: "axis-label" }, dayLabel(day)));
    }
  });
  return figure(title, svg, tableOf(days, series, format), series.length > 1 ? legendOf(series) : null);
}
