"""LabDeck's settings: one object, read from the environment (prefix ``LABDECK_``) and ``.env``.

Every field carries help text; the README's settings table is checked against it by a test.
"""

from __future__ import annotations

import re
import secrets
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Secrets that appear in docs and examples; production refuses them.
_WELL_KNOWN_SECRETS = {"", "changeme", "change-me", "secret", "instructor", "labdeck"}


def parse_duration(value: object) -> float:
    """Accept seconds as a number or a string such as ``90``, ``30m``, ``8h`` or ``1d``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration: use seconds or a number with s, m, h or d")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit]


Duration = Annotated[float, BeforeValidator(parse_duration)]
RuntimeProfile = Literal["auto", "sysbox", "userns", "privileged", "caps"]


class Settings(BaseSettings):
    """Everything an operator can tune. See the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="LABDECK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses missing or well-known secrets; `development` generates them.",
    )
    data_dir: Path = Field(
        Path("./data"),
        description="Where the SQLite file, logs, generated secrets and engine log of this instance live.",
    )
    content_dir: Path = Field(
        Path("./content"), description="Folder holding the workshops, one sub-folder each."
    )
    workshop: str | None = Field(
        None,
        description="Which workshop under the content folder this instance serves (default: the only one).",
    )
    content_reload: bool | None = Field(
        None,
        description="Load the workshop again when its files change (checked once a second), so "
        "authors see an edit without restarting; content that does not load keeps the last good "
        "version served and shows its problems, with file and line, on the pages. Unset: on, "
        "except with `LABDECK_ENV=production`.",
    )
    instructor_token: SecretStr | None = Field(
        None,
        description="The instructor's secret. Generated, stored in the data dir and printed when unset.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs session cookies. Generated and stored in the data dir when unset.",
    )
    instance: str = Field(
        "labdeck",
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
        description="Name of this instance; labels and names every container it creates.",
    )
    host: str = Field("127.0.0.1", description="Address the portal listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the portal listens on.")
    public_url: str | None = Field(
        None,
        description="The URL attendees use (for resume links and Origin checks); derived from host and port when unset.",
    )
    trusted_proxies: str = Field(
        "",
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are "
        "believed (comma-separated addresses or networks, e.g. `127.0.0.1` when one runs on "
        "this machine). Unset: none are, and each client's own address is what rate limits count.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the portal."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text` for people; `json` writes one JSON object per log line, each with the "
        "request id that the `X-Request-ID` response header also carries.",
    )
    backup_interval: Duration = Field(
        3600,
        ge=0,
        description="How often a serving portal backs the database up into the data dir's "
        "`backups` folder (seconds, or 30m, 8h ...); 0 turns automatic backups off.",
    )
    backup_keep: int = Field(
        24, ge=1, le=10_000, description="How many automatic backups are kept (the newest ones)."
    )
    sandbox_backend: Literal["docker", "fake"] = Field(
        "docker",
        description="Which backend makes sandboxes: `docker` (a Docker engine) or `fake` "
        "(in-process stand-ins with no engine, for demos and tests of the pages).",
    )
    sandbox_runtime: RuntimeProfile = Field(
        "auto",
        description="How sandboxes get the rights an inner Docker engine needs: `auto` tries sysbox, "
        "then userns; `privileged` and `caps` give attendees root on the host and are used only by name.",
    )
    sandbox_host_disposable: bool = Field(
        False,
        description="Say the host is disposable, so that `LABDECK_ENV=production` accepts the "
        "`privileged` and `caps` runtime profiles (an attendee can become root on the host).",
    )
    sandbox_engine: Literal["auto", "dedicated", "host"] = Field(
        "auto",
        description="Which engine runs sandboxes: `dedicated` (LabDeck's own dockerd with user "
        "namespaces, started by `./labdeck up` as root), `host` (DOCKER_HOST or the default socket), "
        "or `auto`: the dedicated one whenever its socket exists. Read from the environment.",
    )
    sandbox_engine_socket: Path = Field(
        Path("/run/labdeck/engine.sock"),
        description="Socket of the dedicated sandbox engine. Read from the environment.",
    )
    sandbox_engine_root: Path = Field(
        Path("/var/lib/labdeck/engine"),
        description="Data root of the dedicated sandbox engine (its images, kept between runs). "
        "Read from the environment.",
    )
    sandbox_image: str = Field(
        "labdeck/sandbox:latest",
        description="Image every sandbox runs (built by `labdeck images build`).",
    )
    sandbox_memory: str = Field(
        "1g", description="Memory limit per sandbox (Docker notation, e.g. 1g)."
    )
    sandbox_cpus: float = Field(1.0, gt=0, description="CPU limit per sandbox, in cores.")
    sandbox_pids: int = Field(
        1024, ge=64, description="Process limit per sandbox (contains fork bombs)."
    )
    sandbox_log_size: str = Field("10m", description="Largest container log kept per sandbox.")
    sandbox_disk_quota: str | None = Field(
        "10g",
        description="Disk cap per sandbox (its home, its writes and its inner engine's images "
        "together) on LabDeck's dedicated engine, which keeps its data on a btrfs image with "
        "simple quotas for it; also applied on overlay2 over xfs with pquota. Empty: no cap. "
        "Read from the environment when the dedicated engine starts.",
    )
    sandbox_subnet: IPv4Network | None = Field(
        None,
        description="Subnet of the sandbox network, e.g. `10.216.0.0/24`; unset: the engine "
        "picks a free one. compose.yaml sets it: its engine has no address pool of its own.",
    )
    sandbox_egress: Literal["allow", "none"] = Field(
        "allow",
        description="`none` cuts sandboxes off from every network but the workshop registry.",
    )
    sandbox_idle_stop: Duration = Field(
        1800, description="Stop a sandbox after this much inactivity (seconds, or 30m, 8h ...)."
    )
    sandbox_max_age: Duration = Field(
        8 * 3600, description="Remove a sandbox this long after it was created."
    )
    warm_pool_size: int = Field(
        2, ge=0, le=200, description="Ready, unassigned sandboxes kept per workshop."
    )
    spawn_workers: int = Field(
        4, ge=1, le=64, description="Sandboxes created at the same time at most."
    )
    db_workers: int = Field(
        8,
        ge=1,
        le=64,
        description="Threads that do the portal's database work; async routes never wait "
        "on SQLite themselves.",
    )
    db_busy_timeout: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Seconds a request waits for the database when another writer holds it; "
        "past that it answers 503 (try again), never an error page.",
    )
    check_workers: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "Tasks checked at the same time, portal-wide; later clicks wait their turn. "
            "0 means twice the CPU cores: more only adds switching between processes."
        ),
    )
    registry_port: int = Field(
        5055,
        ge=1,
        le=65535,
        description="Host port of the workshop registry (bound to loopback and the sandbox network's gateway only).",
    )
    registry_address: IPv4Address | None = Field(
        None,
        description="The host address where a workshop registry run beside the portal "
        "(compose.yaml's `registry` service) serves sandboxes, read-only, on the registry port; "
        "unset: the portal runs the registry itself, on the sandbox network's gateway.",
    )
    registry_seed_port: int = Field(
        5056,
        ge=1,
        le=65535,
        description="With `LABDECK_REGISTRY_ADDRESS`: the loopback port of that registry's "
        "writable twin, through which the portal seeds it with the workshop's images.",
    )
    registry_proxy_remoteurl: str | None = Field(
        None,
        description="Run the workshop registry as a pull-through cache of this upstream (e.g. https://registry-1.docker.io).",
    )
    images_mode: Literal["auto", "offline", "online"] = Field(
        "auto",
        description="Build images from official bases (`online`) or a debootstrap base (`offline`).",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_runtime_in_production(self) -> Settings:
        unsafe = self.sandbox_runtime in ("privileged", "caps")
        if self.env == "production" and unsafe and not self.sandbox_host_disposable:
            raise ValueError(
                f"LABDECK_SANDBOX_RUNTIME={self.sandbox_runtime} lets any attendee become root "
                "on the host; production refuses it unless LABDECK_SANDBOX_HOST_DISPOSABLE=true"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> Settings:
        if self.env != "production":
            return self
        for name in ("instructor_token", "secret_key"):
            value = getattr(self, name)
            if value is None or value.get_secret_value().strip().lower() in _WELL_KNOWN_SECRETS:
                raise ValueError(
                    f"LABDECK_{name.upper()} must be set to a strong secret in production"
                )
            if len(value.get_secret_value()) < 16:
                raise ValueError(
                    f"LABDECK_{name.upper()} must be at least 16 characters in production"
                )
        return self

    @property
    def reloads_content(self) -> bool:
        """``content_reload``, or its default: on outside production."""
        if self.content_reload is not None:
            return self.content_reload
        return self.env != "production"

    @cached_property
    def database_path(self) -> Path:
        return self.data_dir / "labdeck.db"

    def instructor_secret(self) -> str:
        """The instructor token: from the environment, else generated once and kept in the data dir."""
        return self._stored_secret("instructor_token", "instructor-token")

    def cookie_secret(self) -> str:
        return self._stored_secret("secret_key", "secret-key")

    def _stored_secret(self, field: str, filename: str) -> str:
        value: SecretStr | None = getattr(self, field)
        if value is not None:
            return value.get_secret_value()
        path = self.data_dir / filename
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        generated = secrets.token_urlsafe(24)
        path.write_text(generated + "\n")
        path.chmod(0o600)
        return generated


def get_settings() -> Settings:
    return Settings()
