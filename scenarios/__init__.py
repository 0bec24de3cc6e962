"""Scenarios: YAML files describing a run, and the runner behind ``hil run``.

- schema.py: the file format, validated into dataclasses (checker.py reads
  typed values and collects ``file:line: field: problem`` errors on
  ``bus/yamlsource.py``, which parses YAML keeping each value's line)
- launch.py: each node's command line for a target
- monitor.py: what the runner sees on the bus, reduced to figures
- goals.py: the goal sequence, judged on the robot's clock
- compat.py: do the policy and the robot agree on the arm?
- assertions.py: verdicts from what was observed
- report.py, provenance.py: report.json, junit.xml, the summary table
- runner.py: one run, top to bottom (its node processes on bus/processes.py);
  sweep.py: a matrix of runs
- sweep_stats.py, stats.py, wrap_table.py: what a sweep adds up to (success
  rates with Wilson intervals, spreads, failures by reason, the
  success_rate gate): summary.json, one junit.xml, the tables
- cell_command.py: a cell's ``hil run`` command line, for every executor
- executors.py, sweep_ray.py, ray_session.py, ray_cells.py: cells as Ray
  tasks (optional extra); bench_resources.py: arms as Ray resources
- progress.py: the status line

docs/scenarios.md is the reference of the file format and the outputs.
"""
