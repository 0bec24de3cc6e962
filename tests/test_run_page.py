"""report.html of a real run and a sweep, `hil report`, `hil bag plot` on the
robot's clock, and the pages rendered by a real headless Chromium.

One real recorded run (reach.yaml on the mock target: reach.onnx through
onnxruntime, four Cartesian goals, one episode each) feeds most tests here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from scenarios.plots import (FLAT_SPAN_RAD, draw_goal_distances, draw_joint, joint_groups, new_figure, to_png)
from scenarios.run_page import render_run_page
from scenarios.sweep_page import SweepSummary, cell_summary, read_report, write_sweep_page
from scenarios.trace import REACHED, TRACE_FILE, Thumbnail, Trace
from tests.conftest import HIL, ROOT
from tools.bag.series import load_trace

CHROMIUM = Path("/usr/bin/chromium")
PLOT_IDS = ("plot-goals-tcp", "plot-joints", "plot-latency", "plot-events")


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reach") / "out"
    result = subprocess.run([HIL, "run", str(ROOT / "scenarios" / "reach.yaml"), "--target", "mock", "--out", str(out),
                             "--no-progress"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{out}/report.html" in result.stdout
    return out


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


# -- the page as written ---------------------------------------------------------------
def test_every_run_writes_one_self_contained_page_with_the_plots(reach_run: Path) -> None:
    text = (reach_run / "report.html").read_text()
    for plot_id in PLOT_IDS:
        assert re.search(f'<figure id="{plot_id}" class="plot"><svg', text), plot_id
    assert '<table id="verdicts">' in text and '<table id="goals">' in text
    for verdict in report_of(reach_run)["verdicts"]:
        assert f"<td>{verdict['name']}</td>" in text
    # Nothing to fetch: no script, no stylesheet or image from elsewhere, only data: URIs.
    assert "<script" not in text and "<link" not in text and "@import" not in text
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert not re.match(r"(?:[a-z]+:)?//", attribute) and not attribute.startswith("http"), attribute
    assert not re.search(r"url\((?!#)", text)
    assert 'id="cameras"' not in text  # no cameras in this run: no empty section


def test_the_runner_trace_matches_the_report(reach_run: Path) -> None:
    trace = Trace.load(reach_run / TRACE_FILE)
    report = report_of(reach_run)
    assert [g.id for g in trace.goals] == [g["id"] for g in report["goals"]]
    assert all(g.status == REACHED for g in trace.goals)
    assert [g.reached_after_s for g in trace.goals] == pytest.approx([g["time_s"] for g in report["goals"]])
    # The robot's clock: the trace ends where the runner's simulated time does (not at the wall time).
    assert max(trace.t) == pytest.approx(report["timings"]["sim_time_s"], abs=0.05)
    assert len(trace.episodes) == 4  # one reset per goal
    assert sum(c is not None for c in trace.command) > 0.9 * len(trace)
    assert trace.latency_bound_ms == 50


# -- hil bag plot on the robot's clock -------------------------------------------------
def test_bag_plot_of_a_lockstep_reach_bag_shows_four_goals_in_mm_with_the_band(reach_run: Path,
                                                                              tmp_path: Path) -> None:
    trace = load_trace(reach_run / "run.mcap")
    report = report_of(reach_run)
    # One goal per id, however often the runner re-sent it; the same reach moments the runner judged
    # (reach.yaml holds 0.1 s: the runner times the entry into the band, the bag sees the same entry).
    assert [g.id for g in trace.goals] == [g["id"] for g in report["goals"]]
    assert [g.reached_after_s for g in trace.goals] == pytest.approx([g["time_s"] for g in report["goals"]],
                                                                     abs=0.015)
    # x is sim_time: the run simulated several seconds in well under a second of wall time per goal.
    # The bag also holds the states the lockstep loop made while the run was being stopped
    # (more of them on a loaded machine), so it may end a little after the runner's last reading.
    sim_time = report["timings"]["sim_time_s"]
    assert sim_time - 0.5 <= max(trace.t) <= sim_time + 1.5
    assert max(trace.t) > 2 * report["timings"]["run_s"]
    fig = new_figure(8, 4)
    ax = fig.add_subplot()
    assert draw_goal_distances(ax, trace, "tcp") == 4
    assert "mm" in ax.get_ylabel() and ax.get_yscale() == "log"
    lines = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("goal-line-")]
    assert len(lines) == 4
    assert max(max(line.get_xdata()) for line in lines) < 4.2  # seconds since each goal started (timeout 4 s)
    assert max(max(line.get_ydata()) for line in lines) > 100  # mm: the arm starts ~300 mm away
    assert any(p.get_gid() == "tolerance-band" for p in ax.patches)
    edge = next(line for line in ax.get_lines() if line.get_gid() == "tolerance-edge")
    assert list(edge.get_ydata()) == [10.0, 10.0]  # the 10 mm bound, in mm
    reached = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("goal-reached-")]
    assert len(reached) == 4 and all(line.get_ydata()[0] <= 10.0 for line in reached)

    out = tmp_path / "bag.png"
    result = subprocess.run([HIL, "bag", "plot", str(reach_run / "run.mcap"), "-o", str(out)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ", 4 goals" in result.stdout and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_joints_that_did_not_move_are_drawn_flat(reach_run: Path) -> None:
    trace = Trace.load(reach_run / TRACE_FILE)
    moved, flat = joint_groups(trace)
    names = [trace.joint_names[j] for j in flat]
    assert names == ["roll", "gripper"] and trace.joint_names[moved[0]] == "base"
    ax = new_figure(6, 2).add_subplot()
    draw_joint(ax, trace, flat, flat=True)
    low, high = ax.get_ylim()
    assert high - low == pytest.approx(2 * FLAT_SPAN_RAD)  # not autoscaled onto observation noise


# -- hil report ------------------------------------------------------------------------
def test_hil_report_rebuilds_the_page_from_the_trace_or_else_the_bag(reach_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(reach_run, copy)
    (copy / "report.html").unlink()
    result = subprocess.run([HIL, "report", str(copy)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "from trace.json" in result.stdout, result.stderr
    rebuilt = (copy / "report.html").read_text()
    assert all(f'id="{plot_id}"' in rebuilt for plot_id in PLOT_IDS)
    (copy / TRACE_FILE).unlink()
    result = subprocess.run([HIL, "report", str(copy)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "from run.mcap" in result.stdout, result.stderr
    assert 'id="plot-goals-tcp"' in (copy / "report.html").read_text()
    assert not (copy / TRACE_FILE).exists()  # rebuilding reads the run folder, it does not add to it
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([HIL, "report", str(empty)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "neither report.json" in result.stderr and "Traceback" not in result.stderr


def test_camera_frames_appear_as_thumbnails(reach_run: Path) -> None:
    """The hook for runs with cameras: frames in the trace become <img> thumbnails (data: URIs)."""
    trace = Trace.load(reach_run / TRACE_FILE)
    fig = new_figure(2, 1.5)
    fig.add_subplot().plot([0, 1], [1, 0])
    trace.thumbnails.append(Thumbnail("wrist", 1.25, "image/png", to_png(fig)))
    text = render_run_page(report_of(reach_run), trace)
    assert '<section id="cameras"' in text and 'src="data:image/png;base64,iVBOR' in text
    assert "wrist t=1.25 s" in text


# -- a sweep's page ------------------------------------------------------------------------
def make_sweep(reach_run: Path, folder: Path) -> Path:
    """A sweep folder of two cells: the real run, and one that broke with a long, multi-line error."""
    shutil.copytree(reach_run, folder / "mock-seed0")
    broken = folder / "mock-seed1"
    broken.mkdir()
    error = ("robot exited with status 1 before it answered ping; the end of its log says that the serial port "
             "/dev/ttyUSB0 could not be opened\nTraceback lines would follow here")
    (broken / "report.json").write_text(json.dumps({"outcome": "broken", "error": error, "verdicts": [], "goals": []}))
    cells = [cell_summary("mock", 0, "mock-seed0", "pass", 0, 7.0, read_report(folder / "mock-seed0")),
             cell_summary("mock", 1, "mock-seed1", "broken", 2, 1.0, read_report(broken))]
    page = write_sweep_page(SweepSummary("reach", ["mock"], [0, 1], 2, cells), folder)
    assert page is not None
    return page


def test_sweep_page_has_rates_distributions_and_links_to_the_worst_seeds(reach_run: Path, tmp_path: Path) -> None:
    page = make_sweep(reach_run, tmp_path / "sweep")
    text = page.read_text()
    for element in ('<table id="rates">', 'id="plot-rates"', 'id="plot-times"', 'id="plot-errors"',
                    '<table id="worst">', '<table id="cells">'):
        assert element in text, element
    worst = text[text.index('<table id="worst">'):text.index('<table id="cells">')]
    # Worst first: the broken cell, then the passing one with a link to its own page.
    assert worst.index("mock seed 1") < worst.index("mock seed 0")
    assert '<a href="mock-seed0/report.html">mock seed 0</a>' in worst
    assert "Traceback lines would follow here" in text  # the full error, not a cut
    summary = SweepSummary.load(tmp_path / "sweep")
    assert summary.cells[1].error.endswith("would follow here")


# -- in a real browser ----------------------------------------------------------------------
def chromium(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[bytes]:
    profile = tempfile.mkdtemp(prefix="hil-chromium-")
    try:
        return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--no-first-run", f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout_s, env={**os.environ, "HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, out: Path, height: int) -> np.ndarray:
    result = chromium(f"--screenshot={out}", f"--window-size=1280,{height}", page.as_uri())
    assert result.returncode == 0 and out.exists(), result.stderr.decode(errors="replace")[-2000:]
    return imread(out)


def not_blank(pixels: np.ndarray) -> float:
    """The share of pixels that are not (near) white."""
    rgb = pixels[..., :3]
    return float((rgb.min(axis=2) < 0.9).mean())


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed at /usr/bin/chromium (Debian package 'chromium'; .ci/run installs it): "
           "report.html not checked in a browser")


@needs_chromium
def test_run_page_renders_in_headless_chromium(reach_run: Path, tmp_path: Path) -> None:
    page = reach_run / "report.html"
    pixels = screenshot(page, tmp_path / "run.png", 4200)
    assert pixels.shape[0] == 4200 and pixels.std() > 0.05
    assert not_blank(pixels) > 0.04
    # The plots themselves drew: the band of the page where the distance plot sits has ink in it.
    dom = chromium("--dump-dom", page.as_uri()).stdout.decode()
    for plot_id in PLOT_IDS:
        figure = re.search(f'<figure id="{plot_id}" class="plot">(.*?)</figure>', dom, re.S)
        assert figure and "<svg" in figure.group(1), plot_id
        assert len(re.findall(r"<path", figure.group(1))) > 10, plot_id
    assert "goal:front_left" in dom and 'id="verdicts"' in dom and "PASS" in dom


@needs_chromium
def test_sweep_page_renders_in_headless_chromium(reach_run: Path, tmp_path: Path) -> None:
    page = make_sweep(reach_run, tmp_path / "sweep")
    pixels = screenshot(page, tmp_path / "sweep.png", 2400)
    assert not_blank(pixels) > 0.03 and pixels.std() > 0.05
    dom = chromium("--dump-dom", page.as_uri()).stdout.decode()
    assert 'href="mock-seed0/report.html"' in dom and len(re.findall("<svg", dom)) >= 4
