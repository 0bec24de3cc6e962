"""``hil bench peers``: this bus beside other middleware, the same ping-pong measured in one run.

Every contender does the same thing: two processes on this machine, one
sends a small message (a serialized JointState, about 200 bytes), the other
sends it straight back, the next goes out when the answer is in. Figures
per round trip: wall time p50 / p99 and the CPU time of both processes
(every thread). Each is printed as a ratio to the floor, raw pyzmq, measured
in the same run:

- raw pyzmq PUB/SUB, one frame (the floor);
- this bus: Publisher/Subscriber with the three-frame envelope, decoded and
  re-encoded by the echo (tools/bench/pingpong.py);
- eclipse-zenoh: peer mode over tcp on loopback, multicast scouting off,
  a publisher and a subscriber each way;
- dora-rs: a two-node Python dataflow (``dora run``: the daemon in the
  same process as the command, no coordinator), ping -> pong -> ping.

zenoh and dora are benchmark-only extras (``pip install -e '.[bench]'``);
a peer that is not installed is skipped with the extra named, one that is
installed but cannot run here says why.

Also ``python -m tools.bench.peers zenoh-echo ENDPOINT`` and
``python -m tools.bench.peers dora-node ping|pong``: the peers' processes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bus.latency import summarize
from bus.processes import Processes, cpu_seconds
from tools.bench import pingpong
from tools.bench.bus import sample_state
from tools.bench.targets import Targets

EXTRA = "pip install -e '.[bench]'"
WARMUP = 300
STOP = b"stop"


@dataclass(frozen=True)
class Peer:
    name: str
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    cpu_us: float = float("nan")  # per round trip, both processes (see the note per peer)
    note: str = ""  # why it was skipped or failed, or what its CPU figure covers


def _payload() -> bytes:
    return sample_state().SerializeToString()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- zenoh -----------------------------------------------------------------------
def _zenoh_config(listen: str | None = None, connect: str | None = None) -> object:
    import zenoh  # a benchmark-only extra: imported where it is used

    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("scouting/multicast/enabled", "false")  # loopback only, no traffic beyond this host
    if listen:
        config.insert_json5("listen/endpoints", json.dumps([listen]))
    if connect:
        config.insert_json5("connect/endpoints", json.dumps([connect]))
    return config


def zenoh_echo(endpoint: str) -> None:
    """The echo process: every sample on hil/ping published back on hil/pong."""
    import zenoh

    session = zenoh.open(_zenoh_config(listen=endpoint))
    publisher = session.declare_publisher("hil/pong")
    subscriber = session.declare_subscriber("hil/ping")
    print("ready", flush=True)
    for sample in subscriber:
        data = sample.payload.to_bytes()
        publisher.put(data)
        if data == STOP:
            break
    time.sleep(0.2)
    session.close()


def zenoh_peer(samples: int, processes: Processes) -> Peer:
    if importlib.util.find_spec("zenoh") is None:
        return Peer("eclipse-zenoh", note=f"skipped: not installed ({EXTRA})")
    import zenoh

    endpoint = f"tcp/127.0.0.1:{_free_port()}"
    echo = processes.start("zenoh echo", [sys.executable, "-m", "tools.bench.peers", "zenoh-echo", endpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if echo.stdout is None or echo.stdout.readline().strip() != "ready":
        return Peer("eclipse-zenoh", note=f"failed: the echo process did not start ({_tail(echo)})")
    session = zenoh.open(_zenoh_config(connect=endpoint))
    try:
        publisher = session.declare_publisher("hil/ping")
        subscriber = session.declare_subscriber("hil/pong")
        payload = _payload()
        deadline = time.monotonic() + 30
        while True:  # until the echo's subscription is known to this session
            publisher.put(payload)
            time.sleep(0.05)
            if subscriber.try_recv() is not None:
                break
            if time.monotonic() > deadline:
                return Peer("eclipse-zenoh", note="failed: no answer from the echo within 30 s")
        while subscriber.try_recv() is not None:
            pass
        times, cpu0 = [], 0.0
        for i in range(WARMUP + samples):
            if i == WARMUP:
                cpu0 = time.process_time() + cpu_seconds(echo.pid)
            t0 = time.perf_counter()
            publisher.put(payload)
            subscriber.recv()
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
        cpu = time.process_time() + cpu_seconds(echo.pid) - cpu0
        publisher.put(STOP)
    finally:
        session.close()
    summary = summarize(times)
    return Peer("eclipse-zenoh", summary.p50_s * 1e6, summary.p99_s * 1e6, cpu / samples * 1e6,
                "peer mode, tcp on loopback")


# -- dora -------------------------------------------------------------------------
def dora_node(role: str) -> None:
    """A node of the dora dataflow. ``ping`` times round trips and writes the figures to $RESULT."""
    import pyarrow as pa
    from dora import Node

    node = Node()
    samples = int(os.environ.get("PINGS", "2000"))
    times: list[float] = []
    sent = 0
    t0 = cpu0 = 0.0
    payload = pa.array(list(_payload()), type=pa.uint8())
    for event in node:
        if event["type"] == "STOP":
            break
        if event["type"] != "INPUT":
            continue
        if role == "pong":
            sent += 1
            if sent == WARMUP + 1:
                cpu0 = time.process_time()
            node.send_output("pong", event["value"])
            if sent == WARMUP + samples:
                Path(os.environ["RESULT"] + ".pong").write_text(str(time.process_time() - cpu0))
            continue
        if event["id"] == "tick":  # the timer only starts the exchange
            if sent == 0:
                sent, t0 = 1, time.perf_counter()
                node.send_output("ping", payload)
            continue
        now = time.perf_counter()
        if sent > WARMUP:
            times.append(now - t0)
        if sent == WARMUP:
            cpu0 = time.process_time()
        if sent >= WARMUP + samples:
            break
        sent, t0 = sent + 1, time.perf_counter()
        node.send_output("ping", payload)
    if role == "ping":
        Path(os.environ["RESULT"]).write_text(json.dumps({"times": times, "cpu_s": time.process_time() - cpu0}))


def _dora_dataflow(folder: Path, samples: int, result: Path) -> Path:
    # Each node is this module run by this Python (``-m``: the package's folder is not put first on
    # sys.path, where tools/bench/bus.py would hide the ``bus`` package).
    python = sys.executable
    dataflow = {
        "nodes": [
            {"id": "ping", "path": python, "args": "-m tools.bench.peers dora-node ping",
             "inputs": {"tick": "dora/timer/millis/100", "pong": "pong/pong"}, "outputs": ["ping"],
             "env": {"PINGS": str(samples), "RESULT": str(result)}},
            {"id": "pong", "path": python, "args": "-m tools.bench.peers dora-node pong",
             "inputs": {"ping": "ping/ping"}, "outputs": ["pong"],
             "env": {"PINGS": str(samples), "RESULT": str(result)}},
        ]
    }
    path = folder / "pingpong.yml"
    path.write_text(json.dumps(dataflow, indent=1))  # JSON is YAML
    return path


def dora_peer(samples: int, workdir: Path, processes: Processes) -> Peer:
    if importlib.util.find_spec("dora") is None:
        return Peer("dora-rs", note=f"skipped: dora-rs not installed ({EXTRA})")
    cli = shutil.which("dora", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if cli is None:
        return Peer("dora-rs", note=f"skipped: no `dora` command (its daemon and coordinator come with dora-rs-cli: "
                                    f"{EXTRA})")
    folder = Path(tempfile.mkdtemp(prefix="dora-", dir=workdir))
    result = folder / "result.json"
    dataflow = _dora_dataflow(folder, samples, result)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH")]))}
    run = processes.start("dora run", [cli, "run", str(dataflow)], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        processes.stop([run], term_s=2.0)
        return Peer("dora-rs", note="failed: `dora run` did not finish within 120 s")
    if not result.exists():
        last = " | ".join(line.strip() for line in (out or "").splitlines()[-3:])
        return Peer("dora-rs", note=f"failed: `dora run` exited {run.returncode} without a result: {last[:300]}")
    figures = json.loads(result.read_text())
    pong = Path(str(result) + ".pong")
    cpu = figures["cpu_s"] + (float(pong.read_text()) if pong.exists() else float("nan"))
    summary = summarize(figures["times"])
    return Peer("dora-rs", summary.p50_s * 1e6, summary.p99_s * 1e6, cpu / len(figures["times"]) * 1e6,
                "`dora run`; CPU of the two nodes only (the daemon that routes between them not counted)")


def _tail(child: subprocess.Popen) -> str:
    child.kill()
    _, err = child.communicate(timeout=10)
    return " | ".join((err or "").strip().splitlines()[-2:])[:300] or f"exit {child.returncode}"


# -- the bench --------------------------------------------------------------------
def run(samples: int) -> list[Peer]:
    with tempfile.TemporaryDirectory(prefix="hbpeers-", dir="/tmp") as tmp, Processes() as processes:
        workdir = Path(tmp)
        state = sample_state()
        floor = pingpong.run("raw", samples, workdir, 0, state)
        bus = pingpong.run("bus", samples, workdir, 0, state)
        peers = [Peer("raw pyzmq (floor)", floor.p50_us, floor.p99_us, floor.cpu_us, "PUB/SUB, one frame, ipc"),
                 Peer("this bus", bus.p50_us, bus.p99_us, bus.cpu_us, "Publisher/Subscriber, envelope, ipc")]
        peers.append(zenoh_peer(samples, processes))
        peers.append(dora_peer(samples, workdir, processes))
    return peers


def report(peers: list[Peer], targets: Targets) -> str:
    floor = peers[0]
    lines = [
        f"two-process ping-pong of a {len(_payload())}-byte message (a serialized JointState), "
        "both sides blocking; ratios to the floor of this run",
        f"  {'peer':<20} {'p50 us':>8} {'x floor':>8} {'p99 us':>9} {'CPU us':>8} {'x floor':>8}  notes",
    ]
    for peer in peers:
        if peer.p50_us != peer.p50_us:  # NaN: skipped or failed
            lines.append(f"  {peer.name:<20} {'-':>8} {'-':>8} {'-':>9} {'-':>8} {'-':>8}  {peer.note}")
            continue
        lines.append(f"  {peer.name:<20} {peer.p50_us:>8.1f} {peer.p50_us / floor.p50_us:>8.2f} "
                     f"{peer.p99_us:>9.1f} {peer.cpu_us:>8.1f} {peer.cpu_us / floor.cpu_us:>8.2f}  {peer.note}")
    lines.append(f"machine: {os.cpu_count()} cores, load average "
                 f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Peers set no target of their own: they are the comparison (targets line says 0 met, 0 missed).
    del targets
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "zenoh-echo":
        zenoh_echo(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "dora-node" and sys.argv[2] in ("ping", "pong"):
        dora_node(sys.argv[2])
    else:
        sys.exit("usage: python -m tools.bench.peers zenoh-echo ENDPOINT | dora-node ping|pong")
