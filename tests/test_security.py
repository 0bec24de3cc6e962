"""Networked nodes let no one in: CURVE keys, the loopback-only default, and a
stranger with its own keys that gets nothing through to a real node process.

The stranger talks to this machine's own non-loopback address (eth0's, when
there is one), so the node really listens where the network could reach it;
no traffic leaves the host.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner

from bus.endpoints import ROLES, Endpoints
from bus.envelope import Encoder
from bus.node import Node
from bus.pubsub import Publisher, Subscriber
from bus.security import (
    CLIENT_IDENTITY,
    SecurityConfig,
    SecurityError,
    generate_keys,
    is_loopback,
    load_public_key,
)
from bus.client import NodeClient
from bus.service import ServiceUnavailable
from bus.topics import EVENT, HEARTBEAT, JOINT_COMMAND, JOINT_STATE
from roarm.joints import pose
from schemas import messages_pb2, services_pb2
from tests.conftest import HIL, Procs, wait_until
from tools.cli import main as hil_main


def local_network_address() -> str | None:
    """An address of this host that is not loopback (None when there is none)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks a route
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


NET_ADDRESS = local_network_address()


def free_base_port(host: str, count: int = 2 * len(ROLES)) -> int:
    """A base port with ``count`` consecutive free ports on ``host``."""
    for base in range(47000, 60000, 37):
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    generate_keys(folder, [*ROLES, CLIENT_IDENTITY])
    return folder


def stranger_socket(ctx: zmq.Context, kind: int, server_key: bytes | None = None) -> zmq.Socket:
    """A socket with its own fresh key pair: knows the public server key (it is
    public), but its own key is in no allowed list."""
    public, secret = zmq.curve_keypair()
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.curve_publickey, sock.curve_secretkey = public, secret
    if server_key is None:
        sock.curve_server = True
    else:
        sock.curve_serverkey = server_key
    return sock


def test_loopback_rules() -> None:
    assert is_loopback("ipc:///tmp/x/robot.pub")
    assert is_loopback("tcp://127.0.0.1:5550")
    assert is_loopback("tcp://localhost:5550")
    assert is_loopback("tcp://[::1]:5550")
    assert not is_loopback("tcp://*:5550")
    assert not is_loopback("tcp://0.0.0.0:5550")
    assert not is_loopback("tcp://192.0.2.2:5550")
    assert not is_loopback("tcp://eth0:5550")
    assert not is_loopback("tcp://robot.local:5550")


