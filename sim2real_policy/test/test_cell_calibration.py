"""The cell calibration procedure: touch-off, camera from the fingertips, actuation delay."""
import numpy as np
import pytest

from sim2real_policy.cell_calibration import (
    calibrate_cell,
    CellCalibrationConfig,
    out_of_reach_table,
    probe_table,
    SimCellRobot,
    touch_off,
    TOUCH_OFF_TCP_HEIGHT,
)
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import VisualRandomizer
from sim2real_policy.sim.robot import GripperSim


@pytest.mark.parametrize('table, physics', [
    (0.0, {}),
    (0.035, {}),
    (-0.03, {}),
    (0.02, {'action_delay': 0.2, 'encoder_noise': 0.002, 'joint_stiffness': 50.0,
            'actuator_strength': 0.7, 'joint_damping': 1.4}),
    # the longest delay of the heavy ranges: the stage stands still for a quarter second
    # after the descent begins, which must not read as contact
    (-0.01, {'action_delay': 0.25}),
    (0.04, {'action_delay': 0.25, 'joint_stiffness': 50.0}),
    # a table the fingertips reach just above the stage's floor: contact comes after the
    # command has stopped at the floor
    (-0.03, {'action_delay': 0.25}),
    (-0.033, {}),
])
def test_the_touch_off_finds_the_table(table, physics):
    with GripperSim(SimParams(table_height=table, **physics)) as sim:
        robot = SimCellRobot(sim, VisualRandomizer({}, 0))
        contact = touch_off(robot, CellCalibrationConfig(), [*sim.tcp(False), 0.085])
    assert contact - TOUCH_OFF_TCP_HEIGHT == pytest.approx(table, abs=0.002)


def test_the_touch_off_errs_high_over_many_noisy_worlds():
    """The contact height can only be above the real table (issue 31, item 5).

    24 worlds with up to 2 mm encoder noise, delays and tables across the reach; before, the
    window's mean alone was up to 0.55 mm low.
    """
    rng = np.random.default_rng(31)
    errors = []
    for seed in range(24):
        table = float(rng.uniform(-0.03, 0.04))
        params = SimParams(seed=seed, table_height=table,
                           encoder_noise=float(rng.uniform(0.001, 0.002)),
                           action_delay=float(rng.uniform(0.0, 0.15)))
        with GripperSim(params) as sim:
            robot = SimCellRobot(sim, VisualRandomizer({}, 0))
            contact = touch_off(robot, CellCalibrationConfig(), [*sim.tcp(False), 0.085])
        errors.append(contact - TOUCH_OFF_TCP_HEIGHT - table)
    assert min(errors) >= 0.0, errors
    assert max(errors) <= 0.003, errors


@pytest.mark.parametrize('seed', range(8))
def test_encoder_noise_during_a_long_delay_is_not_taken_for_contact(seed):
    # Before a delayed stage starts down, noisy readings (2 mm, the heavy ranges' most) once
    # looked like a descent that had stopped: the table was reported in mid-air, 80 mm up.
    table = (-0.02, 0.0, 0.03)[seed % 3]
    with GripperSim(SimParams(seed=seed, table_height=table, action_delay=0.24,
                              encoder_noise=0.002)) as sim:
        robot = SimCellRobot(sim, VisualRandomizer({}, 0))
        contact = touch_off(robot, CellCalibrationConfig(), [*sim.tcp(False), 0.085])
    assert contact is not None
    assert contact - TOUCH_OFF_TCP_HEIGHT == pytest.approx(table, abs=0.003)


def test_a_table_below_the_reach_is_reported_not_guessed():
    with GripperSim(SimParams(table_height=-0.05)) as sim:
        robot = SimCellRobot(sim, VisualRandomizer({}, 0))
        assert touch_off(robot, CellCalibrationConfig(), [*sim.tcp(False), 0.085]) is None


