"""The policy node: ONNX and scripted policies on the bus, with a watchdog and latency SLA.

The Policy API (``policy_node.policy``) is usable in-process without any bus;
the node (``policy_node.node``) wraps it with sockets, the watchdog and metrics.
"""
