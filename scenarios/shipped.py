"""Scenarios shipped with the package, found by name: ``hil run reach`` from any folder.

The shipped scenario files live in this package (``scenarios/*.yaml``) and
name their policies relative to themselves (``../policies/reach.onnx``); the
``policies`` package is installed beside this one, so the same relative
paths hold in a checkout and in an installed wheel.
"""

from __future__ import annotations

from pathlib import Path

from scenarios.checker import ScenarioError

SHIPPED_DIR = Path(__file__).resolve().parent


def shipped() -> list[str]:
    """Names of the shipped scenarios (``reach``, ``smoke``, ...)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def find_scenario(text: str) -> Path:
    """A scenario file: ``text`` as a path when it exists or looks like one (``load`` then says what is
    wrong with it), else the shipped scenario of that name."""
    path = Path(text)
    looks_like_name = "/" not in text and path.suffix not in (".yaml", ".yml")
    if path.is_file() or not looks_like_name:
        return path
    if (SHIPPED_DIR / f"{text}.yaml").is_file():
        return SHIPPED_DIR / f"{text}.yaml"
    raise ScenarioError([f"{text}: no such scenario file, and no shipped scenario of that name; shipped "
                         f"scenarios (by name): {', '.join(shipped())}"])
