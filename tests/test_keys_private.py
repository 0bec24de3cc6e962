"""Keys stay private: never unignored in a git work tree, 0600 in 0700, a
warning for an exposed secret, and a ping without keys that says keys may be
missing. Real git, real node processes, real CURVE."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import zmq

from bus.endpoints import ROLES, Endpoints
from bus.security import CLIENT_IDENTITY, Security, SecurityConfig, generate_keys
from bus import processes
from bus.client import NodeClient
from schemas import services_pb2
from tests.conftest import HIL, Procs
from tests.test_security import free_base_port

GIT = shutil.which("git")


def _hil(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_keys_in_a_git_work_tree_are_refused_then_ignored_with_force(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([GIT, "init", "-q", str(repo)], check=True)
    refused = _hil("keys", "generate", "keys/", cwd=repo)
    assert refused.returncode != 0
    assert "git work tree" in refused.stderr and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert not (repo / "keys" / "private").exists(), "nothing secret may be written when refused"

    made = _hil("keys", "generate", "keys/", "--force", cwd=repo)
    assert made.returncode == 0, made.stderr
    assert "private/" in (repo / "keys" / ".gitignore").read_text()
    assert _mode(repo / "keys" / "private") == 0o700
    secrets = sorted((repo / "keys" / "private").iterdir())
    assert [p.name for p in secrets] == sorted(f"{n}.key_secret" for n in [*ROLES, CLIENT_IDENTITY])
    assert all(_mode(p) == 0o600 for p in secrets)
    # git agrees: every secret is ignored, the public keys are not
    subprocess.run([GIT, "-C", str(repo), "add", "-A"], check=True)
    staged = subprocess.run([GIT, "-C", str(repo), "diff", "--cached", "--name-only"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert "keys/public/robot.key" in staged and "keys/.gitignore" in staged
    assert not [name for name in staged if "private" in name or name.endswith("key_secret")], staged
    # a second run adds a key and keeps one rule
    more = _hil("keys", "generate", "keys/", "--name", "bench-pc", "--force", cwd=repo)
    assert more.returncode == 0, more.stderr
    assert (repo / "keys" / ".gitignore").read_text().count("private/") == 1


def test_keys_outside_a_work_tree_need_no_force(tmp_path: Path) -> None:
    made = _hil("keys", "generate", str(tmp_path / "k"))
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "k" / ".gitignore").exists()
    assert _mode(tmp_path / "k" / "private") == 0o700


def test_an_exposed_secret_warns_in_one_line_with_the_chmod(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "k"
    generate_keys(keys, ["robot"])
    Security(SecurityConfig(keys=keys), "robot").close()
    assert capsys.readouterr().err == ""
    secret = keys / "private" / "robot.key_secret"
    secret.chmod(0o644)
    Security(SecurityConfig(keys=keys), "robot").close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "WARNING" in err and f"chmod 600 {secret}" in err and "0644" in err


def test_ping_without_keys_says_keys_may_be_missing(procs: Procs, run_dir: Path, tmp_path: Path,
                                                     zctx: zmq.Context) -> None:
    keys = tmp_path / "keys"
    generate_keys(keys, [*ROLES, CLIENT_IDENTITY])
    path = run_dir / "endpoints.json"
    Endpoints.tcp("127.0.0.1", free_base_port("127.0.0.1")).save(path)
    node = procs.hil("node", "sim", "--backend", "mock", "--endpoints", str(path), "--keys", str(keys))
    endpoints = Endpoints.load(path).with_security(SecurityConfig(keys=keys))
    keyed = NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=2.0, retries=2,
                          security=endpoints.security_for(CLIENT_IDENTITY))
    processes.wait_ready(keyed.answers_ping, 60.0, what="robot")

    ok = _hil("bus", "ping", "robot", "--endpoints", str(path), "--keys", str(keys), "--timeout", "5")
    assert ok.returncode == 0, ok.stderr
    bare = _hil("bus", "ping", "robot", "--endpoints", str(path), "--timeout", "1")
    assert bare.returncode == 1
    assert "keys may be missing" in bare.stderr and "--keys" in bare.stderr, bare.stderr
    assert "Traceback" not in bare.stderr

    # someone else's client key, with the robot's true public key: refused by the node
    stranger = tmp_path / "stranger"
    generate_keys(stranger, [CLIENT_IDENTITY])
    shutil.copy(keys / "public" / "robot.key", stranger / "public" / "robot.key")
    refused = _hil("bus", "ping", "robot", "--endpoints", str(path), "--keys", str(stranger), "--timeout", "1")
    assert refused.returncode == 1 and "refused our key" in refused.stderr, refused.stderr
    # keys from another `hil keys generate`: the robot's server key does not match
    other = tmp_path / "other"
    generate_keys(other, [*ROLES, CLIENT_IDENTITY])
    mismatch = _hil("bus", "ping", "robot", "--endpoints", str(path), "--keys", str(other), "--timeout", "1")
    assert mismatch.returncode == 1 and "does not match" in mismatch.stderr, mismatch.stderr

    keyed.call("shutdown", services_pb2.ShutdownRequest(reason="test done"))
    assert node.wait(timeout=30) == 0
    keyed.close()
