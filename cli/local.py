"""`governor local`: serve the whole governor on the embedded AWS emulator (moto)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from cli.context import USAGE, info

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "infra" / "sample-events.ndjson"
EXAMPLE = ROOT / "infra" / "example-event.json"


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="HTTP gateway port (0: a free one).")
@click.option("--moto-port", type=int, default=0, help="Emulator port [default: a free one].")
@click.option(
    "--clock",
    type=click.Choice(["wall", "event"]),
    default="wall",
    show_default=True,
    help="event: decide each event as of its closed_at + 30 s and fire held follow-ups in time order "
    "(POST /local/advance moves time on), to replay recorded traffic as if live.",
)
@click.option("--no-replay", is_flag=True, help="Do not replay the sample on start.")
@click.option(
    "--sample",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=SAMPLE,
    help="NDJSON replayed on start [default: infra/sample-events.ndjson].",
)
@click.option("--verbose", is_flag=True, help="Print function logs and metrics here.")
@click.option(
    "--ephemeral",
    is_flag=True,
    help="Start empty and keep nothing [default: restore the state kept at the last stop, keep it at this one].",
)
def local(
    *, port: int, moto_port: int, clock: str, no_replay: bool, sample: Path, verbose: bool, ephemeral: bool
) -> int:
    """Serve the whole governor on moto: every resource of template.yaml, SQS pollers, and an HTTP
    gateway for every API route. Other `governor` commands find it without --url. Ctrl-C stops."""
    from cli import replay
    from infra.local.stack import LOG_FILE, LocalGovernor, PortBusy

    stack = LocalGovernor(
        port=port, moto_port=moto_port, clock=clock, log_to=None if verbose else LOG_FILE, persist=not ephemeral
    )
    try:
        stack.start()
    except PortBusy as error:
        info(f"governor local: {error}")
        return USAGE
    # Ctrl-C and SIGTERM interrupt whatever the main thread does (a replay too), not only the wait.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        info(f"governor local: serving {stack.url} (moto {stack.moto_endpoint}, clock {clock})")
        info(stack.state_note)
        if not verbose:
            info(f"function logs and metrics: {shown(LOG_FILE)}")
        if not no_replay:
            details = replay.load(sample)
            info(f"replaying {len(details)} events from {shown(sample)}")
            info(replay.send(stack.url, details, out=sys.stderr).table())
        info(examples(stack.url))
        info(f"console: open {stack.url}/ in a browser")  # the web console (infra/local/console_http.py)
        info("Ctrl-C stops.")
        threading.Event().wait()
    except _Stop:
        pass
    finally:
        # A second signal while stopping is ignored: the stop is bounded, and cutting it short
        # would lose the state being kept.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        info("stopping...")
        stack.stop()
    return 0


class _Stop(BaseException):
    """Raised in the main thread by Ctrl-C or SIGTERM; a BaseException, so no `except Exception` swallows it."""


def _interrupt(*_: object) -> None:
    raise _Stop


def shown(path: Path) -> str:
    """A path as short as it can be said from the checkout."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def examples(url: str) -> str:
    example = shown(EXAMPLE)
    return "\n".join(
        [
            "",
            "Try:",
            f"  curl -s -X POST {url}/events -H 'content-type: application/json' -d @{example}",
            f"  curl -s -X POST {url}/decide -H 'content-type: application/json' -d @{example}",
            f"  curl -s '{url}/decisions?customer_id=cust-example-1'",
            f"  curl -s {url}/health",
            "  governor decisions --since 30d            # the other commands find this stack by themselves",
            "  governor stats --since 30d",
            "",
        ]
    )