@pytest.mark.parametrize('physics, expected', [
    ({}, True), ({'action_delay': 0.25}, True), ({'encoder_noise': 0.002, 'seed': 3}, True),
    ({'joint_stiffness': 50.0, 'actuator_strength': 0.7}, True),
    # slower than any stage the suite expects: still descending when the touch-off ends, or
    # stood still so long it looked stopped (a table reported in mid-air: high, never low)
    ({'action_delay': 0.6}, False),
    # a stage so damped it is still on its way down when the touch-off ends: the table is
    # only known to be below where it got (the floor's bound alone would be 2-3 cm too low)
    ({'joint_damping': 60.0}, False),
])
def test_a_table_the_touch_off_does_not_find_is_never_above_its_bound(physics, expected):
    """Across the edge of the reach: found (never low), or not found and under the bound.

    Found: within 3 mm on the stages the suite expects. The safety node's floor for a cell
    whose table was out of reach is that bound plus the
    clearance: a table above it and not found would leave the fingertips less than the
    clearance above it.
    """
    config = CellCalibrationConfig()
    for table in [*np.arange(-0.036, -0.0299, 0.0005), -0.045]:
        with GripperSim(SimParams(table_height=float(table), **physics)) as sim:
            robot = SimCellRobot(sim, VisualRandomizer({}, 0))
            contact, ended = probe_table(robot, config, [*sim.tcp(False), 0.085])
        if contact is None:
            assert table <= out_of_reach_table(config, ended), (table, ended)
        elif expected:
            assert contact - TOUCH_OFF_TCP_HEIGHT == pytest.approx(table, abs=0.003)
        else:
            assert contact - TOUCH_OFF_TCP_HEIGHT >= table - 0.003


class TruthDetector:
    """The TCP's true pixel plus detection noise: tests the procedure apart from the network."""

    def __init__(self, sim, noise_px, rng):
        self.sim, self.noise, self.rng = sim, noise_px, rng

    def __call__(self, frame):
        u, v = np.subtract(self.sim.project(self.sim.data.site('gripper/pinch').xpos), 0.5)
        du, dv = self.rng.normal(0.0, self.noise, 2)
        return {'tcp': (u + du, v + dv, 1.0)}


def test_the_procedure_recovers_the_camera_and_table_of_a_shifted_cell():
    from sim2real_policy.camera_geometry import pixel_to_plane

    params = SimParams(table_height=0.015, camera_offset=(0.02, -0.02, 0.015), camera_tilt=0.03,
                       action_delay=0.14, encoder_noise=0.001)
    with GripperSim(params) as sim:
        start = sim.tcp(False)
        robot = SimCellRobot(sim, VisualRandomizer({}, 0))
        calibration = calibrate_cell(robot, TruthDetector(sim, 0.3, np.random.default_rng(0)))
        end = sim.tcp(False)
        errors = []
        for x in np.linspace(0.46, 0.64, 4):
            for y in np.linspace(-0.12, 0.12, 4):
                point = np.array([x, y, 0.015])
                pixel = np.subtract(sim.project(point), 0.5)
                found = pixel_to_plane(calibration.matrix, pixel, 0.015)
                errors.append(np.linalg.norm(found - point))
    assert calibration.table_height == pytest.approx(0.015, abs=0.002)
    assert calibration.points_used >= 14
    assert np.percentile(errors, 95) < 0.005
    assert np.allclose(end[:3], start[:3], atol=0.005)   # back where it began
    # the stage's delay, from the procedure's own moves and the encoder readings
    assert calibration.actuation_delay == pytest.approx(0.14, abs=0.014)


@pytest.mark.parametrize('physics', [
    {'action_delay': 0.05},
    {'action_delay': 0.22, 'encoder_noise': 0.002},
])
def test_the_calibration_measures_the_actuation_delay(physics):
    """On the nominal stage, within 10 % or 10 ms.

    A sluggish stage reads long (straight moves at constant speed cannot tell a delay from a
    servo's lag); evaluate reports the error in every reality.
    """
    with GripperSim(SimParams(**physics)) as sim:
        robot = SimCellRobot(sim, VisualRandomizer({}, 0))
        calibration = calibrate_cell(robot, TruthDetector(sim, 0.3, np.random.default_rng(0)))
    delay = physics['action_delay']
    assert calibration.actuation_delay == pytest.approx(delay, abs=max(0.1 * delay, 0.01))


def test_a_touch_off_that_ended_at_no_height_bounds_nothing():
    from sim2real_policy.camera_geometry import GeometryError

    config = CellCalibrationConfig()
    assert out_of_reach_table(config, -0.05) == out_of_reach_table(config)   # the floor's
    assert out_of_reach_table(config, 0.05) > 0.05 - TOUCH_OFF_TCP_HEIGHT    # where it got
    for ended in (float('nan'), float('inf')):
        with pytest.raises(GeometryError, match='no bound'):
            out_of_reach_table(config, ended)
