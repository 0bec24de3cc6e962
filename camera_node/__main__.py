"""``python -m camera_node``: the same command as ``hil node camera``."""

from camera_node.cli import camera

if __name__ == "__main__":
    camera(prog_name="python -m camera_node")
