"""``hil node hw`` (the real arm on the bus) and ``hil emulate roarm`` (its
firmware on a pseudo-terminal). Imports stay light: pyserial, numpy."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import NoReturn

import click
import numpy as np
import serial

from bus.affinity import pin
from bus.cli_options import HilCommand, cpus_option, endpoint_options, load_endpoints
from hw_node.arm import ArmConfig
from hw_node.control import ControlConfig
from hw_node.emulator import Emulator, EmulatorConfig, Fault, FaultError
from hw_node.firmware import FirmwareConfig
from hw_node.link import LinkConfig
from hw_node.node import HwConfig, HwNode
from hw_node.port_lock import PortBusyError, ensure_free


@click.command("hw", cls=HilCommand)
@click.option("--port", required=True, help="Serial device or any pyserial URL (rfc2217://, socket://, loop://).")
@click.option("--baud", type=int, default=115200, show_default=True, help="Serial baud rate.")
@click.option("--rate", type=click.FloatRange(min=1.0, max=200.0), default=25.0, show_default=True,
              help="Control rate (Hz); capped at what the link carries.")
@click.option("--deadline-ms", type=click.FloatRange(min=20.0), default=500.0, show_default=True,
              help="Hold the measured position when no command arrived for this long.")
@click.option("--max-speed", type=click.FloatRange(min=0.05, max=4.7), default=2.0, show_default=True,
              help="Joint speed limit (rad/s) between successive targets.")
@click.option("--reset-speed", type=click.FloatRange(min=0.05, max=4.7), default=0.5, show_default=True,
              help="Joint speed (rad/s) of the reset move.")
@click.option("--torque-on-exit", type=click.Choice(["keep", "off"]), default="keep", show_default=True,
              help="Torque after shutdown: keep holding, or off (the arm goes limp and may fall).")
@cpus_option
@endpoint_options
def hw(port: str, baud: int, rate: float, deadline_ms: float, max_speed: float, reset_speed: float,
       torque_on_exit: str, cpus: frozenset[int] | None, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Drive the real RoArm-M3 on a serial port as the run's robot node.

    Opens the port with DTR and RTS held low (they reset the ESP32), sets
    print mode 0, publishes robot/joint_state from T:1051 feedback and applies
    robot/joint_command as T:102, clamped to limits and speed.

    \b
    Example:
      hil node hw --port /dev/ttyUSB0 --run-dir /tmp/run1
      hil emulate roarm --link /tmp/roarm0 &   # no arm at hand
      hil node hw --port /tmp/roarm0 --rate 25 --deadline-ms 300
    """
    try:
        ensure_free(port)  # before any socket or the device is touched: refused at once
    except PortBusyError as exc:
        _refuse(str(exc))
    pin(cpus)  # before the serial reader thread and ZMQ's I/O thread start
    endpoints = load_endpoints(run_dir, endpoints_file)
    config = HwConfig(
        arm=ArmConfig(link=LinkConfig(port=port, baud=baud)),
        control=ControlConfig(rate_hz=rate, deadline_s=deadline_ms / 1000, max_velocity=tuple(np.full(6, max_speed))),
        reset_velocity=reset_speed,
        torque_on_exit=torque_on_exit,
    )
    node = HwNode(config, endpoints)
    try:
        node.connect()
    except PortBusyError as exc:  # taken between the check above and the open
        node.close()
        _refuse(str(exc))
    except (serial.SerialException, ValueError) as exc:
        node.close()
        click.echo(f"hil node hw: cannot open serial port {port!r}: {exc}", err=True)
        sys.exit(2)
    node.node.install_signal_handlers()
    node.run()


def _refuse(text: str) -> NoReturn:
    """One line on stderr and exit 2 (a set-up problem), no traceback."""
    click.echo(f"hil node hw: {text}", err=True)
    sys.exit(2)


@click.group()
def emulate() -> None:
    """Emulators of hardware, on real OS interfaces, for tests without the hardware.

    \b
    Example:
      hil emulate roarm --link /tmp/roarm0
    """


@emulate.command()
@click.option("--link", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Keep a symlink to the current pty here (it survives unplug/replug).")
@click.option("--baud", type=click.IntRange(min=0), default=115200, show_default=True,
              help="Pace input and output like this baud rate (0: as fast as possible).")
@click.option("--print-mode", type=click.Choice(["0", "1", "2"]), default="2", show_default=True,
              help="Print mode after boot: 0 quiet, 1 debug text and echoes, 2 feedback stream.")
@click.option("--legacy", is_flag=True, help="An older build: no supply voltage or torque switches in feedback.")
@click.option("--fault", "faults", multiple=True, metavar="KIND[@S][:ARG]",
              help="Scheduled fault: unplug@5:2 (away 2 s), garbage@3:4000 (bytes), unpowered@1[:S], reboot@9. "
                   "Repeatable.")
@click.option("--control", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="FIFO taking faults at run time, one per line: 'unplug 2', 'garbage 4000', "
                   "'unpowered on|off', 'reboot'.")
@click.option("--noise", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Print a line of debug text or a bare number every this many seconds (0: never).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the garbage generator.")
def roarm(link: Path | None, baud: int, print_mode: str, legacy: bool, faults: tuple[str, ...],
          control: Path | None, noise: float, seed: int) -> None:
    """Emulate the RoArm-M3 firmware on a pseudo-terminal and print its path.

    Speaks the JSON line protocol (T:102/101/105/0/999/100/210/605), prints
    boot text, moves servos at their real speed, paces bytes at the baud rate.

    \b
    Example:
      hil emulate roarm --link /tmp/roarm0 --fault garbage@5:4000 --fault unplug@10:2
      hil node hw --port /tmp/roarm0
    """
    try:
        parsed = tuple(Fault.parse(text) for text in faults)
    except FaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    config = EmulatorConfig(link=link, baud=baud, faults=parsed, control=control, seed=seed, noise_s=noise,
                            firmware=FirmwareConfig(print_mode=int(print_mode), reports_supply=not legacy))
    emulator = Emulator(config, announce=lambda text: click.echo(text, err=False))

    def stop(_signum: int, _frame: object) -> None:
        emulator.running = False

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        emulator.run()
    finally:
        emulator.close()
