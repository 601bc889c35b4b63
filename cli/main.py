"""Kept so `from cli import main; main.main([...])` keeps working: the command is cli.app."""

from __future__ import annotations

from cli.app import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
