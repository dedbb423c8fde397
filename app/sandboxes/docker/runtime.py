"""How a sandbox container gets the rights its inner Docker engine needs: the runtime profile.

Profiles, safest first:
  sysbox      the sysbox-runc runtime: an unprivileged container that can run dockerd.
  userns      the rights of ``caps`` below, inside a user namespace of the sandbox's own: an
              engine started with ``--userns-remap`` (LabDeck's dedicated sandbox engine,
              ``sandbox_engine.py``) maps the sandbox's root to an unprivileged host uid, so the
              kernel refuses what those rights would reach outside the sandbox (issue 13).
  privileged  ``--privileged``; refused by some hosts ("unable to apply caps").
  caps        every capability but SYS_RESOURCE, no seccomp/AppArmor confinement, all devices,
              and /proc, /sys left unmasked and writable: what dockerd needs and little more.

``privileged`` and ``caps`` give an attendee root on the host (see ``UNSAFE_RISK``): only chosen
by name, never by ``auto``. ``LABDECK_SANDBOX_RUNTIME`` picks one, or ``auto`` probes sysbox then
userns with a short-lived container from the sandbox image and remembers the first that works in
``<data_dir>/runtime-profile.json``, keyed by engine ID and kernel.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast, get_args

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound

Profile = Literal["sysbox", "userns", "privileged", "caps"]
RuntimeSetting = Literal["auto", "sysbox", "userns", "privileged", "caps"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
AUTO_PROFILES: tuple[Profile, ...] = ("sysbox", "userns")
UNSAFE_PROFILES: tuple[Profile, ...] = ("privileged", "caps")
UNSAFE_RISK = (
    "Under this profile any attendee with sudo can become root on the host (and read the "
    "instructor token and every other sandbox): use it only on a disposable host."
)
SYSBOX_RUNTIME = "sysbox-runc"
PROFILE_FILE = "runtime-profile.json"
PROBE_LABEL = "io.labdeck.runtime-probe"
_PROBE_TIMEOUT_SECONDS = 60

# What labdeck-init and dockerd do first; a profile that cannot do these cannot run an engine.
PROBE_SCRIPT = """
set -e
mount -o remount,bind,rw /sys
for target in $(awk '$2 ~ "^/sys/fs/cgroup" {print $2}' /proc/mounts); do
    mount -o remount,bind,rw "$target"
