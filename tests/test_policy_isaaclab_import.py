"""Isaac Lab rsl_rl run folder -> policy folder, from params written exactly as Isaac Lab's dump_yaml writes them.

tests/data/isaaclab_roarm_reach/params/ holds the public isaac_roarm_m3 reach
task's env.yaml and agent.yaml: class_to_dict of the configs dumped with
``yaml.dump(data, default_flow_style=False, sort_keys=False)``, python tags,
anchors and all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from policy_node.policy import description as d
from policy_node.policy.action import ActionMapper
from policy_node.policy.isaaclab import (
    DEFAULT_ROOT_BODY,
    IsaacLabImportError,
    IsaacLabLoader,
    import_isaaclab,
    load_yaml,
)
from policy_node.policy.base import Goal
from policy_node.policy.observation import ObservationBuilder
from tests import byo_onnx

FIXTURE = Path(__file__).resolve().parent / "data" / "isaaclab_roarm_reach"
ARM = ["base_link_to_link1", "link1_to_link2", "link2_to_link3", "link3_to_link4", "link4_to_link5"]
DEFAULT = {"base_link_to_link1": 0.047, "link1_to_link2": 0.704, "link2_to_link3": 0.228, "link3_to_link4": 1.095,
           "link4_to_link5": -0.046, "link5_to_gripper_link": 0.168}


@pytest.fixture
def isaac_run(tmp_path: Path) -> Path:
    """A run folder: the fixture's params plus an exported ELU MLP actor (obs [1, 24] -> actions [1, 5])."""
    run = tmp_path / "logs" / "rsl_rl" / "roarm_m3_reach" / "2026-02-20_15-30-43"
    shutil.copytree(FIXTURE, run)
    (run / "exported").mkdir()
    byo_onnx.mlp(run / "exported" / "policy.onnx", 24, 5, seed=7)
    return run


def edit(run: Path, name: str, old: str, new: str) -> None:
    path = run / "params" / name
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_fixture_is_what_stock_loaders_refuse() -> None:
    """Why the importer has its own loader: safe_load refuses the tuples, full_load the slices."""
    text = (FIXTURE / "params" / "env.yaml").read_text()
    assert "!!python/tuple" in text and "!!python/object/apply:builtins.slice" in text
    with pytest.raises(yaml.constructor.ConstructorError, match="python/tuple"):
        yaml.safe_load(text)
    with pytest.raises(yaml.constructor.ConstructorError, match="builtins.slice"):
        yaml.full_load(text)


def test_python_tags_load_as_plain_data() -> None:
    env = load_yaml(FIXTURE / "params" / "env.yaml")
    assert env["sim"]["gravity"] == [0.0, 0.0, -9.81]
    assert env["rewards"]["joint_vel"]["params"]["asset_cfg"]["joint_ids"] == "slice(None,None,None)"
    assert env["observations"]["policy"]["pose_command"]["func"] == "isaaclab.envs.mdp.observations:generated_commands"


def test_the_loader_never_constructs_or_calls_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"""\
a: !!python/object/apply:os.system ["touch {marker}"]
b: !!python/object/new:subprocess.Popen [["touch", "{marker}"]]
c: !!python/name:os.system
d: !!python/object:collections.OrderedDict {{x: 1}}
e: !!python/module:os
"""
    data = yaml.load(text, Loader=IsaacLabLoader)  # noqa: S506 - the loader under test is a SafeLoader
    assert not marker.exists()
    assert data == {"a": [f"touch {marker}"], "b": [["touch", str(marker)]], "c": "os.system", "d": {"x": 1}, "e": "os"}
    assert issubclass(IsaacLabLoader, yaml.SafeLoader)


