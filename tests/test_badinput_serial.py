"""Random and mutated serial lines into a real ``hil node hw`` process.

This test is the arm: it holds the master side of a real pty, answers the
node's feedback requests with well-formed T:1051 lines (from the emulated
firmware), and in between writes garbage lines built by hypothesis. Each
kind of line has the counter it must land in (``serial.<kind>``, see
hw_node/protocol.py's Kind); after every batch the counters must have grown
by exactly what was written, the node must still answer ping, and a good
feedback line must still become a published state.
"""

from __future__ import annotations

import errno
import json
import math
import os
import select
import time
from collections import Counter
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.endpoints import Endpoints
from tests.conftest import wait_ready
from hw_node import protocol
from hw_node.emulator import Pty
from hw_node.firmware import Firmware, FirmwareConfig

MAX_LINE = 2048  # hw_node.link.LinkConfig.max_line
SERIAL_KINDS = ("text", "number", "empty", "other_json", "bad_json", "partial", "bad_feedback", "echo", "overlong")

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def feedback_dict() -> dict:
    line = Firmware(FirmwareConfig()).feedback()
    return json.loads(line)


GOOD = feedback_dict()
GOOD_LINE = json.dumps(GOOD, separators=(",", ":"))

# -- lines, each with the counter it must land in ---------------------------------
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;!?-_=+*/()<>#@", max_size=60)


def not_a_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def replace_joint(index: int, value: object) -> str:
    bad = dict(GOOD)
    key = protocol.FEEDBACK_KEYS[index]
    if value is KeyError:
        del bad[key]
    else:
        bad[key] = value
    return json.dumps(bad, separators=(",", ":"))


Line = tuple[bytes, str]

lines: st.SearchStrategy[Line] = st.one_of(
    st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), plain).map(lambda t: t[0] + t[1])
    .filter(not_a_float).map(lambda t: (t.encode(), "text")),
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b'{}[]":\r\n'))
    .map(lambda b: (b"x" + b, "text")),
    st.one_of(st.integers(-10**9, 10**9).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr))
    .map(lambda n: (n.encode(), "number")),
    st.sampled_from([b"", b" ", b"\t", b"   \t "]).map(lambda b: (b, "empty")),
    st.text(max_size=30).map(lambda t: "{" + t).filter(not_json).filter(lambda t: "\n" not in t and "\r" not in t)
    .map(lambda t: (t.encode(), "bad_json")),
    st.integers(1, len(GOOD_LINE) - 1).map(lambda n: (GOOD_LINE[:n].encode(), "bad_json")),
    st.integers(1, len(GOOD_LINE) - 2).map(lambda n: GOOD_LINE[n:]).filter(lambda t: not t.strip().startswith(("{", "[")))
    .map(lambda t: (t.encode(), "partial")),
    st.one_of(
        st.lists(st.integers(), max_size=4).map(json.dumps),
        st.dictionaries(st.text(max_size=5).filter(lambda k: k != "T"), st.integers(), max_size=3).map(json.dumps),
        st.integers().filter(lambda t: t != protocol.T_FEEDBACK and t not in protocol.COMMAND_CODES)
        .map(lambda t: json.dumps({"T": t})),
        st.sampled_from(['{"T":"1051"}', '{"T":1051.5}', '{"T":true}', '{"T":null}']),
    ).map(lambda t: (t.encode(), "other_json")),
    st.sampled_from(sorted(protocol.COMMAND_CODES)).map(lambda c: (json.dumps({"T": c}).encode(), "echo")),
    st.tuples(st.integers(0, 5), st.sampled_from([math.nan, math.inf, -math.inf, "x", None, [], KeyError]))
    .map(lambda t: (replace_joint(*t).encode(), "bad_feedback")),
    st.integers(MAX_LINE + 1, MAX_LINE + 3000).map(lambda n: (b"z" * n, "overlong")),
)


# -- the fake arm ----------------------------------------------------------------
class FakeArm:
    """The master side of the pty: answers feedback requests, writes what it is told."""

    def __init__(self, pty: Pty) -> None:
        self.pty = pty
        self.inbox = bytearray()
        self.requests = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 20
        while view:
            assert time.monotonic() < deadline, "the node stopped reading the serial port"
            try:
                written = os.write(self.pty.master, view)
                view = view[written:]
            except BlockingIOError:
                select.select([], [self.pty.master], [], 0.05)
                self.serve(answer=False)  # never a feedback line in the middle of this one

    def serve(self, answer: bool = True) -> None:
        """Read what the node wrote; answer each T:105 with a good feedback line."""
        while True:
            try:
                chunk = os.read(self.pty.master, 4096)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:  # nobody has the port open (yet)
                    break
                raise
            if not chunk:
                break
            self.inbox += chunk
        *complete, rest = bytes(self.inbox).split(b"\n")
        self.inbox = bytearray(rest)
        for line in complete:
            if b'"T":105' in line.replace(b" ", b""):
                self.requests += 1
                if answer:
                    self.write(GOOD_LINE.encode() + b"\r\n")


@pytest.mark.slow
def test_hw_node_counts_every_bad_serial_line(procs, run_dir: Path, endpoints: Endpoints,
                                              zctx: zmq.Context) -> None:
    pty = Pty()
    arm = FakeArm(pty)
    try:
        node = procs.hil("node", "hw", "--port", pty.path, "--rate", "10", "--run-dir", str(run_dir))
        client = wait_ready(zctx, endpoints, "robot", timeout_s=60)

        def metrics() -> dict[str, float]:
            arm.serve()
            return dict(client.info().metrics)

        def serial_counts() -> Counter[str]:
            m = metrics()
            return Counter({k: int(m.get(f"serial.{k}", 0)) for k in SERIAL_KINDS if m.get(f"serial.{k}")})

        def wait(condition, timeout_s: float = 20.0) -> bool:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if condition():
                    return True
                arm.serve()
                time.sleep(0.01)
            return condition()

        # the node talks to us and publishes states from our feedback
        assert wait(lambda: metrics().get("states_published", 0) > 3, 30), "no states from good feedback"

        @SETTINGS
        @given(batch=st.lists(lines, min_size=1, max_size=10))
        def batch_in(batch: list[Line]) -> None:
            before = serial_counts()
            for raw, _ in batch:
                arm.write(raw + b"\r\n")
                arm.serve()
            want = before + Counter(kind for _, kind in batch)
            assert wait(lambda: serial_counts() == want), f"counters {serial_counts()} != {want}"
            # still alive, still turning good feedback into states
            published = metrics()["states_published"]
            assert wait(lambda: metrics()["states_published"] > published)
            assert client.ping().role == "robot"

        batch_in()

        # A long burst without any newline is dropped in bounded memory.
        before = metrics()
        arm.write(bytes(range(256)).replace(b"\n", b"") * 400)
        arm.write(b"\r\n")
        assert wait(lambda: metrics().get("serial.overlong", 0) == before.get("serial.overlong", 0) + 1)
        assert metrics()["serial_line_pending"] <= MAX_LINE
        published = metrics()["states_published"]
        assert wait(lambda: metrics()["states_published"] > published)
        client.shutdown("test done")
        deadline = time.monotonic() + 20
        while node.alive() and time.monotonic() < deadline:
            arm.serve()
            time.sleep(0.02)
        assert node.returncode == 0
        client.close()
    finally:
        pty.close()