done
echo 1 > /proc/sys/net/ipv4/ip_forward
iptables -t nat -L -n > /dev/null
unshare --mount --pid --fork true
echo labdeck-probe-ok
"""


# The kernel's key quota belongs to a host uid, and every `userns` sandbox's root is the same
# remapped uid: keys one sandbox makes count against all. The inner runc needs a session keyring
# per container (keyctl JOIN_SESSION_KEYRING, DESCRIBE, SETPERM); nothing in a sandbox needs to
# add keys or pin keyrings into others. So the `userns` profile's filter allows every system
# call but add_key, request_key and the other keyctl operations. What is left (a session, process
# and thread keyring per task) is bounded by the sandbox's process limit.
KEYCTL_ALLOWED = {"GET_KEYRING_ID": 0, "JOIN_SESSION_KEYRING": 1, "SETPERM": 5, "DESCRIBE": 6}
KEYCTL_FIRST_REFUSED_ABOVE = 7  # every operation from KEYCTL_CLEAR (7) up
_EPERM = 1
_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def key_quota_seccomp(machine: str | None = None) -> dict[str, Any]:
    """The `userns` profile's seccomp filter (Docker's JSON format): allow all, refuse key making."""
    refused = {"action": "SCMP_ACT_ERRNO", "errnoRet": _EPERM}
    # keyctl takes an int: compare the low 32 bits only, so high bits cannot dodge the rule.
    low_bits = 0xFFFFFFFF
    small_refused = sorted(set(range(KEYCTL_FIRST_REFUSED_ABOVE)) - set(KEYCTL_ALLOWED.values()))
    rules: list[dict[str, Any]] = [{"names": ["add_key", "request_key"], **refused}]
    rules += [
        {
            "names": ["keyctl"],
            **refused,
            "args": [{"index": 0, "value": low_bits, "valueTwo": op, "op": "SCMP_CMP_MASKED_EQ"}],
        }
        for op in small_refused
    ]
    rules.append(
        {
            "names": ["keyctl"],
            **refused,
            "args": [{"index": 0, "value": KEYCTL_FIRST_REFUSED_ABOVE, "op": "SCMP_CMP_GE"}],
        }
    )
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    architectures = _ARCHITECTURES.get(machine or platform.machine())
    if architectures:  # else the native one only
        profile["architectures"] = architectures
    return profile


KEY_QUOTA_SECCOMP = json.dumps(key_quota_seccomp(), separators=(",", ":"))


NO_REMAP = (
    "this engine does not remap user namespaces; run ./labdeck up as root to start LabDeck's "
    "dedicated sandbox engine, which does"
)


def _remaps_users(info: dict[str, Any]) -> bool:
    return any("name=userns" in option for option in info.get("SecurityOptions") or [])


ISOLATION = {
    "sysbox": "sysbox profile: each sandbox's root is an unprivileged user on the host",
    "userns": "userns profile: each sandbox's root is an unprivileged user on the host",
    "privileged": "privileged profile: sandboxes are NOT isolated from the host",
    "caps": "caps profile: sandboxes are NOT isolated from the host",
}


def risk_of(profile: Profile | None) -> str:
    """One plain sentence of risk for the unsafe profiles; empty for the others."""
    return UNSAFE_RISK if profile in UNSAFE_PROFILES else ""


class RuntimeUnavailable(RuntimeError):
    """No runtime profile can run the sandbox; the message lists what was tried."""


class RuntimeSettings(Protocol):
    """The part of ``app.config.Settings`` this module reads."""

    @property
    def sandbox_runtime(self) -> str: ...
    @property
    def sandbox_image(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...


@dataclass(frozen=True)
class ProbeResult:
    profile: Profile
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class RuntimeReport:
    """Which profile sandboxes use, why, and what was tried on the way."""

    setting: RuntimeSetting
    profile: Profile | None
    reason: str
    attempts: list[ProbeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.profile is not None

    def summary(self) -> str:
        tried = "; ".join(
            f"{a.profile} {'works' if a.ok else 'failed: ' + a.detail}" for a in self.attempts
        )
        head = f"profile {self.profile}" if self.profile else "no working profile"
        risk = risk_of(self.profile)
        return (
            f"{head} ({self.reason})"
            + (f". Tried: {tried}" if tried else "")
            + (f". {risk}" if risk else "")
        )


def apparmor_enabled(client: docker.DockerClient | None = None) -> bool:
    """Whether AppArmor confines containers: the engine says so, else the kernel module does."""
    if client is not None:
        options = client.info().get("SecurityOptions") or []
        return any("name=apparmor" in option for option in options)
    flag = Path("/sys/module/apparmor/parameters/enabled")
    return flag.is_file() and flag.read_text().strip().upper().startswith("Y")


def host_config_for(profile: Profile, *, apparmor: bool | None = None) -> dict[str, Any]:
    """Keyword arguments for docker-py's ``create_host_config``, plus raw HostConfig keys.

    Raw keys (docker-py has no argument for them) start with a capital letter; use
    ``create_host_config`` below, which applies both.
    """
    if profile == "sysbox":
        return {"runtime": SYSBOX_RUNTIME}
    if profile == "privileged":
        return {"privileged": True}
    if profile in ("caps", "userns"):
        # userns: the same rights, held by a root that the engine maps to an unprivileged uid.
        confined = apparmor_enabled() if apparmor is None else apparmor
        seccomp = KEY_QUOTA_SECCOMP if profile == "userns" else "unconfined"
        return {
            # SYS_RESOURCE is what this kind of host refuses to grant (see --privileged).
            "cap_add": ["ALL"],
            "cap_drop": ["SYS_RESOURCE"],
            "security_opt": [f"seccomp={seccomp}"] + (["apparmor=unconfined"] if confined else []),
            "device_cgroup_rules": ["a *:* rwm"],
            "MaskedPaths": [],
            "ReadonlyPaths": [],
        }
    raise ValueError(f"Unknown sandbox runtime profile {profile!r}: use {', '.join(PROFILES)}.")


_LIST_KWARGS = ("cap_add", "cap_drop", "security_opt", "device_cgroup_rules")


def create_host_config(
    api: docker.APIClient, profile: Profile, *, apparmor: bool | None = None, **kwargs: Any
) -> dict[str, Any]:
    """``api.create_host_config(**kwargs)`` with the profile applied (list options are joined)."""
    profile_config = host_config_for(profile, apparmor=apparmor)
    raw = {key: value for key, value in profile_config.items() if key[:1].isupper()}
    merged = {key: value for key, value in profile_config.items() if not key[:1].isupper()}
    for key, value in kwargs.items():
        merged[key] = [*merged.get(key, []), *value] if key in _LIST_KWARGS else value
    host_config: dict[str, Any] = api.create_host_config(**merged)
    host_config.update(raw)
    return host_config


def parse_setting(value: str | None) -> RuntimeSetting:
    setting = (value or os.environ.get("LABDECK_SANDBOX_RUNTIME") or "auto").strip().lower()
    if setting not in get_args(RuntimeSetting):
        raise ValueError(
            f"LABDECK_SANDBOX_RUNTIME={setting!r} is not a runtime profile: "
            "use auto, sysbox, userns, privileged or caps."
        )
    return cast(RuntimeSetting, setting)


def probe_profile(
    client: docker.DockerClient,
    image: str,
    profile: Profile,
    labels: dict[str, str] | None = None,
) -> ProbeResult:
    """Run dockerd's first steps in a short-lived container from ``image`` under ``profile``."""
    started = time.monotonic()
    info = client.info()
    if profile == "sysbox" and SYSBOX_RUNTIME not in (info.get("Runtimes") or {}):
        return ProbeResult(profile, False, "sysbox-runc is not installed in this engine")
    if profile == "userns" and not _remaps_users(info):
        return ProbeResult(profile, False, NO_REMAP)
    api = client.api
    host_config = create_host_config(api, profile, apparmor=apparmor_enabled(client))
    container = api.create_container(
        image,
        entrypoint=["/bin/sh", "-c", PROBE_SCRIPT],
        host_config=host_config,
        labels={PROBE_LABEL: "1", **(labels or {})},
    )
    try:
        api.start(container)
        exit_code = api.wait(container, timeout=_PROBE_TIMEOUT_SECONDS).get("StatusCode")
        output = api.logs(container).decode(errors="replace").strip()
    except (DockerException, requests.RequestException) as error:  # refused to start, or hung
        return ProbeResult(profile, False, _short_error(error), _since(started))
    finally:
        _remove_quietly(api, container)
    ok = exit_code == 0 and "labdeck-probe-ok" in output
    detail = "dockerd's first steps succeed" if ok else (output.splitlines() or ["no output"])[-1]
    return ProbeResult(profile, ok, detail, _since(started))


