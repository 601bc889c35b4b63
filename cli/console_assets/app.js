// The console: four views behind hash routes. The hash holds at most a customer id (or a decision
// id, a policy version, a date range); nothing is kept in localStorage, sessionStorage or cookies.

import { h, replace, viewerZone, errorBox, focusHeading } from "./dom.js";
import { customerView } from "./views/customer.js";
import { decisionView } from "./views/decision.js";
import { policyView } from "./views/policy.js";
import { statsView } from "./views/stats.js";

const VIEWS = { customer: customerView, decision: decisionView, policy: policyView, stats: statsView };

/** "#/customer/cust-1" -> {name: "customer", id: "cust-1", params} */
export function parseRoute(hash) {
  const text = (hash || "").replace(/^#\/?/, "");
  const [path, search = ""] = text.split("?");
  const [name, ...rest] = path.split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : "";
  return { name: VIEWS[name] ? name : "customer", id, params: new URLSearchParams(search) };
}

let current = null;

async function render() {
  const route = parseRoute(location.hash);
  const main = document.getElementById("view");
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === route.name || (route.name === "decision" && link.dataset.nav === "customer")) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  // A view started for an older route stops touching the page once the route changes.
  const token = {};
  current = token;
  const alive = () => current === token;
  const container = h("div", { class: `view view-${route.name}` });
  replace(main, container);
  try {
    await VIEWS[route.name](container, route, { alive, first: isFirst });
  } catch (error) {
    if (alive()) replace(container, h("h1", {}, "Something went wrong"), errorBox(error));
  }
  if (!isFirst && alive() && !container.contains(document.activeElement)) focusHeading(container);
  isFirst = false;
}

let isFirst = true;

// The skip link's "#view" would be taken for a route (and open the Customer view): it only moves focus.
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("view").focus();
});

document.getElementById("viewer-zone").textContent = `Times in ${viewerZone()} (hover for UTC)`;
window.addEventListener("hashchange", render);
render();
