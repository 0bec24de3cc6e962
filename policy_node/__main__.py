"""``python -m policy_node``: the same command as ``hil node policy``.

For interpreters where the ``hil`` script is not installed, and for the
benchmark, which starts nodes with its own interpreter.
"""

from policy_node.cli import policy

if __name__ == "__main__":
    policy(prog_name="python -m policy_node")
