"""What the console reads from its environment (``CONSOLE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chassis import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """The store's bounds and how often the console looks at the running system."""

    port: int = Field(default=8081, ge=0, le=65535)
    # Where the store lives; by default ``<data_dir>/console.db``.
    store_path: Path | None = None
    # Retention: whatever is older, or beyond the row and size bounds, is dropped first.
    retention_seconds: float = Field(default=6 * 3600, gt=0)
    max_spans: int = Field(default=200_000, ge=100)
    max_logs: int = Field(default=200_000, ge=100)
    max_store_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    # How often log files are read and instances' /metrics scraped.
    poll_seconds: float = Field(default=1.0, gt=0)
    scrape_seconds: float = Field(default=5.0, gt=0)

    def store_file(self) -> Path:
        """The SQLite file of the store."""
        return self.store_path or (self.data_dir / "console.db").resolve()
