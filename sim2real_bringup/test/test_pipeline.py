"""The full stack in-process: grasps with the expert, deterministic bags, safe commands."""
import dataclasses
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from sim2real_bringup.bag import BagRecorder, read_bag
from sim2real_bringup.config import load_yaml
from sim2real_bringup.pipeline import Pipeline, PipelineConfig
from sim2real_bringup.topics import qos_map
from sim2real_policy.sim.randomization import Randomizer
from sim2real_safety.audit import OutputAuditor
from sim2real_safety.cell_file import CellCalibration, CellFileError, commissioned_table


def run(tmp_path, name, seed, episodes=2):
    randomizer = Randomizer(load_yaml('randomization.yaml'), 'none')
    pipe = Pipeline(PipelineConfig.load(), lambda i: randomizer.sample(seed + i),
                    policy='expert')
    with BagRecorder(tmp_path / name, qos=qos_map()).attach(pipe.graph):
        records = pipe.run_episodes(episodes)
    pipe.close()
    return records, tmp_path / name


def test_expert_grasps_through_the_whole_stack_and_every_command_is_safe(tmp_path):
    records, bag = run(tmp_path, 'a', seed=5)
    assert [r.success for r in records] == [True, True]
    config = PipelineConfig.load()
    auditor = OutputAuditor(config.safety)
    topics = set()
    previous_end = None
    for m in read_bag(bag):
        topics.add(m.topic)
        if m.topic == '/episode/result':
            previous_end = m.time_ns
        if m.topic == '/safety/command':
            if previous_end is not None and m.time_ns > previous_end:
                auditor.previous, previous_end = None, None  # the world was reset
            assert auditor.audit((m.msg.x, m.msg.y, m.msg.z, m.msg.yaw, m.msg.gripper_width),
                                 m.time_ns) == []
    assert auditor.outputs > 500
    assert {'/camera/image_raw', '/camera/image_processed', '/camera/health',
            '/policy/action_chunk', '/policy/health', '/control/proposed_command',
            '/control/diagnostics', '/safety/command', '/safety/status', '/supervisor/state',
            '/robot/state', '/robot/joint_states', '/episode/result'} <= topics


def test_same_seed_same_bag(tmp_path):
    _, a = run(tmp_path, 'a', seed=9, episodes=1)
    _, b = run(tmp_path, 'b', seed=9, episodes=1)
    first = [(m.topic, m.time_ns, m.raw) for m in read_bag(a)]
    assert first == [(m.topic, m.time_ns, m.raw) for m in read_bag(b)]
    assert any(t == '/camera/image_raw' for t, _, _ in first)


@pytest.mark.parametrize('overrides, message', [
    ({'safety_node': {'max_cartesian_sped': 0.01}}, 'unknown parameter.*max_cartesian_sped'),
    ({'safety_node': {'max_cartesian_speed': 1.0e+9}}, 'max_cartesian_speed must be in'),
    ({'safety_node': {'max_cartesian_step': 10.0}}, 'max_cartesian_step must be in'),
    ({'safety_node': {'yaw_max': 100.0}}, 'yaw_max must be in'),
    ({'safety_node': {'supervisor_timeout': 1.0e+6}}, 'supervisor_timeout must be in'),
    ({'safety_node': {'max_cartesian_speed': '1.0e9'}}, 'write 1.0e\\+9'),
    ({'safty_node': {'x': 1}}, 'no node named'),
])
def test_unknown_keys_and_out_of_range_values_are_errors_naming_them(overrides, message):
    """Issue 17 F9: `--set safety_node.max_cartesian_sped=0.01` used to report 'identical'."""
    from sim2real_bringup.config import ConfigError
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.load(overrides)


_CONFIGURED_SAFETY = PipelineConfig.load().safety


def _cell(table, bound=None):
    return CellCalibration([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]], table, 0.3, 9, 9,
                           table_height_max=bound, cell='test')


@settings(max_examples=300, deadline=None)
@given(table=st.one_of(st.none(), st.floats(-0.2, 0.2)),
       bound=st.one_of(st.none(), st.floats(-0.2, 0.2)),
       workspace_z=st.floats(-0.1, 0.1), clearance=st.floats(0.005, 0.05))
