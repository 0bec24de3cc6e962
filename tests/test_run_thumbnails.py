"""report.html shows what the run's cameras saw: thumbnails taken by the runner from a real MuJoCo run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from scenarios.trace import Trace
from tests.conftest import HIL
from tests.test_sim_camera import gl_or_skip

SCENARIO = """\
name: thumbs
robot:
  target: mujoco
  dt: 0.02
  cameras:
    - {name: eye, width: 160, height: 120, every: 5, encoding: jpeg}
    - {name: top, width: 96, height: 72, every: 10, pos: [0.2, 0, 0.9], lookat: [0.2, 0, 0]}
policy:
  scripted: ik
scene:
  target_red: [0.25, 0.0, 0.015]
goals:
  - {id: first, tcp: [0.3, 0.1, 0.2], timeout_s: 3}
duration_s: 3
"""


@pytest.mark.slow
def test_the_run_page_shows_camera_thumbnails(tmp_path: Path) -> None:
    gl_or_skip()
    scenario = tmp_path / "thumbs.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    done = subprocess.run([HIL, "run", str(scenario), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    trace = Trace.load(out / "trace.json")
    cameras = {th.camera for th in trace.thumbnails}
    assert cameras == {"eye", "top"}
    for th in trace.thumbnails:
        assert th.mime == "image/jpeg"
        pixels = cv2.imdecode(np.frombuffer(th.data, np.uint8), cv2.IMREAD_COLOR)
        assert pixels is not None and pixels.shape[1] <= 160
    times = sorted(th.t for th in trace.thumbnails if th.camera == "eye")
    assert len(times) >= 2 and all(b - a >= 0.99 for a, b in zip(times, times[1:]))  # about one a second
    page = (out / "report.html").read_text()
    assert 'id="cameras"' in page and page.count("data:image/jpeg;base64,") == len(trace.thumbnails)
    assert json.loads((out / "report.json").read_text())["exit_code"] == 0
