"""``hil bus``: look at a running bus (echo, hz, ping, info)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from pathlib import Path

import click
import numpy as np
import zmq
from google.protobuf import json_format, text_format

from bus.client import NodeClient
from bus.endpoints import ROLES, Endpoints
from bus.envelope import Envelope, Reject
from bus.pubsub import Subscriber
from bus.reach import why_silent
from bus.service import ServiceError, ServiceUnavailable
from bus.topics import GOAL, JOINT_STATE, PUBLISHED_BY, TOPICS, QueuePolicy
from bus.cli_options import endpoint_options, load_endpoints
from tools.info_summary import last_heartbeat, summary


# `hil bus echo` says what it waits for after this long without a message.
QUIET_S = 2.0


@click.group()
def bus() -> None:
    """Look at a running bus: echo, hz, ping, info.

    \b
    Example:
      hil bus echo robot/joint_state --count 5
    """


def _subscriber(ctx: zmq.Context, run_dir: Path | None, endpoints_file: Path | None, topic: str) -> Subscriber:
    if topic not in TOPICS:
        click.echo(f"note: {topic!r} is not a topic of the contract ({', '.join(TOPICS)})", err=True)
    endpoints = load_endpoints(run_dir, endpoints_file)

    def warn(reject: Reject) -> None:
        click.echo(f"rejected: {reject}", err=True)

    return Subscriber(ctx, [endpoints[r].pub for r in ROLES if r in endpoints.roles], [topic],
                      policy=QueuePolicy.QUEUE, on_reject=warn, security=endpoints.security_for())


def envelope_json(envelope: Envelope) -> str:
    """One JSON line per message: header fields plus the decoded payload."""
    assert envelope.message is not None
    return json.dumps(
        {
            "topic": envelope.topic,
            "seq": envelope.seq,
            "src": envelope.src,
            "type": envelope.type,
            "sent_ns": envelope.sent_ns,
            "recv_ns": envelope.recv_ns,
            "message": json_format.MessageToDict(envelope.message, preserving_proto_field_name=True),
        },
        separators=(",", ":"),
    )


def envelope_text(envelope: Envelope) -> str:
    assert envelope.message is not None
    body = text_format.MessageToString(envelope.message, as_one_line=True, float_format=".6g")
    return f"{envelope.topic} #{envelope.seq} from {envelope.src}: {body}"


@bus.command()
@click.argument("topic")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("-n", "--count", type=int, default=0, help="Exit after this many messages (0: run until Ctrl-C).")
@click.option("--timeout", type=float, default=0.0, help="Exit with status 1 after this many seconds without one.")
@endpoint_options
def echo(topic: str, as_json: bool, count: int, timeout: float, run_dir: Path | None,
         endpoints_file: Path | None) -> None:
    """Print the messages published on TOPIC, decoded, one per line.

    \b
    Examples:
      hil bus echo robot/joint_state
      hil bus echo node/event --json --count 10
    """
    ctx = zmq.Context()
    sub = _subscriber(ctx, run_dir, endpoints_file, topic)
    seen = 0
    started = time.monotonic()
    told = False
    try:
        while count == 0 or seen < count:
            # Wake after QUIET_S without a message to say what we wait for (once).
            waits = [QUIET_S - (time.monotonic() - started)] if not told and seen == 0 else []
            if timeout > 0:
                waits.append(started + timeout - time.monotonic() if seen == 0 else timeout)
            envelope = sub.recv(int(max(0.0, min(waits)) * 1000) if waits else -1)
            if envelope is None:
                timed_out = timeout > 0 and (seen > 0 or time.monotonic() - started >= timeout)
                if not told and seen == 0 and not timed_out:
                    told = True
                    click.echo(waiting_note(ctx, load_endpoints(run_dir, endpoints_file), topic), err=True)
                    continue
                raise click.ClickException(f"no message on {topic} within {timeout} s")
            click.echo(envelope_json(envelope) if as_json else envelope_text(envelope))
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        ctx.term()


def waiting_note(ctx: zmq.Context, endpoints: Endpoints, topic: str) -> str:
    """What ``echo`` waits for when nothing came: the topic, the endpoints it
    listens on, and whether the publishing node answers ping (and if not, why)."""
    roles = [r for r in PUBLISHED_BY.get(topic, ROLES) if r in endpoints.roles]
    lines = [f"waiting for {topic}: nothing in {QUIET_S:g} s from "
             + ", ".join(f"{r} at {endpoints[r].pub}" for r in roles)]
    security = endpoints.security_for()
    for role in roles:
        client = NodeClient(ctx, endpoints[role].rep, "hil-cli", timeout_s=0.5, retries=1, security=security)
        try:
            reply = client.ping()
            lines.append(f"  {role}: {reply.node} answers ping (up {reply.uptime_s:.1f} s) but has sent nothing "
                         f"on {topic} yet" + _idle_hint(topic))
        except ServiceError as exc:
            lines.append(f"  {role}: answers, but not to ping: {exc}")
        except ServiceUnavailable:
            lines.append(f"  {role}: does not answer ping: {why_silent(ctx, endpoints[role].rep, security, role)}")
        finally:
            client.close()
    return "\n".join(lines)


def _idle_hint(topic: str) -> str:
    if topic == JOINT_STATE:
        return " (a lockstep robot publishes only after a reset and then only as its policy answers)"
    if topic == GOAL:
        return " (goals come from `hil run` or `hil goal send`)"
    return ""


@bus.command()
@click.argument("topic")
@click.option("--window", type=int, default=1000, show_default=True, help="Intervals the figures are taken over.")
@click.option("--period", type=float, default=1.0, show_default=True, help="Seconds between reports.")
@click.option("--duration", type=float, default=0.0, help="Exit after this many seconds (0: run until Ctrl-C).")
@endpoint_options
def hz(topic: str, window: int, period: float, duration: float, run_dir: Path | None,
       endpoints_file: Path | None) -> None:
    """Print the rate of TOPIC and min/max/std of its intervals.

    \b
    Example:
      hil bus hz robot/joint_state --duration 5
    """
    ctx = zmq.Context()
    sub = _subscriber(ctx, run_dir, endpoints_file, topic)
    intervals: deque[float] = deque(maxlen=window)
    last: int | None = None
    start = time.monotonic()
    next_report = start + period
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            envelope = sub.recv(int(max(0.0, next_report - time.monotonic()) * 1000) + 1)
            if envelope is not None:
                if last is not None:
                    intervals.append((envelope.recv_ns - last) / 1e9)
                last = envelope.recv_ns
            if time.monotonic() >= next_report:
                next_report += period
                click.echo(_rate_line(topic, intervals))
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        ctx.term()


def _rate_line(topic: str, intervals: deque[float]) -> str:
    if not intervals:
        return f"{topic}: no messages"
    data = np.fromiter(intervals, dtype=float)
    mean = float(data.mean())
    rate = 1.0 / mean if mean > 0 else math.inf
    return (
        f"{topic}: {rate:.1f} Hz  min {data.min() * 1e3:.3f} ms  max {data.max() * 1e3:.3f} ms  "
        f"std {data.std() * 1e3:.3f} ms  window {data.size}"
    )


def _client(ctx: zmq.Context, run_dir: Path | None, endpoints_file: Path | None, role: str,
            timeout: float) -> NodeClient:
    endpoints = load_endpoints(run_dir, endpoints_file)
    if role not in endpoints.roles:
        raise click.BadParameter(f"unknown role {role!r}; roles: {', '.join(endpoints.roles)}")
    return NodeClient(ctx, endpoints[role].rep, "hil-cli", timeout_s=timeout, retries=1,
                      security=endpoints.security_for())


@bus.command()
@click.argument("role", type=click.Choice(ROLES))
@click.option("-n", "--count", type=int, default=1, show_default=True, help="Pings to send.")
@click.option("--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait for each answer.")
@endpoint_options
def ping(role: str, count: int, timeout: float, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Ask the node of ROLE whether it is alive; exit 1 if it does not answer.

    \b
    Example:
      hil bus ping robot --count 3
    """
    ctx = zmq.Context()
    client = _client(ctx, run_dir, endpoints_file, role, timeout)
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                reply = client.ping()
            except ServiceUnavailable as exc:
                raise click.ClickException(f"{exc}\n{why_silent(ctx, client.endpoint, client.security, role)}") \
                    from None
            rtt = (time.perf_counter() - t0) * 1e3
            click.echo(f"{role}: {reply.node} schema {reply.schema_version} up {reply.uptime_s:.1f} s, "
                       f"round trip {rtt:.3f} ms")
    finally:
        client.close()
        ctx.term()