def _short_error(error: Exception) -> str:
    explanation = getattr(error, "explanation", None) or str(error)
    text = str(explanation)
    # "… runc create failed: unable to start container process: unable to apply caps: …"
    return text.rsplit("unable to start container process: ", 1)[-1].removesuffix(": unknown")


def _remove_quietly(api: docker.APIClient, container: dict[str, Any]) -> None:
    try:
        api.remove_container(container["Id"], v=True, force=True)
    except APIError as error:
        if error.status_code not in (404, 409):
            raise


def engine_key(client: docker.DockerClient) -> dict[str, str]:
    """Which engine a remembered profile is for. Two dockerds on one host share their ID (both
    read /etc/docker/key.json): the data root tells the dedicated engine from the host's."""
    info = client.info()
    return {
        "engine_id": str(info.get("ID", "")),
        "kernel": str(info.get("KernelVersion", "")),
        "data_root": str(info.get("DockerRootDir", "")),
    }


def _load_remembered(path: Path, key: dict[str, str]) -> RuntimeReport | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("engine") != key or saved.get("profile") not in AUTO_PROFILES:
        return None
    attempts = [ProbeResult(**attempt) for attempt in saved.get("attempts", [])]
    reason = f"auto: remembered in {path} from {saved.get('detected_at', 'an earlier probe')}"
    return RuntimeReport("auto", saved["profile"], reason, attempts)


