"""The policy node: ONNX and scripted policies on the bus, with a watchdog and latency SLA.

Two things live here:

- ``policy_node.policy``: the policy library (Policy API, policy
  descriptions, observation and action adapters, the compatibility rule,
  ONNX and scripted policies, ``load_policy``), usable in-process without
  any bus;
- the node itself (node.py, cli.py, watchdog.py, metrics.py, event_log.py),
  which wraps a policy with sockets, the watchdog and metrics.

Training the reach model lives in ``tools/training`` (it drives a simulator).
"""
