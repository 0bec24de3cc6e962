"""Training policies offline: the reach model and the in-process rollouts it learns from.

It sits with the tools because it drives a simulator backend (``sim_node``)
with a policy (``policy_node.policy``) in one process; neither node package
imports it.
"""