def test_the_reach_run_imports_to_the_expected_description(isaac_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "policy"
    desc = import_isaaclab(isaac_run, out)
    assert DEFAULT_ROOT_BODY == "world"
    assert (out / "policy.onnx").read_bytes() == (isaac_run / "exported" / "policy.onnx").read_bytes()
    assert desc.observation_size == 24
    assert desc.layout() == [(0, 6, "joint_pos (joint_pos_rel)"), (6, 12, "joint_vel (joint_vel_rel)"),
                             (12, 19, "pose_command (goal_pose)"), (19, 24, "actions (last_action)")]
    rel, vel, pose, last = desc.observation
    assert rel.joints == (0, 1, 2, 3, 4, 5) and vel.joints == (0, 1, 2, 3, 4, 5)
    assert (pose.body, pose.frame, pose.quat_order) == ("gripper_link", "world", "wxyz")
    assert last.size == 5
    assert list(desc.joints) == ARM and desc.action_size == 5
    assert desc.action == d.ActionSpec("offset", (0.5,) * 5, (0.0,) * 5, None, "default")
    assert desc.period == pytest.approx(1 / 30)
    assert desc.default_pose == tuple(DEFAULT.values())
    assert (desc.model.input, desc.model.output, desc.model.batch) == ("obs", "actions", "fixed")
    assert desc.normalize is None and desc.recurrent == ()
    assert desc.provenance["root_body"] == "world"
    # The folder stands alone: loading it again gives the same description.
    again = d.load(out)
    assert again == desc
    assert (out / "policy.yaml").read_text().startswith("# Imported from the Isaac Lab run")


def test_the_imported_policy_runs_on_its_own_layout(isaac_run: Path, tmp_path: Path) -> None:
    desc = import_isaaclab(isaac_run, tmp_path / "policy")
    session = byo_onnx.session(desc.model.path)
    builder, mapper = ObservationBuilder(desc), ActionMapper(desc)
    q = np.array(list(DEFAULT.values()))
    goal = Goal(np.array([0.05, -0.2, 0.15]))
    x = builder.build(q, np.zeros(6), mapper.last_action, goal)
    np.testing.assert_allclose(x[0], np.concatenate([np.zeros(12), goal.position, [1, 0, 0, 0], np.zeros(5)]), atol=1e-7)
    raw = session.run([desc.model.output], {desc.model.input: x})[0]
    targets = mapper(raw, q)
    np.testing.assert_allclose(targets[:5], q[:5] + 0.5 * raw[0], rtol=1e-6)
    assert targets[5] == pytest.approx(0.168)


def test_root_body_base_link_gives_goals_in_the_base_frame(isaac_run: Path, tmp_path: Path) -> None:
    desc = import_isaaclab(isaac_run, tmp_path / "policy", root_body="base_link")
    assert desc.observation[2].frame == "base"
    x = ObservationBuilder(desc).build(np.zeros(6), np.zeros(6), np.zeros(5), Goal(np.array([0.1, 0.0, 0.2])))
    np.testing.assert_allclose(x[0, 12:15], [0.1, 0.0, 0.2 - 0.0701], atol=1e-7)
    with pytest.raises(IsaacLabImportError, match="root body 'base'"):
        import_isaaclab(isaac_run, tmp_path / "other", root_body="base")


def test_clip_actions_scale_and_offset_maps(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "agent.yaml", "clip_actions: null", "clip_actions: 1.0")
    edit(isaac_run, "env.yaml", "    scale: 0.5\n    offset: 0.0\n    preserve_order: false\n    use_default_offset: true",
         "    scale:\n      link[12]_to_.*: 0.25\n    offset: 0.1\n    preserve_order: false\n    use_default_offset: false")
    desc = import_isaaclab(isaac_run, tmp_path / "policy")
    assert desc.action == d.ActionSpec("absolute", (1.0, 0.25, 0.25, 1.0, 1.0), (0.1,) * 5, (-1.0, 1.0), "default")


def test_joint_regexes_resolve_in_articulation_order_unless_preserved(isaac_run: Path, tmp_path: Path) -> None:
    names = "    joint_names:\n    - base_link_to_link1\n    - link1_to_link2\n    - link2_to_link3\n    - link3_to_link4\n    - link4_to_link5\n"
    edit(isaac_run, "env.yaml", names, "    joint_names:\n    - link4_to_link5\n    - link[1-3]_to_link[2-4]\n    - base_.*\n")
    assert list(import_isaaclab(isaac_run, tmp_path / "a").joints) == ARM
    edit(isaac_run, "env.yaml", "    preserve_order: false\n    use_default_offset", "    preserve_order: true\n    use_default_offset")
    desc = import_isaaclab(isaac_run, tmp_path / "b")
    assert list(desc.joints) == ["link4_to_link5", "link1_to_link2", "link2_to_link3", "link3_to_link4", "base_link_to_link1"]
    assert desc.joint_index == (4, 1, 2, 3, 0)


def test_init_state_regexes_set_the_default_pose(isaac_run: Path, tmp_path: Path) -> None:
    old = ("      joint_pos:\n        base_link_to_link1: 0.047\n        link1_to_link2: 0.704\n        link2_to_link3: 0.228\n"
           "        link3_to_link4: 1.095\n        link4_to_link5: -0.046\n        link5_to_gripper_link: 0.168\n")
    edit(isaac_run, "env.yaml", old, "      joint_pos:\n        link[2-3]_to_.*: 0.5\n        link5_.*: 0.1\n")
    desc = import_isaaclab(isaac_run, tmp_path / "policy")
    assert desc.default_pose == (0.0, 0.0, 0.5, 0.5, 0.0, 0.1)


def test_observation_scale_and_clip_carry_over(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "      clip: null\n      scale: null\n      history_length: 0\n      flatten_history_dim: true\n"
                                "    pose_command:",
         "      clip: !!python/tuple\n      - -5.0\n      - 5.0\n      scale: 0.05\n      history_length: 0\n"
         "      flatten_history_dim: true\n    pose_command:")
    desc = import_isaaclab(isaac_run, tmp_path / "policy")
    assert desc.observation[1].clip == (-5.0, 5.0) and desc.observation[1].scale == (0.05,) * 6


def test_a_missing_export_says_to_run_play(isaac_run: Path, tmp_path: Path) -> None:
    (isaac_run / "exported" / "policy.onnx").unlink()
    with pytest.raises(IsaacLabImportError, match=r"exported/policy.onnx: missing: run Isaac Lab's play.py"):
        import_isaaclab(isaac_run, tmp_path / "policy")
    assert not (tmp_path / "policy").exists()


def test_missing_params_and_run_folder(isaac_run: Path, tmp_path: Path) -> None:
    (isaac_run / "params" / "agent.yaml").unlink()
    with pytest.raises(IsaacLabImportError, match="agent.yaml: missing: it holds clip_actions"):
        import_isaaclab(isaac_run, tmp_path / "policy")
    with pytest.raises(IsaacLabImportError, match="no such run folder"):
        import_isaaclab(tmp_path / "nowhere", tmp_path / "policy")


def line_of(run: Path, text: str) -> int:
    return (run / "params" / "env.yaml").read_text().splitlines().index(text) + 1


def test_an_unmappable_observation_term_is_named_with_its_line(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "    actions:\n      func: isaaclab.envs.mdp.observations:last_action",
         "    ee_frame:\n      func: isaaclab.envs.mdp.observations:body_pose_w\n      params: {}\n"
         "    actions:\n      func: isaaclab.envs.mdp.observations:last_action")
    line = line_of(isaac_run, "      func: isaaclab.envs.mdp.observations:body_pose_w")
    with pytest.raises(IsaacLabImportError) as caught:
        import_isaaclab(isaac_run, tmp_path / "policy")
    env = isaac_run / "params" / "env.yaml"
    assert any(e.startswith(f"{env}:{line}: observations.policy.ee_frame.func: observation term 'ee_frame' "
                            "(isaaclab.envs.mdp.observations:body_pose_w) has no equivalent") for e in caught.value.errors), \
        caught.value.errors
    assert not (tmp_path / "policy").exists()


def test_a_disabled_term_is_skipped_and_a_custom_one_refused(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "    actions:\n      func: isaaclab.envs.mdp.observations:last_action",
         "    height_scan: null\n    actions:\n      func: isaaclab.envs.mdp.observations:last_action")
    assert import_isaaclab(isaac_run, tmp_path / "a").observation_size == 24
    edit(isaac_run, "env.yaml", "func: isaaclab.envs.mdp.observations:joint_vel_rel", "func: my_task.mdp:joint_vel_rel")
    with pytest.raises(IsaacLabImportError, match=r"observations.policy.joint_vel.func: .*my_task.mdp:joint_vel_rel"):
        import_isaaclab(isaac_run, tmp_path / "b")


def test_other_action_terms_and_commands_are_clear_errors(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "  gripper_action: null",
         "  gripper_action:\n    class_type: isaaclab.envs.mdp.actions.binary_joint_actions:BinaryJointPositionAction\n"
         "    asset_name: robot\n    joint_names:\n    - link5_to_gripper_link")
    with pytest.raises(IsaacLabImportError, match=r"actions.gripper_action: action term 'gripper_action' is "
                                                  r".*BinaryJointPositionAction: only JointPositionAction"):
        import_isaaclab(isaac_run, tmp_path / "a")


def test_a_velocity_command_and_an_unknown_body_are_refused(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "    body_name:\n    - gripper_link", "    body_name:\n    - finger_link")
    with pytest.raises(IsaacLabImportError, match=r"commands.ee_pose.body_name: body 'finger_link' is not a link"):
        import_isaaclab(isaac_run, tmp_path / "a")
    edit(isaac_run, "env.yaml", "isaaclab.envs.mdp.commands.pose_command:UniformPoseCommand",
         "isaaclab.envs.mdp.commands.velocity_command:UniformVelocityCommand")
    with pytest.raises(IsaacLabImportError, match=r"commands.ee_pose.class_type: .*only a pose command"):
        import_isaaclab(isaac_run, tmp_path / "b")


def test_a_joint_regex_that_matches_nothing(isaac_run: Path, tmp_path: Path) -> None:
    edit(isaac_run, "env.yaml", "    - link4_to_link5\n    scale: 0.5", "    - wrist_roll\n    scale: 0.5")
    with pytest.raises(IsaacLabImportError, match=r"actions.arm_action.joint_names\[4\]: 'wrist_roll' matches none"):
        import_isaaclab(isaac_run, tmp_path / "a")


def test_a_model_of_another_layout_is_refused(isaac_run: Path, tmp_path: Path) -> None:
    byo_onnx.mlp(isaac_run / "exported" / "policy.onnx", 30, 6)
    with pytest.raises(IsaacLabImportError) as caught:
        import_isaaclab(isaac_run, tmp_path / "a")
    text = str(caught.value)
    assert "input 'obs' takes 30 values, the observation group 'policy' has 24 (joint_pos 6, joint_vel 6, " \
           "pose_command 7, actions 5)" in text
    assert "output 'actions' has 6 values, the action terms drive 5 joints" in text


def test_an_observation_group_that_is_not_there(isaac_run: Path, tmp_path: Path) -> None:
    with pytest.raises(IsaacLabImportError, match=r"no observation group 'critic' \(groups: policy\)"):
        import_isaaclab(isaac_run, tmp_path / "a", group="critic")
