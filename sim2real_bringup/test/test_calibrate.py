"""A calibration run through the nodes (calibrate.launch.py use_sim:=true, in-process), fitted."""
import numpy as np
import pytest

from sim2real_bringup.calibrate import record_calibration
from sim2real_bringup.pipeline import PipelineConfig
from sim2real_policy import sysid
from sim2real_policy.sim.params import SimParams


def test_calibration_is_never_cut_in_its_excitation_and_stays_inside_the_limits():
    limits = PipelineConfig.load().safety
    run = record_calibration(SimParams(), {'calibration_node': {'seeds': [0, 1]}})
    assert not run['aborted']
    commands = np.array([c[1][:3] for c in run['commands']])
    assert np.all(commands >= np.array(limits.lower[:3]))
    assert np.all(commands <= np.array(limits.upper[:3]))
    # planned at 80% of the speed limit: the filter passes the excitation untouched; what it
    # changes is the start (the yaw and gripper leaving home, the first step from the hold)
    assert [c for c in run['cut'] if c[1] != 'approach'] == []
    assert sum(run['verdicts'].values()) == run['verdicts'].get('PASS', 0) + len(run['cut'])
    assert len(run['cut']) <= 3


def test_a_calibration_run_on_the_simulated_robot_is_fitted_within_5_percent():
    true = SimParams(joint_friction=1.5, joint_damping=1.2, actuator_strength=0.9,
                     action_delay=0.06)
    run = record_calibration(true, {'calibration_node': {'seeds': [0, 1, 2], 'duration': 2.0}})
    trajectories, notes = sysid.trajectories_from_messages(run['commands'],
                                                           run['joint_states'])
    assert notes == []
    assert len(trajectories) >= 3  # cut at the rests between excitations
    result = sysid.fit(trajectories)
    expected = {'mass_scale': 1.0, 'friction': 1.5, 'damping': 1.2, 'strength': 0.9}
    for name, value in expected.items():
        assert result.params[name] == pytest.approx(value, rel=0.05), name
    assert abs(result.params['delay'] - 0.06) < sysid.SAMPLE


def test_a_supervisor_that_stops_autonomy_ends_the_run():
    """A software stop mid-run: the calibration ends for good, the safety node holds."""
    def stop_at_3_s(graph):
        graph.scheduler.call_at(3 * 10**9, lambda: graph.call_service(
            '/safety/trigger_stop', requested_by='test', reason='cup in the cell'))

    run = record_calibration(SimParams(), {'calibration_node': {'seeds': [0]}},
                             setup=stop_at_3_s)
    assert run['aborted']
    assert run['commands'][-1][0] <= 3.1 * 10**9  # nothing recorded as the run after it
