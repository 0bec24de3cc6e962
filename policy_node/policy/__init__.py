"""The policy library: usable in-process without any bus.

Imports run one way, from the top of this list to the bottom:

- load.py: ``load_policy(source)``: a model file, a policy folder, a
  ``policy.yaml``/``MODEL.onnx.yaml``, ``scripted:NAME`` or ``module:factory``
- onnx_model.py: ``OnnxPolicy``, an ONNX file run through onnxruntime as its
  description says (tensor names, batch, dtype checked once, in words)
- see_reach.py: ``scripted:see_reach``, a reach policy that finds its goal
  in a camera's frames
- scripted.py: ``hold``, ``waypoints``, ``ik`` behind the same interface
- python.py: a user's Python object (``reset()``/``act(obs)``) behind it:
  the stable Python policy API
- features.py: a ``PolicySpec``'s vector and action mapping for training,
  by the same builder and mapper the node uses
- spec.py: ``PolicySpec``, the ``roarm.*`` ONNX metadata training writes
- observation.py: ``ObservationBuilder``, measured state + goal + last
  action -> the model's input
- action.py: ``ActionMapper``, the model's output -> six joint targets
- recurrent.py: ``RecurrentState``, carried between steps, zeroed on reset
- base.py: the Policy API (``Observation``, ``Goal``, ``Policy``, goal helpers)
- compat.py: ``check_fit``, the one rule a policy and a robot must meet
  (node, runner, inspect), and ``goal_kinds_observed``
- isaaclab.py: an Isaac Lab rsl_rl run folder -> a policy folder
- description.py: ``PolicyDescription`` from ``policy.yaml``,
  ``MODEL.onnx.yaml`` or ``roarm.*`` metadata (one validator, file:line:
  field errors); fields.py: its typed readers

The node (``policy_node.node``), ``hil policy``, ``hil bag check-policy`` and
training (``tools/training``) all import it; it imports none of them.
"""