def test_endpoints_file_carries_security(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    Endpoints.tcp("10.1.2.3", 5550).with_security(SecurityConfig(keys=tmp_path / "k")).save(path)
    assert json.loads(path.read_text())["security"]["keys"] == str(tmp_path / "k")
    loaded = Endpoints.load(path)
    assert loaded.security.keys == tmp_path / "k"
    assert loaded["robot"].pub == "tcp://10.1.2.3:5550"
    # relative key folders are relative to the endpoints file
    data = json.loads(path.read_text())
    data["security"]["keys"] = "k"
    path.write_text(json.dumps(data))
    assert Endpoints.load(path).security.keys == tmp_path / "k"
    # a description without the field is loopback-only as before
    Endpoints.tcp().save(path)
    assert "security" not in json.loads(path.read_text())
    assert Endpoints.load(path).security == SecurityConfig()


def test_keys_generate_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(hil_main, ["keys", "generate", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    for name in [*ROLES, CLIENT_IDENTITY]:
        assert (tmp_path / "k" / "public" / f"{name}.key").is_file()
        secret = tmp_path / "k" / "private" / f"{name}.key_secret"
        assert secret.stat().st_mode & 0o077 == 0
        assert "secret-key" in secret.read_text()
        assert "secret-key" not in (tmp_path / "k" / "public" / f"{name}.key").read_text()
    assert "copy" in result.output and "--keys" in result.output
    before = (tmp_path / "k" / "public" / "robot.key").read_text()
    again = runner.invoke(hil_main, ["keys", "generate", str(tmp_path / "k")])
    assert again.exit_code != 0 and "--force" in again.output
    assert (tmp_path / "k" / "public" / "robot.key").read_text() == before
    extra = runner.invoke(hil_main, ["keys", "generate", str(tmp_path / "k"), "--name", "bench-pc"])
    assert extra.exit_code == 0 and (tmp_path / "k" / "private" / "bench-pc.key_secret").is_file()


def test_network_bind_without_keys_is_refused_and_insecure_warns(
    zctx: zmq.Context, capsys: pytest.CaptureFixture[str]
) -> None:
    host = NET_ADDRESS or "0.0.0.0"
    endpoints = Endpoints.tcp(host, free_base_port(host))
    with pytest.raises(SecurityError, match="hil keys generate"):
        Node("robot", "r", endpoints, ctx=zctx)
    with pytest.raises(SecurityError, match="--insecure"):
        Publisher(zctx, endpoints["runner"].pub, "replay")
    # loopback tcp needs no keys
    Node("robot", "r", Endpoints.tcp("127.0.0.1", free_base_port("127.0.0.1")), ctx=zctx).close()
    node = Node("robot", "r", endpoints.with_security(SecurityConfig(insecure=True)), ctx=zctx)
    node.close()
    assert "WARNING: --insecure" in capsys.readouterr().err


def test_missing_secret_key_says_how_to_make_it(tmp_path: Path, zctx: zmq.Context) -> None:
    generate_keys(tmp_path / "k", ["policy"])
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port("127.0.0.1")).with_security(
        SecurityConfig(keys=tmp_path / "k"))
    with pytest.raises(SecurityError, match=r"hil keys generate .* --name robot"):
        Node("robot", "r", endpoints, ctx=zctx)


def test_node_cli_refuses_network_bind_without_keys_and_insecure_warns(procs: Procs, run_dir: Path,
                                                                       zctx: zmq.Context) -> None:
    host = NET_ADDRESS or "0.0.0.0"
    endpoints = Endpoints.tcp(host, free_base_port(host))
    endpoints.save(run_dir / "endpoints.json")
    refused = procs.hil("node", "sim", "--backend", "mock", "--endpoints", str(run_dir / "endpoints.json"))
    _, err = refused.communicate(timeout=60)
    assert refused.returncode != 0
    assert b"refusing to bind" in err and b"hil keys generate" in err and b"--insecure" in err
    assert b"Traceback" not in err
    # the explicit override binds, with a warning
    node = procs.hil("node", "sim", "--backend", "mock", "--endpoints", str(run_dir / "endpoints.json"), "--insecure")
    client = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=2.0, retries=2)
    procs.wait_ready(node, client.answers_ping, 60.0)
    client.shutdown("test done")
    _, err = node.communicate(timeout=30)
    assert node.returncode == 0
    assert b"WARNING: --insecure" in err
    client.close()


def test_keys_from_the_endpoints_file(procs: Procs, run_dir: Path, zctx: zmq.Context) -> None:
    """``"security": {"keys": "keys"}`` in endpoints.json (relative to the
    file) turns CURVE on without any command-line option."""
    generate_keys(run_dir / "keys", [*ROLES, CLIENT_IDENTITY])
    host = NET_ADDRESS or "0.0.0.0"
    path = run_dir / "endpoints.json"
    Endpoints.tcp(host, free_base_port(host)).save(path)
    data = json.loads(path.read_text())
    data["security"] = {"keys": "keys"}
    path.write_text(json.dumps(data))
    endpoints = Endpoints.load(path)
    assert endpoints.security.keys == (run_dir / "keys").resolve()
    node = procs.hil("node", "sim", "--backend", "mock", "--endpoints", str(path))
    keyed = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=2.0, retries=2,
                       security=endpoints.security_for(CLIENT_IDENTITY))
    procs.wait_ready(node, keyed.answers_ping, 60.0)
    plain = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=1.0, retries=1)
    with pytest.raises(ServiceUnavailable):
        plain.ping()
    keyed.shutdown("test done")
    assert node.wait(timeout=30) == 0
    for client in (keyed, plain):
        client.close()


