from __future__ import annotations

from pathlib import Path

import pytest

from bus.endpoints import ROLES, EndpointError, Endpoints, resolve


def test_ipc_endpoints_live_in_the_run_folder(tmp_path: Path) -> None:
    eps = Endpoints.ipc(tmp_path)
    for role in ROLES:
        assert eps[role].pub == f"ipc://{tmp_path.resolve()}/{role}.pub"
        assert eps[role].rep.endswith(f"/{role}.rep")


def test_for_run_writes_once_and_reads_back(tmp_path: Path) -> None:
    first = Endpoints.for_run(tmp_path)
    assert (tmp_path / "endpoints.json").exists()
    assert Endpoints.for_run(tmp_path) == first


def test_tcp_file_overrides_run_folder(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    Endpoints.tcp("127.0.0.1", 6000).save(path)
    eps = resolve(tmp_path / "run", path)
    assert eps["robot"].pub == "tcp://127.0.0.1:6000"
    assert eps["policy"].rep == "tcp://127.0.0.1:6003"


def test_unknown_role_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(EndpointError, match="known: camera, policy, recorder, robot, runner"):
        Endpoints.ipc(tmp_path)["arm"]


def test_too_long_ipc_path_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(EndpointError, match="shorter --run-dir"):
        Endpoints.ipc(tmp_path / ("x" * 120))


def test_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    path.write_text('{"robot": {"pub": 3}}')
    with pytest.raises(EndpointError, match="cannot read endpoints"):
        Endpoints.load(path)
    path.write_text('{"robot": {"pub": "http://x", "rep": "ipc:///tmp/r"}}')
    with pytest.raises(EndpointError, match="not an ipc://"):
        Endpoints.load(path)


def test_a_second_node_cannot_steal_a_live_ipc_endpoint(tmp_path: Path) -> None:
    import zmq

    from bus.sockets import make_socket

    ctx = zmq.Context()
    endpoint = f"ipc://{tmp_path}/robot.rep"
    first = make_socket(ctx, zmq.REP, endpoint, bind=True)
    with pytest.raises(zmq.ZMQError, match="a live process is bound there"):
        make_socket(ctx, zmq.REP, endpoint, bind=True)
    first.close(0)
    # the file a dead node leaves behind is fine to bind over
    make_socket(ctx, zmq.REP, endpoint, bind=True).close(0)
    ctx.term()
