"""Secret keys stay private: out of git work trees unless ignored there, and
readable by their owner only.

A CURVE secret key lets its holder command the arm. The README's first
example once wrote keys into the repository's own working tree, where one
``git add -A`` publishes them; so key generation refuses a git work tree
unless asked, and then writes an ignore rule next to the keys. A secret that
group or others can read is still used (refusing would stop a bench for a
chmod) but warned about in one line that says which chmod to run.
"""

from __future__ import annotations

import stat
from pathlib import Path

GITIGNORE = ".gitignore"
IGNORE_RULE = "private/"


def work_tree_of(path: Path) -> Path | None:
    """The git work tree ``path`` would be inside (its top folder), or None.

    Looks for ``.git`` (a folder, or the file of a worktree or submodule) in
    ``path`` and every folder above it; ``path`` need not exist yet.
    """
    for folder in (path.expanduser().absolute(), *path.expanduser().absolute().parents):
        if (folder / ".git").exists():
            return folder
    return None


def add_ignore_rule(keys: Path) -> Path:
    """``keys/.gitignore`` ignoring ``private/`` (appended to, never rewritten)."""
    path = keys / GITIGNORE
    lines = path.read_text().splitlines() if path.exists() else []
    if IGNORE_RULE not in (line.strip() for line in lines):
        header = [] if lines else ["# written by `hil keys generate`: secret keys never go into git"]
        path.write_text("\n".join([*lines, *header, IGNORE_RULE]) + "\n")
    return path


def exposed_secret_warning(path: Path) -> str | None:
    """One line when group or others may read or write ``path``, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"WARNING: secret key {path} can be read by other users (mode {mode:04o}); "
            f"run `chmod 600 {path}` (and `chmod 700 {path.parent}`)")
