"""The policy library: usable in-process without any bus.

Imports run one way, from the top of this list to the bottom:

- load.py: ``load_policy(source)``, a ``.onnx`` path, ``scripted:NAME`` or ``module:factory``
- onnx_model.py: ``OnnxPolicy``, an ONNX file run through onnxruntime
- scripted.py: ``hold``, ``waypoints``, ``ik`` behind the same interface
- python.py: a user's Python object (``reset()``/``act(obs)``) behind it: the stable Python policy API
- features.py: observation -> model input, model output -> joint targets
- base.py: the Policy API (``Observation``, ``Policy``, goal helpers)
- spec.py: ``PolicySpec``, what a policy was made for, and the check against a robot

The node (``policy_node.node``), ``hil bag check-policy`` and training
(``tools/training``) all import it; it imports none of them.
"""
