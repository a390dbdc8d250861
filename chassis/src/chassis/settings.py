"""Typed settings every Souk process starts from; each service subclasses with its own prefix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What the chassis needs to run a process.

    A service subclasses this with ``env_prefix="<SERVICE>_"``; `souk up` sets
    ``<SERVICE>_INSTANCE``, ``_PORT``, ``_DATA_DIR`` and ``_UPSTREAMS`` for each instance.
    """

    model_config = SettingsConfigDict(env_prefix="SOUK_", extra="ignore", frozen=True)

    service: str = "service"
    instance: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path(".souk")
    database_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    upstreams: dict[str, list[str]] = Field(default_factory=dict)
    shutdown_timeout: float = Field(default=10.0, gt=0)
    otlp_endpoint: str | None = None

    @field_validator("upstreams")
    @classmethod
    def _upstreams_are_http_urls(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, urls in value.items():
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise ValueError(f"upstream {name!r}: {url!r} is not an http(s) URL")
        return value

    @property
    def instance_id(self) -> str:
        """The instance name given by the orchestrator, or one made from the pid."""
        return self.instance or f"{self.service}-{os.getpid()}"

    def database_url_or_default(self) -> str:
        """The configured database URL, else a SQLite file of this service's own."""
        if self.database_url:
            return self.database_url
        path = (self.data_dir / f"{self.service}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"
