"""Shared test rig for the safety filter: explicit limits and a clock the test drives."""
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.software_stop import SoftwareStopLatch

MS = 1_000_000

BASE = {
    'workspace_min': [0.30, -0.25, 0.0], 'workspace_max': [0.80, 0.25, 0.45],
    'table_height': 0.0, 'table_clearance': 0.01, 'finger_clearance': 0.005,
    # the 2F-85's fingertips below its TCP, measured in the MuJoCo model
    'finger_drop.widths': [0.0, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.085],
    'finger_drop.depths': [0.0179, 0.0179, 0.0170, 0.0159, 0.0143, 0.0123, 0.0096, 0.0064,
                           0.0045],
    'yaw_min': -1.5, 'yaw_max': 1.5, 'gripper_width_min': 0.0, 'gripper_width_max': 0.085,
    'max_cartesian_speed': 0.25, 'servo_speed_margin': 0.15, 'servo_position_margin': 0.0005,
    'max_cartesian_step': 0.003,
    'max_yaw_rate': 1.0,
    'max_gripper_speed': 0.15, 'stop_deceleration': 2.0, 'control_period': 0.01,
    'command_timeout': 0.1, 'max_command_age': 0.1, 'future_tolerance': 0.002,
    'supervisor_timeout': 0.5, 'state_timeout': 0.1,
    'max_follow_error': 0.05, 'max_yaw_follow_error': 0.3, 'max_state_speed': 1.0,
    'follow_response_time': 0.03, 'follow_lag_time': 0.3,
    'state_tolerance': 0.02, 'joint_limit_margin': 0.005,
    'joint_limits.names': ['stage_x', 'stage_y', 'stage_z', 'stage_yaw'],
    'joint_limits.lower': [0.25, -0.30, -0.02, -1.65],
    'joint_limits.upper': [0.85, 0.30, 0.50, 1.65],
    'joint_limits.max_velocity': [0.5, 0.5, 0.5, 2.0],
    'tcp_joints': ['stage_x', 'stage_y', 'stage_z', 'stage_yaw'],
    'commissioning_depth': 0.04, 'commissioning_speed': 0.025,
}
JOINTS = BASE['joint_limits.names']
HOME = (0.55, 0.0, 0.20, 0.0, 0.08)


def limits(**overrides):
    params = dict(BASE)
    params.update(overrides)
    return SafetyLimits.from_parameters(params)


def feed_robot(flt, pose, now_ns):
    """A healthy robot at ``pose``: its joint states (the stage's are the TCP), then its state."""
    flt.update_joint_state(JOINTS, list(pose[:4]), [0.0] * 4, now_ns)
    flt.update_robot_state(pose, now_ns)


def seeded(flt, pose, now_ns, readings=3):
    """Feed ``readings`` healthy states 10 ms apart; return the time of the last.

    The filter seeds on agreeing readings only.
    """
    for _ in range(readings):
        feed_robot(flt, pose, now_ns)
        flt.supervisor_heartbeat(now_ns)
        now_ns += 10 * MS
    return now_ns - 10 * MS


class Rig:
    """A filter with healthy inputs, stepped 10 ms at a time on an injected clock.

    The robot follows: unless a test pins ``state``, the measured pose is the last command
    sent (a stage that tracks perfectly), as the follow-error bound expects of a robot.
    """

    def __init__(self, lim=None, start=HOME, now_ns=1_000 * MS, persist_path=None,
                 follow=True):
        self.limits = lim or limits()
        self.filter = SafetyFilter(self.limits, SoftwareStopLatch(persist_path))
        self.state = start
        self.follow = follow
        self.now_ns = seeded(self.filter, start, now_ns)

    def feed(self):
        if self.follow and self.filter._sent is not None:
            self.state = self.filter._sent
        feed_robot(self.filter, self.state, self.now_ns)
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
