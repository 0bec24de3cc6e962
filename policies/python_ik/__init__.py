"""Example: a policy written in Python (``--policy policies.python_ik.policy:make_policy``)."""
