"""The console's static files, as the local gateway and `governor console` both serve them.

`asset(path)` is pure apart from reading the file: it answers `(status, headers, body)` for a console
path (`/`, `/console`, `/console/<file>`) and None for every other path, which then goes to the API.
Files come from cli/console_assets/ only: a path that resolves outside it (`..`, an encoded `%2e%2e`,
a symlink) is 404, never read. The Content-Security-Policy lets the page load and call nothing but
its own origin, so "works offline, no CDN" is enforced by the browser, not only by review.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "cli" / "console_assets"
INDEX = "index.html"
PREFIX = "/console/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

# Only the page's own origin, for everything: no CDN, no inline script, no framing; images may also
# be data: URLs (charts exported as images), which name no origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

Answer = tuple[int, dict[str, str], bytes]


def is_console_path(path: str) -> bool:
    return path in ("/", "/console", "/console/") or path.startswith(PREFIX)


def asset(path: str, root: Path = ASSETS) -> Answer | None:
    """The answer for one request path (no query), or None when the path is not the console's."""
    if not is_console_path(path):
        return None
    relative = urllib.parse.unquote(path[len(PREFIX) :]) if path.startswith(PREFIX) else ""
    if "\x00" in relative:
        return _not_found(path)
    base = root.resolve()
    try:
        target = (base / (relative or INDEX)).resolve()
        # Resolved first, then checked: `..`, encoded dots and symlinks all end up outside `base`.
        if not target.is_relative_to(base) or not target.is_file():
            return _not_found(path)
    except OSError:  # a name too long for the file system, a loop of symlinks
        return _not_found(path)
    content_type = CONTENT_TYPES.get(target.suffix.lower())
    if content_type is None:
        return _not_found(path)  # only the kinds of file a page needs; nothing else under the folder leaks
    headers = {
        "Content-Type": content_type,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        # The page's URL may hold a customer id: never sent on to anyone.
        "Referrer-Policy": "no-referrer",
        # The page always loads the current assets (a new version after a restart); the others may
        # be kept for the session only.
        "Cache-Control": "no-store" if target.name == INDEX else "no-cache",
    }
    return 200, headers, target.read_bytes()


def _not_found(path: str) -> Answer:
    body = json.dumps({"code": "NOT_FOUND", "message": f"no console file {path}"}).encode()
    return 404, {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}, body
