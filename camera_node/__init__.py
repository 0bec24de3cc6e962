"""A real camera on the bus (``hil node camera``): a USB camera or a video file through OpenCV.

Modules: ``node`` (the loop: grab, stamp, publish as roarm.camera_role does
for the sim's cameras), ``cli``. No camera was at hand where this was built:
it is tested on video files written by OpenCV (tests/test_camera_node.py).
"""
