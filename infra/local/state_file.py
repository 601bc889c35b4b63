"""Where a running `governor local` says it serves: a small JSON file the other `governor` commands
read when neither --url nor GOVERNOR_URL is set, so another port just works.

The file lives in `$GOVERNOR_STATE_DIR/local.json`, else `$XDG_STATE_HOME/governor/local.json`,
else `~/.local/state/governor/local.json` (the XDG base directory rule). The same directory holds
the local stack's saved state (infra/local/persistence.py). A file whose process is gone is
treated as absent: a stack killed with SIGKILL leaves one behind, and its address is dead.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "local.json"


@dataclass(frozen=True)
class LocalAddress:
    url: str
    moto_endpoint: str
    pid: int
    started_at: str  # RFC 3339, UTC
    clock: str  # "wall" | "event"
    state: str  # "persistent" | "ephemeral"
    state_dir: str


def state_dir() -> Path:
    explicit = os.environ.get("GOVERNOR_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "governor"


def state_path() -> Path:
    return state_dir() / FILE_NAME


def write(address: LocalAddress) -> Path:
    """Written to a temporary file and renamed, so a reader never sees half a file."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(address), indent=2) + "\n")
    os.replace(temporary, path)
    return path


def read() -> LocalAddress | None:
    """The running stack's address; None when there is no file, it cannot be read, or its process is gone."""
    try:
        raw = json.loads(state_path().read_text())
        address = LocalAddress(**{name: raw[name] for name in LocalAddress.__dataclass_fields__})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(address.url, str) or not isinstance(address.pid, int) or not _alive(address.pid):
        return None
    return address


def remove_if_ours(pid: int) -> bool:
    """Removes the file if it names `pid` (another stack may have started since and own it now)."""
    path = state_path()
    try:
        if json.loads(path.read_text()).get("pid") != pid:
            return False
    except (OSError, ValueError, AttributeError):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True
