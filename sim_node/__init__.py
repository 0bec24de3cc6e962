"""The simulated RoArm-M3: one backend interface (mock, mujoco, isaac) and a
bus node around it. Backends import their simulator lazily, so importing this
package costs nothing beyond numpy."""
