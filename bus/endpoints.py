"""Where each role of a run binds its PUB and REP sockets, described once per run.

Every node of a run reads the same description: by default ``ipc://`` sockets
in a run folder (fast, private to this host, no port clashes between parallel
runs); ``tcp://`` for nodes on other machines. The policy's endpoints are the
same whether the robot is a simulator or the real arm.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bus.errors import HilError
from bus.security import CLIENT_IDENTITY, Security, SecurityConfig, SecurityError

# "camera" publishes frames (docs/contracts.md): `hil node camera` for a real
# camera, or the sim node, which renders and binds its PUB besides the robot's.
ROLES = ("robot", "policy", "runner", "recorder", "camera")
ENDPOINTS_FILE = "endpoints.json"
SECURITY_KEY = "security"  # endpoints.json: {"security": {"keys": DIR, "insecure": false}, ROLE: {...}}
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_IPC_PATH_MAX = 107


class EndpointError(HilError, ValueError):
    """An endpoint description that cannot work, with what to do about it."""


@dataclass(frozen=True)
class RoleEndpoints:
    pub: str
    rep: str


@dataclass(frozen=True)
class Endpoints:
    roles: dict[str, RoleEndpoints]
    # Who may reach the tcp:// endpoints (bus/security.py); nodes of a run share it.
    security: SecurityConfig = field(default_factory=SecurityConfig)

    def __getitem__(self, role: str) -> RoleEndpoints:
        try:
            return self.roles[role]
        except KeyError:
            known = ", ".join(sorted(self.roles))
            raise EndpointError(f"no endpoints for role {role!r} (known: {known})") from None

    @classmethod
    def ipc(cls, run_dir: Path) -> Endpoints:
        run_dir = Path(run_dir).resolve()
        roles = {r: RoleEndpoints(f"ipc://{run_dir}/{r}.pub", f"ipc://{run_dir}/{r}.rep") for r in ROLES}
        endpoints = cls(roles)
        endpoints.check()
        return endpoints

    @classmethod
    def tcp(cls, host: str = "127.0.0.1", base_port: int = 5550) -> Endpoints:
        """Consecutive ports from ``base_port``: robot pub, robot rep, policy pub, ..."""
        roles = {}
        for i, role in enumerate(ROLES):
            roles[role] = RoleEndpoints(f"tcp://{host}:{base_port + 2 * i}", f"tcp://{host}:{base_port + 2 * i + 1}")
        return cls(roles)

    def check(self) -> None:
        for role, eps in self.roles.items():
            for endpoint in (eps.pub, eps.rep):
                if not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
                    raise EndpointError(f"{role}: {endpoint!r} is not an ipc://, tcp:// or inproc:// endpoint")
                if endpoint.startswith("ipc://") and len(endpoint[6:].encode()) > _IPC_PATH_MAX:
                    raise EndpointError(
                        f"{role}: ipc path {endpoint[6:]!r} is longer than {_IPC_PATH_MAX} bytes; "
                        "use a shorter --run-dir"
                    )

    def with_security(self, security: SecurityConfig) -> Endpoints:
        return replace(self, security=security)

    def security_for(self, identity: str = CLIENT_IDENTITY) -> Security:
        """The keys a process named ``identity`` (a role, or "client" for
        command-line tools) uses on this run's sockets; pass it as
        ``security=`` to Publisher, Subscriber, ServiceServer, ServiceClient."""
        return Security.for_roles(self.security, identity, {r: (e.pub, e.rep) for r, e in self.roles.items()})

    def to_json(self) -> str:
        data: dict[str, object] = {role: asdict(eps) for role, eps in self.roles.items()}
        if self.security.enabled:
            data[SECURITY_KEY] = self.security.to_dict()
        return json.dumps(data, indent=2)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        try:
            data = json.loads(Path(path).read_text())
            security = SecurityConfig.from_dict(data.pop(SECURITY_KEY, {}), Path(path).resolve().parent)
            roles = {role: RoleEndpoints(str(v["pub"]), str(v["rep"])) for role, v in data.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SecurityError) as exc:
            raise EndpointError(f"cannot read endpoints from {path}: {exc}") from None
        endpoints = cls(roles, security)
        endpoints.check()
        return endpoints

    @classmethod
    def for_run(cls, run_dir: Path) -> Endpoints:
        """The run folder's description, written with ipc defaults if absent."""
        path = Path(run_dir) / ENDPOINTS_FILE
        if path.exists():
            return cls.load(path)
        endpoints = cls.ipc(Path(run_dir))
        endpoints.save(path)
        return endpoints


def default_run_dir() -> Path:
    """``$HIL_RUN_DIR`` or a per-user folder under the temp dir."""
    env = os.environ.get("HIL_RUN_DIR")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"roarm-hil-{os.getuid()}" / "default"


def resolve(run_dir: Path | None = None, endpoints_file: Path | None = None) -> Endpoints:
    """The endpoints a CLI command should use: an explicit file wins over a run folder."""
    if endpoints_file is not None:
        return Endpoints.load(endpoints_file)
    return Endpoints.for_run(run_dir or default_run_dir())
