"""``python -m sim_node``: the same command as ``hil node sim``.

This is how Isaac Sim's interpreter starts the node (``./python.sh -m
sim_node --backend isaac ...``), where the ``hil`` script is not installed.
"""

from sim_node.cli import sim

if __name__ == "__main__":
    sim(prog_name="python -m sim_node")
