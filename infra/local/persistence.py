"""The local stack's state kept across restarts: moto's backends, pickled when `governor local`
stops and put back in place when it starts again (unless --ephemeral).

moto keeps each service's state in plain Python objects in this process (the emulator runs on a
thread here), so a snapshot of them is the emulator's whole state: tables with their items,
indexes, streams and TTL, queues with their messages, the bus and its rules, schedules, state
machines. With it go the resources' names (so nothing is provisioned twice) and the log stream's
checkpoints (so nothing committed before the stop is published or counted twice). Locks in moto's
models are not picklable; each is saved as a new, unheld lock of its kind. IAM and KMS are left
out: the local authoriser makes its users and keys afresh on each start, and moto's KMS keys hold
OpenSSL objects that do not pickle; nothing of the governor's lives there.

The file is written to a temporary name and renamed, so a stop cut short leaves the previous
snapshot whole, never half of a new one.
"""

from __future__ import annotations

import copy
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNAPSHOT_NAME = "moto-state.pickle"
FORMAT = 1
SKIPPED_SERVICES = frozenset({"iam", "kms"})

_LOCKS: dict[type, Any] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
    threading.Condition: threading.Condition,
    threading.Event: threading.Event,
    threading.Semaphore: threading.Semaphore,
}


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        maker = _LOCKS.get(type(obj))
        return (maker, ()) if maker is not None else NotImplemented


@dataclass
class Saved:
    resources: Any  # infra.local.provision.ProvisionedResources, without its runtime helpers
    stream_checkpoints: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    backends: list[tuple[str, str, str, Any]] = field(default_factory=list)  # service, account, region, backend


def snapshot_path(state_dir: Path) -> Path:
    return state_dir / SNAPSHOT_NAME


def save(path: Path, resources: Any, stream_checkpoints: dict[str, tuple[str, str | None]]) -> None:
    """Pickles every moto backend in use (call it with nothing writing to moto)."""
    from moto.core.base_backend import BackendDict

    backends = [
        (service.service_name, account, region, backend)
        for service in list(BackendDict._instances)  # type: ignore[misc]  # moto's registry of backends in use
        if service.service_name not in SKIPPED_SERVICES
        for account, region, backend in service.iter_backends()
    ]
    kept = copy.copy(resources)
    kept.runtime = {}  # the stream poller holds a client; its checkpoints are saved on their own
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as out:
        _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(
            {"format": FORMAT, "saved": Saved(kept, dict(stream_checkpoints), backends)}
        )
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def load(path: Path) -> Saved | None:
    """The saved state, or None when there is none or it is from another format (then the stack starts empty)."""
    try:
        with path.open("rb") as given:
            raw = pickle.load(given)  # noqa: S301 - our own file, written by save() above
    except FileNotFoundError:
        return None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("saved"), Saved):
        return None
    saved: Saved = raw["saved"]
    return saved


def restore(saved: Saved) -> None:
    """Puts the saved backends in place of the (freshly reset) emulator's."""
    from moto.backends import get_backend

    for service, account, region, backend in saved.backends:
        backends: Any = get_backend(service)  # type: ignore[call-overload]  # a name read from the file
        dict.__setitem__(backends[account], region, backend)
