"""``hil node camera``: a USB camera or a video file publishing frames as the run's camera role."""

from __future__ import annotations

from pathlib import Path

import click

from bus.cli_options import HilCommand, endpoint_options, load_endpoints
from camera_node.node import CameraConfig, CameraNode, CameraOpenError
from roarm.camera import ENCODINGS, CameraSpec, CameraSpecError


@click.command("camera", cls=HilCommand)
@click.option("--device", required=True, help="V4L2 device (/dev/video0), camera index (0) or a video file.")
@click.option("--name", default="camera", show_default=True,
              help="Camera name: its topics are camera/NAME/image|compressed|calibration (a-z, 0-9, _).")
@click.option("--width", type=int, default=640, show_default=True, help="Frame width published (px).")
@click.option("--height", type=int, default=480, show_default=True, help="Frame height published (px).")
@click.option("--rate", type=float, default=30.0, show_default=True, help="Frames per second.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="raw", show_default=True,
              help="raw (RawImage rgb8), jpeg or png (CompressedImage).")
@click.option("--fov", type=float, default=60.0, show_default=True,
              help="Vertical field of view (degrees) for the published calibration.")
@click.option("--loop/--no-loop", default=True, show_default=True, help="A video file starts over at its end.")
@click.option("--node-name", default="camera", show_default=True, help="Node name in heartbeats, events and info.")
@endpoint_options
def camera(device: str, name: str, width: int, height: int, rate: float, encoding: str, fov: float, loop: bool,
           node_name: str, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Publish a real camera's frames (host timestamps, no robot step) until Ctrl-C or shutdown.

    Frames are resized to --width x --height when the device delivers
    another size. A video file as --device plays at --rate, in a loop.

    \b
    Examples:
      hil node camera --device /dev/video0 --name wrist --width 640 --height 480 --rate 30 --encoding jpeg
      hil node camera --device clip.mp4 --name wrist --run-dir /tmp/run1
    """
    try:
        spec = CameraSpec(name=name, width=width, height=height, fov_deg=fov, encoding=encoding, device=device,
                          rate_hz=rate)
    except CameraSpecError as exc:
        raise click.UsageError(str(exc)) from None
    endpoints = load_endpoints(run_dir, endpoints_file)
    try:
        node = CameraNode(CameraConfig(spec, node_name=node_name, loop=loop), endpoints)
    except CameraOpenError as exc:
        raise click.UsageError(f"cannot open the camera: {exc}") from None
    node.node.install_signal_handlers()
    node.run()