@pytest.mark.slow
@pytest.mark.skipif(NET_ADDRESS is None, reason="this host has no non-loopback IPv4 address")
def test_stranger_gets_nothing_through(procs: Procs, run_dir: Path, keys: Path, zctx: zmq.Context) -> None:
    """A real robot node (``hil node sim``, lockstep) listens on the network
    address with keys. A stranger with its own keys cannot call its services,
    read its topics, or feed it JointCommands by standing in for the policy;
    the same with the policy's key works. The refusal is reported once per peer."""
    assert NET_ADDRESS is not None
    endpoints = Endpoints.tcp(NET_ADDRESS, free_base_port(NET_ADDRESS))
    endpoints.save(run_dir / "endpoints.json")
    # keys from the command line, the endpoints file stays as it is
    node = procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", "--autostart",
                     "--endpoints", str(run_dir / "endpoints.json"), "--keys", str(keys))
    endpoints = endpoints.with_security(SecurityConfig(keys=keys))
    client_security = endpoints.security_for(CLIENT_IDENTITY)
    client = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=2.0, retries=2, security=client_security)
    procs.wait_ready(node, client.answers_ping, 60.0)

    def metrics() -> dict[str, float]:
        return dict(client.info().metrics)

    # A legitimate subscriber (allowed key) sees states, heartbeats and, later, events.
    watcher = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE, HEARTBEAT, EVENT], security=client_security)
    assert watcher.recv(20_000) is not None

    # the command-line tools use the 'client' key: with it they get in, without it not
    ping = [HIL, "bus", "ping", "robot", "--timeout", "5", "--endpoints", str(run_dir / "endpoints.json")]
    assert subprocess.run([*ping, "--keys", str(keys)], capture_output=True, timeout=60).returncode == 0
    assert subprocess.run(ping, capture_output=True, timeout=60).returncode == 1

    robot_key = load_public_key(keys, "robot")
    # 1. services: the stranger's shutdown gets no reply and changes nothing
    req = stranger_socket(zctx, zmq.REQ, robot_key)
    req.connect(endpoints["robot"].rep)
    req.send_multipart(Encoder("stranger").encode("shutdown", services_pb2.ShutdownRequest(reason="pwned")))
    assert not req.poll(2000)
    # 2. topics: the stranger's subscriber receives nothing
    sub = stranger_socket(zctx, zmq.SUB, robot_key)
    sub.subscribe(b"")
    sub.connect(endpoints["robot"].pub)
    assert not sub.poll(2000)
    # 3. commands: the stranger binds the policy's address, which the robot
    #    connects to, and sprays JointCommands answering every state it could
    #    be in; the robot checks the server key and takes none of them.
    fake = stranger_socket(zctx, zmq.PUB)
    fake.bind(endpoints["policy"].pub)
    encoder = Encoder("stranger")
    for _ in range(20):
        for k in range(5):
            fake.send_multipart(encoder.encode(JOINT_COMMAND, messages_pb2.JointCommand(obs_seq=k, position=[0.3] * 6)))
        time.sleep(0.1)
    assert node.poll() is None, "the stranger's shutdown must not stop the node"
    seen = metrics()
    assert seen.get("answer_count", 0) == 0 and seen.get("stale_command", 0) == 0, seen
    assert seen["step"] == 0  # still waiting at state 0 for a policy
    fake.close(0)

    # Positive control: the policy's real key gets through on the same address.
    policy_security = endpoints.security_for("policy")
    policy = Publisher(zctx, endpoints["policy"].pub, "policy", security=policy_security)
    home = list(pose("home"))

    refused_events = []

    def collect() -> bool:
        """Answer the states seen (as the policy) and keep the refusal events."""
        for env in watcher.drain():
            if env.topic == JOINT_STATE:
                policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(obs_seq=env.message.seq, position=home))
            elif env.topic == EVENT and env.message.code == "security.refused":
                refused_events.append(env.message)
        return bool(refused_events)

    def answered() -> bool:
        collect()
        return metrics().get("answer_count", 0) > 0

    assert wait_until(answered, timeout_s=30)

    # The refusals are counted, and reported once for this peer address.
    assert wait_until(collect, timeout_s=10)
    assert metrics()["security.refused"] >= 2
    # more strangers from the same address: counted, not reported again
    for _ in range(3):
        again = stranger_socket(zctx, zmq.REQ, robot_key)
        again.connect(endpoints["robot"].rep)
        again.send(b"x")
        assert not again.poll(500)
        again.close(0)
    time.sleep(1.0)
    collect()
    assert len(refused_events) == 1
    assert NET_ADDRESS in refused_events[0].text
    for sock in (req, sub):
        sock.close(0)
    policy.close()
    policy_security.close()
    watcher.close()
    client.shutdown("test done")
    assert node.wait(timeout=20) == 0
    assert b"security.refused" in node.stderr.read()
    client.close()
    client_security.close()
