"""The repository stands alone: every link in the docs and every docs/ file named in code resolves inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")
DOC_NAME = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.md\b")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def test_markdown_links_resolve() -> None:
    broken = []
    for doc in tracked("*.md"):
        for target in LINK.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_every_docs_file_named_anywhere_exists() -> None:
    missing = []
    for path in tracked("*.py", "*.md", "*.proto", "*.yaml", "*.xml", "Makefile", ".ci/run"):
        for name in set(DOC_NAME.findall(path.read_text(errors="replace"))):
            if not (ROOT / name).exists():
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, missing


def test_nothing_points_outside_the_repository() -> None:
    outside = [f"{p.relative_to(ROOT)}" for p in tracked() if p.suffix not in {".onnx", ".mcap", ".png"}
               and p.name != "test_docs_links.py" and re.search(r"\.\./shared|/work/shared|\bDESIGN\.md|\bROARM_M3\.md",
                                                                 p.read_text(errors="replace"))]
    assert not outside, outside
