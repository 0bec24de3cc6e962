"""Who may talk to a node: ZMQ CURVE on every tcp:// socket once keys exist.

A node that can move a real arm must not take commands from anyone on the
network, so the rule is simple and enforced where sockets are made
(``bus.sockets.make_socket``):

- ipc:// and tcp:// on a loopback address need nothing (only this host can
  reach them);
- binding tcp:// on any other address needs keys (``hil keys generate DIR``),
  or an explicit ``--insecure`` that prints a warning;
- with keys, every tcp:// socket speaks CURVE: binding sockets prove who they
  are with their role's secret key and accept only clients whose public key
  is in ``DIR/public``; connecting sockets check the server's public key, so
  a stranger that binds a role's address cannot feed us either.

Key folder layout (made by ``hil keys generate DIR``)::

    DIR/public/<name>.key            every machine gets the whole folder
    DIR/private/<name>.key_secret    only the machine that runs <name>

A node uses the key pair named after its role (robot, policy, runner,
recorder); command-line clients (``hil bus ping``) use ``client``.

Only pyzmq is imported here (``zmq.auth`` lazily), so the bus stays loadable
inside Isaac Sim's Python.
"""

from __future__ import annotations

import ipaddress
import queue
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from bus.errors import Failed
from bus.key_privacy import add_ignore_rule, exposed_secret_warning, work_tree_of

PUBLIC_DIR = "public"
PRIVATE_DIR = "private"
CLIENT_IDENTITY = "client"
# Refusals are reported once per peer address; past this many distinct
# addresses a flood of strangers is only counted (memory stays bounded).
MAX_REPORTED_PEERS = 1024
_LOOPBACK_NAMES = {"localhost", "lo"}


class SecurityError(Failed, ValueError):
    """A socket that would be reachable by strangers, or keys that cannot be used."""


@dataclass(frozen=True)
class SecurityConfig:
    """What an endpoints description says about security (``"security"`` in
    endpoints.json, or ``--keys`` / ``--insecure`` on the command line)."""

    keys: Path | None = None
    insecure: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"keys": str(self.keys) if self.keys else None, "insecure": self.insecure}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Path | None = None) -> SecurityConfig:
        """Relative key folders are taken relative to the endpoints file."""
        if not isinstance(data, Mapping):
            raise SecurityError(f"'security' must be an object like {{\"keys\": \"DIR\"}}, got {data!r}")
        keys = data.get("keys")
        path = None
        if keys:
            path = Path(str(keys)).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
        return cls(keys=path, insecure=bool(data.get("insecure", False)))

    @property
    def enabled(self) -> bool:
        return self.keys is not None or self.insecure


def endpoint_host(endpoint: str) -> str | None:
    """The host part of a tcp:// endpoint (None for other transports)."""
    if not endpoint.startswith("tcp://"):
        return None
    address = endpoint[6:].split(";")[-1]
    host = address.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address or name.

    ``*``, ``0.0.0.0``, interface names and host names count as reachable
    from the network.
    """
    host = endpoint_host(endpoint)
    if host is None:
        return endpoint.startswith(("ipc://", "inproc://"))
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_bind_message(endpoint: str) -> str:
    return (
        f"refusing to bind {endpoint}: it is reachable from the network and no CURVE keys are configured, "
        "so anyone could command the arm. Make keys with `hil keys generate KEYS_DIR`, then give every node "
        "`--keys KEYS_DIR` (or \"security\": {\"keys\": \"KEYS_DIR\"} in the endpoints file). "
        "To bind without authentication anyway (trusted, isolated network only) pass --insecure."
    )


def keys_hint(keys: Path, name: str) -> str:
    return f"run `hil keys generate {keys} --name {name}` or copy {name}'s key files there"


@dataclass(frozen=True)
class KeyPair:
    public: bytes
    secret: bytes


def load_key_pair(keys: Path, name: str) -> KeyPair:
    """``name``'s key pair from ``keys/private/name.key_secret``."""
    from zmq.auth import load_certificate

    path = keys / PRIVATE_DIR / f"{name}.key_secret"
    try:
        public, secret = load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"no usable secret key for {name!r} at {path} ({exc}); {keys_hint(keys, name)}") from None
    if secret is None:
        raise SecurityError(f"{path} holds no secret key; {keys_hint(keys, name)}")
    warning = exposed_secret_warning(path)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    return KeyPair(public, secret)


def load_public_key(keys: Path, name: str) -> bytes:
    from zmq.auth import load_certificate

    path = keys / PUBLIC_DIR / f"{name}.key"
    try:
        public, _ = load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"no public key for {name!r} at {path} ({exc}); {keys_hint(keys, name)}") from None
    return public


