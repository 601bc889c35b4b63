// Every call the console makes: same-origin, to the public API routes only (docs/openapi/*.json).
// Nothing is cached or stored: each view asks the API again.

export class ApiError extends Error {
  constructor(status, body, headers) {
    const data = body && typeof body === "object" ? body : {};
    super(data.message || data.Message || `the API answered ${status}`);
    this.status = status;
    this.code = data.code || (status === 403 ? "FORBIDDEN" : status === 0 ? "UNREACHABLE" : `HTTP_${status}`);
    this.fields = Array.isArray(data.fields) ? data.fields : [];
    this.headers = headers || null;
  }

  get forbidden() {
    return this.status === 403;
  }
}

async function send(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { accept: "application/json", ...headers }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { message: `the API did not answer (${error.message})` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // A gateway or proxy page: keep its start so the operator sees what answered.
    data = { message: `${response.status} ${response.statusText}: ${text.slice(0, 200)}` };
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return { status: response.status, data, headers: response.headers };
}

export const get = (path, options) => send("GET", path, options);
export const put = (path, body, options = {}) => send("PUT", path, { ...options, body });
export const post = (path, body, options = {}) => send("POST", path, { ...options, body });

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const customerPath = (id, rest) => `/customers/${encodeURIComponent(id)}/${rest}`;

/** The version in an ETag such as "3" (or W/"3"). */
export function etagVersion(headers) {
  const tag = headers && headers.get("etag");
  if (!tag) return null;
  const digits = tag.replace(/^W\//, "").replaceAll('"', "");
  return /^\d+$/.test(digits) ? Number(digits) : null;
}