def test_a_commissioned_cell_never_leaves_the_configured_box(table, bound, workspace_z,
                                                           clearance):
    """The commissioned cell changes the table only (issue 31, item 5).

    Whatever table the touch-off reports (or, out of its reach, the highest the table can
    be), the filter's floor stays above that table plus the clearance and never below the
    configured box's floor; the box itself is never moved (the in-process cell lowered
    workspace_min z below it: 1,158 commands in a heavy demo).
    """
    limits = dataclasses.replace(_CONFIGURED_SAFETY, table_clearance=clearance,
                                 workspace_min=(0.3, -0.25, workspace_z))
    highest = table if table is not None else bound   # the table as high as it can be
    try:
        commissioned = commissioned_table(limits, _cell(table, bound))
    except CellFileError:   # a table no fingertip reaches from the box or the z joint
        assert highest < min(workspace_z, -0.02)
        return
    cell = dataclasses.replace(limits, **commissioned)
    assert cell.workspace_min == limits.workspace_min
    assert cell.z_min >= workspace_z
    if highest is not None:
        assert cell.z_min >= highest + clearance - 1e-12
    else:
        assert cell.z_min == limits.z_min



def test_a_box_past_the_stage_joints_trip_points_is_refused():
    with pytest.raises(ValueError, match='trip points'):
        PipelineConfig.load({'safety_node': {'workspace_min': [0.3, -0.25, -0.02]}})


@pytest.mark.parametrize('table', [math.nan, math.inf, -math.inf])
def test_a_non_finite_touched_off_table_is_refused(table):
    with pytest.raises(CellFileError, match='table_height'):
        commissioned_table(_CONFIGURED_SAFETY, _cell(table))
    with pytest.raises(CellFileError, match='table_height_max'):
        commissioned_table(_CONFIGURED_SAFETY, _cell(None, table))


@pytest.mark.parametrize('text, message', [
    ('{not json', 'bag.mcap: recorded cell calibrations'),
    ('{"projection": 1}', 'bag.mcap: recorded cell calibrations: a list, got dict'),
    ('[' + json.dumps(_cell(0.01).to_dict()) + ', '
     + json.dumps(dict(_cell(0.01).to_dict(), projection=[1])) + ']',
     'bag.mcap: episode 1: recorded cell calibration: .*projection'),
    ('[{"projection": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]}]',
     "bag.mcap: episode 0: recorded cell calibration: missing field.*'cell'"),
])
def test_recorded_calibrations_that_are_not_ones_name_the_bag_and_episode(text, message):
    from sim2real_bringup.bag import BagError
    from sim2real_bringup.pipeline import recorded_calibrations

    with pytest.raises(BagError, match=message) as error:
        recorded_calibrations(text, 'bag.mcap')
    assert '\n' not in str(error.value)
    assert recorded_calibrations(None, 'bag.mcap') == []


def test_nodes_that_run_on_grasp_episode_after_episode_built_around_the_stage():
    """What sim.launch.py and the stand-in driver do on ROS: no node restarts between episodes.

    Each world is built around the stage where the last one left it (gripper closed on the
    object that vanished with it); the bundled policy must start over on the new object by
    itself, and the supervisor stays NORMAL.
    """
    from sim2real_policy.sim.params import SimParams
    from sim2real_safety.supervisor import Mode

    pipeline = Pipeline(PipelineConfig.load(), lambda index: SimParams(seed=600 + index),
                        episode_reset='none')
    outcomes = []

    def end(success):
        outcomes.append(success)
        pipeline.robot.reset_in_place(success)

    pipeline.robot.on_episode_end = end
    try:
        while len(outcomes) < 6 and pipeline.sched.now_ns < 6 * 20 * 10**9:
            pipeline.sched.run_for(0.5)
        assert len(outcomes) == 6 and sum(outcomes) >= 5, outcomes
        assert pipeline.supervisor.core.mode == Mode.NORMAL
    finally:
        pipeline.close()