def allowed_keys(keys: Path) -> frozenset[bytes]:
    """Every public key in ``keys/public`` (z85): the peers a node accepts."""
    from zmq.auth import load_certificates

    folder = keys / PUBLIC_DIR
    if not folder.is_dir():
        raise SecurityError(f"no public key folder {folder}; run `hil keys generate {keys}`")
    try:
        return frozenset(load_certificates(folder))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"cannot read public keys in {folder}: {exc}") from None


def generate_keys(keys: Path, names: Iterable[str], *, force: bool = False, in_work_tree: bool = False) -> list[Path]:
    """Make a CURVE key pair per name; refuses to overwrite keys unless ``force``
    (replacing a key locks out every machine that still has the old one).

    Inside a git work tree it refuses unless ``in_work_tree``, and then writes
    ``keys/.gitignore`` ignoring ``private/``. Secret files are 0600 in a 0700
    folder (the folder is locked down before any secret is written).
    """
    from zmq.auth import create_certificates

    tree = work_tree_of(keys)
    if tree is not None and not in_work_tree:
        raise SecurityError(
            f"refusing to write secret keys into {keys}: it is inside the git work tree {tree}, where one "
            f"`git add -A` would publish them. Put them outside any repository (e.g. `hil keys generate "
            f"~/roarm-keys`), or pass --force to write them here with an ignore rule ({keys / '.gitignore'}: "
            f"private/)"
        )
    names = list(dict.fromkeys(names))
    for name in names:
        if not name or "/" in name or name.startswith("."):
            raise SecurityError(f"bad key name {name!r}: use a plain word such as a role or node name")
    public_dir, private_dir = keys / PUBLIC_DIR, keys / PRIVATE_DIR
    for name in names:
        existing = [p for p in (public_dir / f"{name}.key", private_dir / f"{name}.key_secret") if p.exists()]
        if existing and not force:
            raise SecurityError(f"{existing[0]} exists; pass --force to replace it (old keys stop working)")
    public_dir.mkdir(parents=True, exist_ok=True)
    private_dir.mkdir(parents=True, exist_ok=True)
    private_dir.chmod(0o700)
    if tree is not None:
        add_ignore_rule(keys)
    made = []
    for name in names:
        public, secret = (Path(p) for p in create_certificates(private_dir, name))
        public.replace(public_dir / public.name)
        secret.chmod(0o600)
        made += [public_dir / public.name, secret]
    return made


@dataclass(frozen=True)
class Refusal:
    address: str
    key: str


