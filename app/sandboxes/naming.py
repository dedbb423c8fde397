"""Predictable names and labels for every Docker object a LabDeck instance creates.

Names let an operator read ``docker ps``; labels let a restarted portal find its objects again
(``io.labdeck.instance`` scopes everything to one portal instance). The database stays the
source of truth for who owns a sandbox: ``io.labdeck.attendee`` is a hint for humans and is
empty for warm-pool sandboxes.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

LABEL_INSTANCE = "io.labdeck.instance"
LABEL_WORKSHOP = "io.labdeck.workshop"
LABEL_ATTENDEE = "io.labdeck.attendee"
LABEL_CREATED = "io.labdeck.created"
LABEL_ROLE = "io.labdeck.role"

# Container names become hostnames, which stop at 63 characters.
MAX_NAME_LENGTH = 63
# Linux caps interface names at 15 characters (IFNAMSIZ - 1).
MAX_BRIDGE_LENGTH = 15
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Role(enum.StrEnum):
    SANDBOX = "sandbox"
    REGISTRY = "registry"
    NETGUARD = "netguard"
    NETWORK = "network"


def check_name(name: str) -> str:
    """Return ``name`` when it is safe as a container, volume and host name; else ValueError."""
    if not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{name!r} is not a valid LabDeck name: use lowercase letters, digits, '_', '.' "
            f"and '-', start with a letter or digit, at most {MAX_NAME_LENGTH} characters."
        )
    return name


def new_sandbox_id() -> str:
    return secrets.token_hex(4)


def sandbox_name(instance: str, sandbox_id: str | None = None) -> str:
    """``<instance>-sbx-<id>``; a short random id when none is given."""
    return check_name(f"{instance}-sbx-{sandbox_id or new_sandbox_id()}")


def engine_volume_name(container: str) -> str:
    """The named volume holding a sandbox's inner engine data (``/var/lib/docker``)."""
    return check_name(f"{container}-docker")


def network_name(instance: str) -> str:
    return check_name(f"{instance}-sandboxes")


def bridge_name(instance: str) -> str:
    """A fixed host interface name for the instance's bridge, so firewall rules can name it."""
    digest = hashlib.sha256(instance.encode()).hexdigest()
    return f"ld-{digest[: MAX_BRIDGE_LENGTH - 3]}"


def registry_name(instance: str) -> str:
    return check_name(f"{instance}-registry")


def registry_volume_name(instance: str) -> str:
    return check_name(f"{instance}-registry-data")


def netguard_name(instance: str) -> str:
    return check_name(f"{instance}-netguard-{secrets.token_hex(3)}")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def labels_for(
    instance: str,
    role: Role,
    *,
    workshop: str = "",
    attendee: str = "",
    extra: Mapping[str, str] | None = None,
    created: str | None = None,
) -> dict[str, str]:
    """Labels for a new object; ``extra`` (e.g. ``io.labdeck.test=1``) never overrides ours."""
    labels = dict(extra or {})
    labels.update(
        {
            LABEL_INSTANCE: instance,
            LABEL_ROLE: str(role),
            LABEL_CREATED: created or now_iso(),
        }
    )
    if role is Role.SANDBOX:
        labels[LABEL_WORKSHOP] = workshop
        labels[LABEL_ATTENDEE] = attendee
    return labels


def label_filters(instance: str, role: Role) -> dict[str, list[str]]:
    """docker-py ``filters`` that select one instance's objects of one role."""
    return {"label": [f"{LABEL_INSTANCE}={instance}", f"{LABEL_ROLE}={role}"]}


def belongs_to(labels: Mapping[str, str] | None, instance: str, role: Role) -> bool:
    labels = labels or {}
    return labels.get(LABEL_INSTANCE) == instance and labels.get(LABEL_ROLE) == str(role)


def parse_created(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
