"""Scenarios: YAML files describing a run, and the runner behind ``hil run``.

schema.py validates a file into dataclasses; supervisor.py starts and stops
node processes; monitor.py watches the bus during a run; assertions.py judges
what was seen; report.py writes report.json, junit.xml and the summary table;
runner.py is the run loop; sweep.py runs a matrix of seeds and targets.
"""
