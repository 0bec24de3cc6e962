"""Bring-your-own-policy interface: what a model trained elsewhere observes and drives.

- description.py: the policy description (policy.yaml, MODEL.onnx.yaml or
  roarm.* ONNX metadata), validated with file:line: field errors
- fields.py: the typed readers behind that validation
- observation.py: measured state + goal + last action -> the model's input vector
- action.py: the model's raw output -> six joint targets in bus order
- recurrent.py: recurrent state carried between steps, zeroed on reset
- isaaclab.py: an Isaac Lab rsl_rl run folder -> a policy folder
"""
