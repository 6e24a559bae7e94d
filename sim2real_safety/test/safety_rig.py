"""Shared test rig for the safety filter: explicit limits and a clock the test drives."""
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.software_stop import SoftwareStopLatch

MS = 1_000_000

BASE = {
    'workspace_min': [0.30, -0.25, 0.0], 'workspace_max': [0.80, 0.25, 0.45],
    'table_height': 0.0, 'table_clearance': 0.01,
    'yaw_min': -1.5, 'yaw_max': 1.5, 'gripper_width_min': 0.0, 'gripper_width_max': 0.085,
    'max_cartesian_speed': 0.25, 'max_cartesian_step': 0.003, 'max_yaw_rate': 1.0,
    'max_gripper_speed': 0.15, 'stop_deceleration': 2.0, 'control_period': 0.01,
    'command_timeout': 0.1, 'max_command_age': 0.1, 'future_tolerance': 0.002,
    'supervisor_timeout': 0.5, 'state_timeout': 0.1,
}
HOME = (0.55, 0.0, 0.20, 0.0, 0.08)


def limits(**overrides):
    params = dict(BASE)
    params.update(overrides)
    return SafetyLimits.from_parameters(params)


class Rig:
    """A filter with healthy inputs, stepped 10 ms at a time on an injected clock."""

    def __init__(self, lim=None, start=HOME, now_ns=1_000 * MS, persist_path=None):
        self.limits = lim or limits()
        self.filter = SafetyFilter(self.limits, SoftwareStopLatch(persist_path))
        self.now_ns = now_ns
        self.state = start
        self.feed()

    def feed(self):
        self.filter.update_robot_state(self.state, self.now_ns)
        self.filter.supervisor_heartbeat(self.now_ns)

    def step(self, proposal, dt_ms=10, age_ms=1, healthy=True):
        self.now_ns += int(dt_ms * MS)
        if healthy:
            self.feed()
        return self.filter.check(proposal, self.now_ns - int(age_ms * MS), self.now_ns)

    def tick(self, dt_ms=10, healthy=True):
        self.now_ns += int(dt_ms * MS)
        if healthy:
            self.feed()
        return self.filter.tick(self.now_ns)