class Gate:
    """The ZAP handler of one context: lets in CURVE clients whose key is
    allowed and remembers who was turned away.

    It runs in pyzmq's authenticator thread; the node's own loop collects new
    refusals with ``take_refusals()`` (sockets are not thread-safe, so events
    are published from the node's thread, not from here).
    """

    def __init__(self, ctx: zmq.Context, allowed: frozenset[bytes]) -> None:
        # Imported here: zmq.auth.thread pulls in asyncio, which `hil --help` need not pay for.
        from zmq.auth.thread import ThreadAuthenticator

        gate = self

        class _Authenticator(ThreadAuthenticator):
            """pyzmq's ZAP thread, with our handler (it needs the peer address)."""

            async def handle_zap_message(self, msg: list[bytes]) -> None:
                gate._handle(self, msg)

        self.allowed = allowed
        self.refused = 0
        self._seen: set[str] = set()
        self._new: queue.SimpleQueue[Refusal] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._auth = _Authenticator(ctx)
        self._auth.start()

    def _handle(self, auth: Any, msg: list[bytes]) -> None:
        """Answer one ZAP request (RFC 27): 200 for an allowed CURVE key, 400 otherwise."""
        from zmq.utils import z85

        if len(msg) < 6:
            if len(msg) >= 2:
                self._reply(auth, msg[1], b"400", b"malformed ZAP request")
            return
        request_id, address, mechanism, credentials = msg[1], msg[3], msg[5], msg[6:]
        key = b"(no CURVE key)"
        if mechanism == b"CURVE" and len(credentials) == 1:
            key = z85.encode(credentials[0])
            if key in self.allowed:
                self._reply(auth, request_id, b"200", b"OK", key)
                return
        self._reply(auth, request_id, b"400", b"key not allowed")
        peer = address.decode(errors="replace") or "?"
        with self._lock:
            self.refused += 1
            if peer not in self._seen and len(self._seen) < MAX_REPORTED_PEERS:
                self._seen.add(peer)
                self._new.put(Refusal(peer, key.decode(errors="replace")))

    @staticmethod
    def _reply(auth: Any, request_id: bytes, status: bytes, text: bytes, user: bytes = b"") -> None:
        """A ZAP reply: version, request id, status code and text, user id, metadata."""
        auth.zap_socket.send_multipart([b"1.0", request_id, status, text, user, b""])

    def take_refusals(self) -> list[Refusal]:
        """Peers refused for the first time since the last call."""
        out = []
        while True:
            try:
                out.append(self._new.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._auth.stop()


class Security:
    """The keys one process uses: its own pair, the clients it accepts and the
    server key of each endpoint it may connect to.

    Without keys (``config.keys`` None) it only carries the ``insecure`` choice,
    which ``check_bind`` consults.
    """

    def __init__(
        self,
        config: SecurityConfig,
        identity: str = CLIENT_IDENTITY,
        server_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.pair: KeyPair | None = None
        self.allowed: frozenset[bytes] = frozenset()
        self.server_keys = dict(server_keys or {})
        self._gates: dict[int, Gate] = {}
        self._warned: set[str] = set()
        if config.keys is not None:
            self.pair = load_key_pair(config.keys, identity)
            self.allowed = allowed_keys(config.keys)

    @classmethod
    def for_roles(cls, config: SecurityConfig, identity: str, role_endpoints: Mapping[str, Iterable[str]]) -> Security:
        """Security for a process named ``identity`` talking to the given roles'
        endpoints; each tcp endpoint is checked against its role's public key.

        A role whose public key is missing only fails when something connects
        to it (``prepare`` says which key to make)."""
        server_keys: dict[str, bytes] = {}
        if config.keys is not None:
            for role, addresses in role_endpoints.items():
                tcp = [a for a in addresses if a.startswith("tcp://")]
                if tcp and (config.keys / PUBLIC_DIR / f"{role}.key").exists():
                    key = load_public_key(config.keys, role)
                    server_keys.update({a: key for a in tcp})
        return cls(config, identity, server_keys)

    @property
    def curve(self) -> bool:
        return self.pair is not None

    @property
    def gates(self) -> list[Gate]:
        return list(self._gates.values())

    def check_bind(self, endpoint: str) -> None:
        """Refuse (or, with ``insecure``, warn about) a bind strangers could reach."""
        if is_loopback(endpoint) or self.curve:
            return
        if not self.config.insecure:
            raise SecurityError(insecure_bind_message(endpoint))
        if endpoint not in self._warned:
            self._warned.add(endpoint)
            print(
                f"WARNING: --insecure: {endpoint} accepts commands from anyone who can reach it "
                "(no CURVE authentication)",
                file=sys.stderr,
                flush=True,
            )

    def prepare(self, ctx: zmq.Context, sock: zmq.Socket, endpoint: str, *, bind: bool) -> None:
        """Set CURVE options on ``sock`` for this endpoint, before bind/connect.

        A binding socket first gets a running ZAP gate on its context: a CURVE
        server without one would let in anyone who knows its public key.
        """
        if bind:
            self.check_bind(endpoint)
        if not (self.curve and endpoint.startswith("tcp://")):
            return
        assert self.pair is not None
        sock.curve_secretkey = self.pair.secret
        sock.curve_publickey = self.pair.public
        if bind:
            self.gate(ctx)
            sock.curve_server = True
        else:
            server_key = self.server_keys.get(endpoint)
            if server_key is None:
                assert self.config.keys is not None
                raise SecurityError(
                    f"no server key for {endpoint}: it belongs to no role of the endpoints description, "
                    f"or that role has no public key in {self.config.keys / PUBLIC_DIR}"
                )
            sock.curve_serverkey = server_key

    def gate(self, ctx: zmq.Context) -> Gate:
        """The ZAP gate of ``ctx`` (one per context, started on first use)."""
        gate = self._gates.get(id(ctx))
        if gate is None:
            gate = self._gates[id(ctx)] = Gate(ctx, self.allowed)
        return gate

    def take_refusals(self) -> list[Refusal]:
        return [r for gate in self._gates.values() for r in gate.take_refusals()]

    @property
    def refused(self) -> int:
        return sum(gate.refused for gate in self._gates.values())

    def close(self) -> None:
        for gate in self._gates.values():
            gate.close()
        self._gates.clear()


def no_security() -> Security:
    """The default of a socket made without a Security: loopback only."""
    return Security(SecurityConfig())
