"""`python -m souk`: the same command as the `souk` console script."""

from __future__ import annotations

from souk.cli import app

app(prog_name="souk")
