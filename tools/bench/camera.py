"""``hil bench camera``: camera frames through the bus, rendering, and the lockstep loop with a camera.

1. Throughput of 320x240 and 640x480 RGB frames between two processes: a
   publisher process fills a fresh buffer from a rendered-like image and
   sends it, as fast as it can for a window, through the bus
   (bus.frames.FramePublisher, FrameBuffer, zero copy; the receiver a
   FrameSubscriber, which checks every header and parses the newest frame)
   and, beside it in the same run, through raw pyzmq moving the same bytes
   (three frames, zero copy, the same queue sizes). Frames/s and MB/s are
   counted at the receiver; the target is bus >= 0.9x raw. Bus and raw
   alternate for ROUNDS rounds and the best round of each counts: on a
   shared machine one window may lose half its CPU to a neighbour.
2. Render time per frame of MuJoCo's offscreen camera (sim_node/camera.py)
   at the same sizes, and the cost of JPEG encoding.
3. Lockstep steps/s of the MuJoCo sim node with the reactive responder
   (tools/bench/lockstep.py), without a camera and with a 320x240 camera
   every 5 steps.

Ends with ``targets: N met, M missed (names)``; the command exits 1 on a miss.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

from bus.frames import FRAME_HWM, FramePublisher, FrameSubscriber
from bus.images import PREFIX_ROOM, FrameBuffer
from bus.pubsub import LATEST_HWM
from bus.topics import image_topic
from roarm.camera import CameraSpec
from roarm.camera_role import encode
from roarm.joints import pose
from sim_node.camera import RenderUnavailable
from sim_node.mujoco_backend import MujocoBackend
from tools.bench.lockstep import LockstepPair
from tools.bench.targets import Targets

SIZES = ((320, 240), (640, 480))
RATIO_TARGET = 0.9
ROUNDS = 3
CAMERA_ARG = "bench:w=320,h=240,every=5"


def _pattern(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = x * 255 // max(1, width - 1)
    image[..., 1] = y * 255 // max(1, height - 1)
    image[..., 2] = 128
    return image.reshape(-1)


def _flood(endpoint: str, ready: mp.Event, seconds: float, width: int, height: int, raw: bool,
           result: mp.Queue) -> None:
    """Send frames for ``seconds``: each a fresh buffer filled from one image, sent without a copy."""
    ctx = zmq.Context()
    image = _pattern(width, height)
    nbytes = image.size
    if raw:
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, FRAME_HWM)
        sock.bind(endpoint)
    else:
        pub = FramePublisher(ctx, endpoint, "bench")
    ready.set()
    time.sleep(0.5)  # the subscriber's subscription arrives (slow joiner)
    topic, header = image_topic("bench").encode(), b"h" * 80
    end = time.monotonic() + seconds
    step = 0
    cpu = time.process_time()
    while time.monotonic() < end:
        storage = np.empty(PREFIX_ROOM + nbytes, np.uint8)
        if raw:
            np.copyto(storage[PREFIX_ROOM:], image)
            sock.send_multipart([topic, header, memoryview(storage)[PREFIX_ROOM - 30:]], copy=False)
        else:
            buffer = FrameBuffer(nbytes, storage)
            np.copyto(np.frombuffer(buffer.pixels, np.uint8), image)
            pub.publish_raw("bench", buffer, width=width, height=height, encoding="rgb8",
                            stamp_ns=time.monotonic_ns(), step=step)
        step += 1
    result.put((step, time.process_time() - cpu))
    time.sleep(0.5)
    (sock if raw else pub.socket).close(1000)
    ctx.term()


@dataclass(frozen=True)
class Throughput:
    frames: int
    seconds: float
    nbytes: int  # payload bytes per frame
    send_cpu_us: float = 0.0  # CPU time of the sending process per frame sent (filling the frame included)
    recv_cpu_us: float = 0.0  # CPU time of the receiving process per frame received

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_s(self) -> float:
        return self.fps * self.nbytes / 1e6


def throughput(width: int, height: int, seconds: float, workdir: Path, raw: bool) -> Throughput:
    """Frames a receiving process gets per second from a publisher process (module docstring, 1)."""
    endpoint = f"ipc://{workdir}/frames-{'raw' if raw else 'bus'}-{width}.pub"
    ctx = zmq.Context()
    if raw:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, LATEST_HWM)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(endpoint)
    else:
        sub = FrameSubscriber(ctx, [endpoint], ["bench"])
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    result = spawn.Queue()
    proc = spawn.Process(target=_flood, args=(endpoint, ready, seconds + 1.5, width, height, raw, result),
                         daemon=True)
    proc.start()
    ready.wait(30)
    count = 0
    start = 0.0
    stop = 0.0
    cpu = 0.0
    nbytes = width * height * 3
    try:
        while True:
            if raw:
                if not sock.poll(2000):
                    break
                frames = sock.recv_multipart(copy=False)
                got = 1
                nbytes = len(frames[2].buffer)
            else:
                before = sub.superseded
                images = sub.latest(2000)
                if not images:
                    break
                got = len(images) + sub.superseded - before
                nbytes = len(images["bench"].data)
            now = time.perf_counter()
            if not start:
                start = now  # the window opens with the first frame
                cpu = time.process_time()
                continue
            count += got
            stop = now
            if now - start >= seconds:
                cpu = time.process_time() - cpu
                break
    finally:
        proc.join(seconds + 10)
        if proc.is_alive():
            proc.kill()
        (sock if raw else sub.socket).close(0)
        ctx.term()
    try:
        sent, send_cpu = result.get(timeout=5)
    except queue.Empty:  # the sender died: no figure
        sent, send_cpu = 0, 0.0
    return Throughput(count, stop - start, nbytes, 1e6 * send_cpu / sent if sent else 0.0,
                      1e6 * cpu / count if count else 0.0)


@dataclass(frozen=True)
class RenderTime:
    width: int
    height: int
    render_ms: float  # p50 of render into a frame's pixels
    jpeg_ms: float  # p50 of JPEG encoding that frame


def render_times(frames: int = 40) -> list[RenderTime]:
    """MuJoCo's offscreen render per frame at each size (in this process, the sim node's code path)."""
    specs = [CameraSpec(f"c{w}", width=w, height=h) for w, h in SIZES]
    sim = MujocoBackend(dt=0.01, cameras=specs)
    sim.connect()
    out = []
    try:
        sim.reset(pose("home"), 0, None)
        for spec in specs:
            pixels = np.empty((spec.height, spec.width, 3), np.uint8)
            sim.render(spec.name, pixels)  # warm-up: the first frame builds the GL state
            render, jpeg = [], []
            for _ in range(frames):
                sim.step()
                t0 = time.perf_counter()
                sim.render(spec.name, pixels)
                t1 = time.perf_counter()
                encode(pixels, "jpeg")
                jpeg.append(time.perf_counter() - t1)
                render.append(t1 - t0)
            out.append(RenderTime(spec.width, spec.height, 1000 * float(np.median(render)),
                                  1000 * float(np.median(jpeg))))
    finally:
        sim.close()
    return out


def lockstep_rate(seconds: float, workdir: Path, camera: bool) -> tuple[float, float]:
    """(steps/s, render p50 us) of the MuJoCo sim node + responder, with or without the bench camera."""
    args = ("--camera", CAMERA_ARG) if camera else ()
    run = LockstepPair(workdir, "mujoco", "lockstep", *args)
    try:
        run.robot.reset(seed=1)
        run.wait_running("mujoco" + (" with a camera" if camera else ""), steps=50)
        first, t0 = run.robot.info(), time.monotonic()
        time.sleep(seconds)
        last, t1 = run.robot.info(), time.monotonic()
    finally:
        run.close()
    return (last.metrics["steps"] - first.metrics["steps"]) / (t1 - t0), last.metrics.get("render_p50_us", 0.0)


def report(seconds: float, targets: Targets) -> str:
    """The printed figures; each target is checked into ``targets``."""
    lines = [f"frames through the bus between 2 processes (ipc, {FRAME_HWM}-frame PUB queue), beside raw pyzmq "
             f"moving the same bytes in the same run (best of {ROUNDS} alternating rounds of {seconds:g} s):",
             f"{'size':<9} {'bus fps':>8} {'bus MB/s':>9} {'raw fps':>8} {'raw MB/s':>9} {'bus/raw':>8}   "
             "CPU us per frame, send/receive (bus; raw)"]
    with tempfile.TemporaryDirectory(prefix="hbc-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        for width, height in SIZES:
            rounds = [(throughput(width, height, seconds, workdir, raw=False),
                       throughput(width, height, seconds, workdir, raw=True)) for _ in range(ROUNDS)]
            bus = max((b for b, _ in rounds), key=lambda t: t.fps)
            raw = max((r for _, r in rounds), key=lambda t: t.fps)
            ratio = bus.fps / raw.fps if raw.fps else 0.0
            cpu = [min(getattr(t, field) for t in side) for side in ([b for b, _ in rounds], [r for _, r in rounds])
                   for field in ("send_cpu_us", "recv_cpu_us")]
            lines.append(f"{width}x{height:<5} {bus.fps:>8.0f} {bus.mb_s:>9.0f} {raw.fps:>8.0f} {raw.mb_s:>9.0f} "
                         f"{ratio:>7.2f}x   {cpu[0]:.0f}/{cpu[1]:.0f}; {cpu[2]:.0f}/{cpu[3]:.0f}")
            targets.check(f"{width}x{height} bus >= {RATIO_TARGET}x raw", ratio, RATIO_TARGET, kind="min")
        lines.append("")
        try:
            renders = render_times()
            with_camera = lockstep_rate(seconds, workdir, camera=True)
            without = lockstep_rate(seconds, workdir, camera=False)
        except RenderUnavailable as exc:
            lines.append(f"rendering: not measured: {exc}")
        else:
            lines.append("MuJoCo offscreen render (shadows, reflections, multisampling off), p50 per frame:")
            for r in renders:
                lines.append(f"  {r.width}x{r.height}: render {r.render_ms:.1f} ms, JPEG encode {r.jpeg_ms:.1f} ms")
            lines += ["", "lockstep, dt 10 ms, MuJoCo sim node + reactive responder:",
                      f"  without a camera:                 {without[0]:>7,.0f} steps/s",
                      f"  with a 320x240 camera every 5 steps: {with_camera[0]:>4,.0f} steps/s "
                      f"(render p50 {with_camera[1] / 1000:.1f} ms in the node; "
                      f"{with_camera[0] / without[0]:.2f}x)"]
    lines.append(f"machine: {os.cpu_count()} cores, load average "
                 f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (shared with other work)")
    return "\n".join(lines)
