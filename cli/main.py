"""The `governor` command: run the governor locally and talk to it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "infra" / "sample-events.ndjson"
EXAMPLE = ROOT / "infra" / "example-event.json"


def local(args: argparse.Namespace) -> int:
    from cli import replay
    from infra.local.stack import LOG_FILE, LocalGovernor, PortBusy

    console = sys.stdout
    stack = LocalGovernor(
        port=args.port, moto_port=args.moto_port, clock=args.clock, log_to=None if args.verbose else LOG_FILE
    )
    try:
        stack.start()
    except PortBusy as error:
        print(f"governor local: {error}", file=sys.stderr)
        return 2
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        print(f"governor local: serving {stack.url} (moto {stack.moto_endpoint}, clock {args.clock})", file=console)
        if not args.verbose:
            print(f"function logs and metrics: {shown(LOG_FILE)}", file=console)
        if not args.no_replay:
            details = replay.load(args.sample)
            print(f"replaying {len(details)} events from {shown(args.sample)}", file=console)
            print(replay.replay(stack.url, details, out=console).table(), file=console)
        print(examples(stack.url), file=console)
        print("Ctrl-C stops.", file=console, flush=True)
        stopped.wait()
    finally:
        print("stopping...", file=console)
        stack.stop()
    return 0


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
            "",
        ]
    )


def replay_command(args: argparse.Namespace) -> int:
    from cli import replay

    details = replay.load(args.file)
    if args.in_process:
        from infra.local.stack import LOG_FILE, running

        with running(port=0, clock=args.clock, log_to=LOG_FILE) as stack:
            report = replay.replay(stack.url, details)
    else:
        report = replay.replay(args.url.rstrip("/"), details)
    print(report.table())
    return 0 if report.drained else 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="governor", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("local", help="serve the whole governor on the embedded AWS emulator")
    run.add_argument("--port", type=int, default=8765, help="HTTP gateway port (default 8765)")
    run.add_argument("--moto-port", type=int, default=0, help="emulator port (default: a free one)")
    run.add_argument(
        "--clock",
        choices=["wall", "event"],
        default="wall",
        help="event: decide each event as of its closed_at + 30 s and fire held follow-ups in time order "
        "(POST /local/advance moves time on), to replay recorded traffic as if live",
    )
    run.add_argument("--no-replay", action="store_true", help="do not replay the sample on start")
    run.add_argument("--sample", type=Path, default=SAMPLE, help="NDJSON replayed on start")
    run.add_argument("--verbose", action="store_true", help="print function logs and metrics here")
    run.set_defaults(run=local)

    again = commands.add_parser("replay", help="send an NDJSON file through the local stack and summarise")
    again.add_argument("file", type=Path)
    again.add_argument("--url", default="http://127.0.0.1:8765", help="a running `governor local`")
    again.add_argument("--in-process", action="store_true", help="start a stack in this process instead")
    again.add_argument("--clock", choices=["wall", "event"], default="event", help="with --in-process")
    again.set_defaults(run=replay_command)

    from cli import admin, policy

    policy.add_commands(commands)
    admin.add_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    # Powertools warns on every invocation that emits no metric (a refused request); noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    args: Any = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
