"""Policies shipped with roarm-hil, installed as package data beside ``scenarios``.

Model files (``reach.onnx``) and example policy folders, one per kind of
policy a user may bring (docs/policies.md, "Bringing your policy"): an
Isaac Lab run folder and its imported policy, a Stable-Baselines3 export, a
plain ONNX with a hand-written ``policy.yaml``, a Python policy
(``policies.python_ik.policy:make_policy``) and a C program that speaks the
bus contract. The shipped scenarios name them relative to themselves
(``../policies/...``), which holds in a checkout and in an installed wheel.
"""
