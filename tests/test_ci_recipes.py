"""docs/ci.md's recipes are not prose: this test takes the GitHub Actions and
GitLab CI files out of the page, runs their commands as written (from the
repository root, as a CI runner would) and checks that everything they
publish as test results or artifacts exists afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

PAGE = ROOT / "docs" / "ci.md"
OUT = ROOT / "out" / "smoke"


def recipes() -> dict[str, dict[str, Any]]:
    """The YAML blocks of docs/ci.md, by the file name the section gives them."""
    text = PAGE.read_text()
    found = {}
    for name, block in re.findall(r"`([^`]+\.ya?ml)`:\s*\n\s*```yaml\n(.*?)```", text, re.S):
        found[name] = yaml.safe_load(block)
    return found


def github_commands(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def github_published(workflow: dict[str, Any]) -> list[str]:
    paths = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            uses, given = step.get("uses", ""), step.get("with", {})
            if uses.startswith("mikepenz/action-junit-report"):
                paths.append(given["report_paths"])
            if uses.startswith("actions/upload-artifact"):
                paths += [p.strip() for p in given["path"].splitlines() if p.strip()]
    return paths


def gitlab_commands(pipeline: dict[str, Any]) -> list[str]:
    return [command for job in pipeline.values() if isinstance(job, dict) for command in job.get("script", [])]


def gitlab_published(pipeline: dict[str, Any]) -> list[str]:
    paths = []
    for job in pipeline.values():
        artifacts = job.get("artifacts", {}) if isinstance(job, dict) else {}
        paths += artifacts.get("paths", [])
        paths += [artifacts.get("reports", {}).get("junit")] if artifacts.get("reports", {}).get("junit") else []
    return paths


def test_the_page_has_both_recipes_and_they_publish_results_and_the_page() -> None:
    found = recipes()
    assert set(found) == {".github/workflows/hil.yml", ".gitlab-ci.yml"}
    github, gitlab = found[".github/workflows/hil.yml"], found[".gitlab-ci.yml"]
    for published in (github_published(github), gitlab_published(gitlab)):
        for wanted in ("out/smoke/junit.xml", "out/smoke/report.html", "out/smoke/run.mcap"):
            assert any(wanted == p or (p.endswith("/") and wanted.startswith(p)) for p in published), wanted
    publishing = [step for job in github["jobs"].values() for step in job["steps"]
                  if "upload-artifact" in step.get("uses", "") or "junit-report" in step.get("uses", "")]
    assert len(publishing) == 2 and all(step.get("if") == "always()" for step in publishing)  # failed runs too
    assert gitlab["hil-smoke"]["artifacts"]["when"] == "always"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [".github/workflows/hil.yml", ".gitlab-ci.yml"])
def test_the_recipe_commands_run_and_leave_what_they_publish(recipe: str) -> None:
    spec = recipes()[recipe]
    commands = github_commands(spec) if recipe.startswith(".github") else gitlab_commands(spec)
    published = github_published(spec) if recipe.startswith(".github") else gitlab_published(spec)
    assert any(c.startswith("make setup") for c in commands)
    shutil.rmtree(OUT, ignore_errors=True)
    # As on a runner: the repository root, python3 on PATH being the one this suite runs with.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "CI": "true"}
    try:
        for command in commands:
            result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=600, stdin=subprocess.DEVNULL)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        for path in published:
            assert (ROOT / path).exists(), path
        suite = ET.parse(OUT / "junit.xml").getroot().find("testsuite")
        assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests", "0")) >= 5
        assert (OUT / "run.mcap").read_bytes()[:8] == b"\x89MCAP0\r\n"
        assert '<figure id="plot-goals-tcp"' in (OUT / "report.html").read_text()
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