def _remember(path: Path, key: dict[str, str], report: RuntimeReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {
        "engine": key,
        "profile": report.profile,
        "detected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "attempts": [asdict(attempt) for attempt in report.attempts],
    }
    path.write_text(json.dumps(saved, indent=2) + "\n")


def resolve_runtime(
    client: docker.DockerClient,
    image: str,
    data_dir: Path,
    setting: str | None = None,
    labels: dict[str, str] | None = None,
    reprobe: bool = False,
) -> RuntimeReport:
    """The profile to use and why; ``auto`` probes once per engine and kernel."""
    chosen = parse_setting(setting)
    if chosen == "userns" and not _remaps_users(client.info()):
        # Without the remapping, userns would be caps: refuse rather than run unsafe.
        return RuntimeReport(chosen, None, f"set by LABDECK_SANDBOX_RUNTIME, but {NO_REMAP}")
    if chosen != "auto":
        return RuntimeReport(chosen, chosen, "set by LABDECK_SANDBOX_RUNTIME")
    path = Path(data_dir) / PROFILE_FILE
    key = engine_key(client)
    remembered = None if reprobe else _load_remembered(path, key)
    if remembered:
        return remembered
    _require_image(client, image)
    report = RuntimeReport("auto", None, "auto: probed sysbox, then userns")
    for profile in AUTO_PROFILES:
        result = probe_profile(client, image, profile, labels)
        report.attempts.append(result)
        if result.ok:
            report.profile = profile
            _remember(path, key, report)
            break
    return report


def _require_image(client: docker.DockerClient, image: str) -> None:
    try:
        client.api.inspect_image(image)
    except ImageNotFound as error:
        raise RuntimeUnavailable(
            f"The sandbox image {image} is missing, so no runtime profile can be probed. "
            "Build it with `labdeck images build`."
        ) from error


def detect_runtime(
    client: docker.DockerClient,
    image: str,
    data_dir: Path,
    setting: str | None = None,
    labels: dict[str, str] | None = None,
) -> Profile:
    """The profile sandboxes run with; raises RuntimeUnavailable when none works."""
    report = resolve_runtime(client, image, data_dir, setting, labels)
    if report.profile is None:
        raise RuntimeUnavailable(
            "No sandbox runtime profile can run an inner Docker engine on this host: "
            + report.summary()
            + ". Run ./labdeck up as root (it starts a dedicated engine with user namespaces), "
            "install sysbox, or, on a disposable host only, set LABDECK_SANDBOX_RUNTIME=caps."
        )
    return report.profile


def describe_runtime(client: docker.DockerClient, settings: RuntimeSettings) -> tuple[bool, str]:
    """For `labdeck doctor`: whether sandboxes can run, which profile, why, what failed.

    An explicitly chosen profile is probed, so a wrong choice shows up here rather than at
    the first attendee's sandbox.
    """
    try:
        report = resolve_runtime(
            client, settings.sandbox_image, settings.data_dir, settings.sandbox_runtime
        )
        if report.setting != "auto" and report.profile is not None:
            _require_image(client, settings.sandbox_image)
            result = probe_profile(client, settings.sandbox_image, report.profile)
            report.attempts.append(result)
            if not result.ok:
                report.profile = None
    except (RuntimeUnavailable, ValueError) as error:
        return False, str(error)
    return report.ok, report.summary()


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)
