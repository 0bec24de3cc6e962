"""The package installed the ordinary way (a wheel, not editable) carries its policies and scenarios.

A wheel is built from this checkout (``pip wheel . --no-deps``) and installed
with ``--no-deps --no-index`` into a fresh virtual environment. That
environment does not see this checkout: its dependencies (numpy,
onnxruntime, MuJoCo, ...) come from the project's own ``.venv`` through one
``.pth`` line that appends that site-packages folder to ``sys.path`` (a
folder added that way has its own ``.pth`` files ignored, so the editable
install of this checkout stays invisible). Nothing is downloaded but the
build backend pip may fetch for the wheel build (from its cache offline).
Then, from an empty folder, ``hil run reach --target mock`` must pass: the
shipped scenario found by name, its ``../policies/reach.onnx`` inside the
installed package.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv holding the wheel of this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    # From a copy of the files git knows (committed or not, not ignored): a stale build/ folder in
    # the checkout would put deleted modules into the wheel, and the build must not write into it.
    source = work / "source"
    listed = run("git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard").stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--quiet", "-w", work / "dist")
    wheels = list((work / "dist").glob("roarm_hil-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "project_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheels[0])
    return venv / "bin"


def test_the_wheel_ships_policies_example_folders_and_scenarios(installed: Path, tmp_path: Path) -> None:
    code = ("import policies, scenarios, pathlib; p = pathlib.Path(policies.__file__).parent; "
            "s = pathlib.Path(scenarios.__file__).parent; "
            "print(p); print(s); print(*sorted(str(f.relative_to(p)) for f in p.rglob('*') if f.is_file() "
            "and '__pycache__' not in f.parts), sep='\\n')")
    lines = run(installed / "python", "-c", code, cwd=tmp_path).stdout.splitlines()
    folder, scenarios_folder, files = Path(lines[0]), Path(lines[1]), set(lines[2:])
    assert installed.parent in folder.parents, f"policies imported from {folder}, not the fresh venv"
    assert ROOT not in folder.parents and ROOT not in scenarios_folder.parents
    assert {"reach.onnx", "python_ik/policy.py", "isaaclab_reach/params/env.yaml", "isaaclab_reach/params/agent.yaml",
            "isaaclab_reach/exported/policy.onnx", "isaaclab_reach_imported/policy.yaml",
            "isaaclab_reach_imported/policy.onnx", "sb3_reach/policy.yaml", "sb3_reach/policy.onnx",
            "plain_reach/policy.yaml", "plain_reach/policy.onnx", "c_hold/c_hold.c"} <= files, files
    for name in ("reach", "isaaclab_reach", "c_hold", "smoke"):
        assert (scenarios_folder / f"{name}.yaml").is_file(), name


def test_hil_run_reach_by_name_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run([str(installed / "hil"), "run", "reach", "--target", "mock", "--no-record", "--out",
                             str(out), "--no-progress"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert installed.parent in Path(report["provenance"]["policy_file"]).parents
    assert report["nodes"]["policy"]["argv"][0] == str(installed / "hil")
