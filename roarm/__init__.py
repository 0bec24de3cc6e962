"""What the project knows about the Waveshare RoArm-M3 itself: joints, limits,
named poses and kinematics (see docs/roarm_m3.md). Numpy only, but for
robot_client.py: the robot's services, typed, on the bus."""