@bus.command()
@click.argument("role", type=click.Choice(ROLES))
@click.option("--json", "as_json", is_flag=True, help="Print the NodeInfo as JSON.")
@click.option("--raw", is_flag=True, help="Print the whole NodeInfo as protobuf text (every metric, every fact).")
@click.option("--timeout", type=float, default=1.0, show_default=True)
@endpoint_options
def info(role: str, as_json: bool, raw: bool, timeout: float, run_dir: Path | None,
         endpoints_file: Path | None) -> None:
    """Print what the node of ROLE says about itself: role, backend, joints and
    limits, period, health, and the counters that are not zero.

    \b
    Examples:
      hil bus info robot
      hil bus info policy --raw        # everything, as protobuf text
      hil bus info policy --json
    """
    ctx = zmq.Context()
    client = _client(ctx, run_dir, endpoints_file, role, timeout)
    endpoints = load_endpoints(run_dir, endpoints_file)
    try:
        reply = client.info()
        heartbeat = None if raw or as_json else last_heartbeat(ctx, endpoints, role)
    except ServiceUnavailable as exc:
        raise click.ClickException(f"{exc}\n{why_silent(ctx, client.endpoint, client.security, role)}") from None
    finally:
        client.close()
        ctx.term()
    if as_json:
        click.echo(json_format.MessageToJson(reply, preserving_proto_field_name=True))
    elif raw:
        sys.stdout.write(text_format.MessageToString(reply))
    else:
        click.echo(summary(reply, heartbeat))
