"""Safety limits of the Cartesian stage and the gripper, read and checked from parameters.

Every limit is in SI units in the robot base frame (REP-103: x forward, y left, z up). A
command is the 5-vector ``(x, y, z, yaw, gripper_width)`` in m, m, m, rad, m. Yaw is treated as
a plain coordinate, not wrapped: the stage's yaw joint has limits, so -pi and +pi are different
targets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import enum
import math
from typing import Mapping

COMMAND_FIELDS = ('x', 'y', 'z', 'yaw', 'gripper_width')


class Verdict(enum.IntEnum):
    """What the filter did with a proposal (values match SafetyStatus.VERDICT_*)."""

    PASS = 0
    SCALED = 1
    CLAMPED = 2
    REJECTED = 3
    STOPPED = 4


class Reaction(enum.IntEnum):
    """How the filter reacts to one violated constraint (values match ConstraintViolation)."""

    SCALE = 0   # shrink the whole motion from the last sent command so it just fits
    CLAMP = 1   # clip the offending value(s) to the limit
    REJECT = 2  # drop the proposal; the robot holds
    STOP = 3    # latch the software stop


# Constraints whose reaction is configurable, and the safe default of each. Range limits clamp
# (the target is moved onto the boundary); rate limits scale (the motion keeps its direction
# and only slows down, so x, y and z stay coordinated).
CONFIGURABLE_REACTIONS = {
    'workspace': Reaction.CLAMP,
    'table_clearance': Reaction.CLAMP,
    'yaw_range': Reaction.CLAMP,
    'gripper_width_range': Reaction.CLAMP,
    'cartesian_speed': Reaction.SCALE,
    'cartesian_step': Reaction.SCALE,
    'yaw_rate': Reaction.SCALE,
    'gripper_speed': Reaction.SCALE,
}


# Every parameter of config/safety.yaml: (ROS 2 type, description with unit, allowed range).
# The safety node declares them from this table, so `ros2 param describe` shows the same text.
# The ranges are hard caps: no file, `--set` or override can pass them. They bound what this
# suite is for (a table-top stage with a parallel-jaw gripper), not one cell; a cell tightens
# inside them.
WORKSPACE_CAP = (-1.5, 1.5)   # m: every workspace corner coordinate
PARAMETERS = {
    'frame_id': ('string', 'frame of proposals and safe commands (the robot base frame); '
                 'a proposal in any other frame is rejected', None),
    'workspace_min': ('double_array', 'lower corner [x, y, z] of the workspace box (m)',
                      WORKSPACE_CAP),
    'workspace_max': ('double_array', 'upper corner [x, y, z] of the workspace box (m)',
                      WORKSPACE_CAP),
    'table_height': ('double', 'table surface height in the base frame (m)', (-0.5, 0.5)),
    'table_clearance': ('double', 'minimum TCP height above the table (m)', (0.005, 0.2)),
    'finger_clearance': ('double', "minimum height of the fingers' lowest point above the "
                         'table (m)', (0.002, 0.2)),
    'finger_drop.widths': ('double_array', 'gripper openings (m, ascending) at which '
                           'finger_drop.depths is measured', (0.0, 0.2)),
    'finger_drop.depths': ('double_array', "how far the fingers' lowest point lies below the "
                           'TCP at each of finger_drop.widths (m; linear between, the end '
                           'values beyond)', (0.0, 0.1)),
    'yaw_min': ('double', 'lowest yaw (rad)', (-3.2, 3.2)),
    'yaw_max': ('double', 'highest yaw (rad)', (-3.2, 3.2)),
    'gripper_width_min': ('double', 'narrowest gripper opening (m)', (0.0, 0.2)),
    'gripper_width_max': ('double', 'widest gripper opening (m)', (0.0, 0.2)),
    'max_cartesian_speed': ('double', "TCP speed limit (m/s): the robot's true speed, not only "
                            "the commands'", (0.0, 0.5)),
    'servo_speed_margin': ('double', 'fraction of max_cartesian_speed that commands leave free '
                           "for the robot's servo: commands move at most (1 - this) x "
                           'max_cartesian_speed, so its overshoot and a contact that lets go '
                           'stay under the limit', (0.05, 0.5)),
    'servo_position_margin': ('double', "how far the robot's position servo may stray from a "
                              'command it holds (its tracking error, m): every TCP floor (the '
                              "table's, the fingers') is commanded this far above the limit, so "
                              'the robot itself stays above it', (0.0001, 0.005)),
    'max_cartesian_step': ('double', 'TCP step limit per control tick (m)', (0.0, 0.01)),
    'max_yaw_rate': ('double', 'yaw rate limit (rad/s)', (0.0, 3.0)),
    'max_gripper_speed': ('double', 'gripper opening speed limit (m/s)', (0.0, 0.3)),
    'stop_deceleration': ('double', 'deceleration of a hold (m/s^2)', (0.5, 10.0)),
    'max_follow_error': ('double', 'farthest a command may ever lie from the measured TCP '
                         '(m)', (0.005, 0.1)),
    'max_yaw_follow_error': ('double', 'farthest a commanded yaw may ever lie from the '
                             'measured yaw (rad)', (0.01, 0.5)),
    'follow_response_time': ('double', 'time the robot takes to close a gap to its command '
                             '(its servo time constant, s): a robot at rest is commanded at '
                             'most max_cartesian_speed (max_yaw_rate) x this away', (0.005, 0.1)),
    'follow_lag_time': ('double', 'how far behind its command a moving robot may be (command '
                        'latency + actuation delay + servo lag, s): the bound grows by the '
                        'measured joint speed x this', (0.0, 0.5)),
    'max_state_speed': ('double', 'fastest the TCP can really move (m/s); a measured pose '
                        'that jumps faster is not plausible', (0.05, 2.0)),
    'state_tolerance': ('double', 'measurement noise allowed in the plausibility checks '
                        '(m; rad for yaw against its joint)', (0.001, 0.05)),
    'control_period': ('double', 'nominal command period (s)', (0.001, 0.05)),
    'command_timeout': ('double', 'no fresh proposal this long -> hold (s)', (0.0, 0.5)),
    'max_command_age': ('double', 'proposals older than this are rejected (s)', (0.0, 0.5)),
    'future_tolerance': ('double', 'proposals stamped beyond now + this are rejected (s)',
                         (0.0, 0.02)),
    'supervisor_timeout': ('double', 'supervisor heartbeat age that closes the gate (s)',
                           (0.0, 2.0)),
    'state_timeout': ('double', 'robot and joint state age that closes the gate (s)',
                      (0.0, 0.5)),
    'joint_limit_margin': ('double', 'distance to a joint limit that stops (m or rad)',
                           (0.0, 0.1)),
    'joint_limits.names': ('string_array', 'monitored joints (at least one; each must be in '
                           'every JointState, with position and velocity)', None),
    'joint_limits.lower': ('double_array', 'lower joint limits (m or rad)', (-10.0, 10.0)),
    'joint_limits.upper': ('double_array', 'upper joint limits (m or rad)', (-10.0, 10.0)),
    'joint_limits.max_velocity': ('double_array', 'joint speed limits (m/s or rad/s)',
                                  (0.0, 2.0)),
    'tcp_joints': ('string_array', 'monitored joints whose positions are the TCP x, y, z '
                   '[, yaw] (a Cartesian stage); the measured pose must agree with them. '
                   'Empty: no cross-check (a robot whose TCP is not its joints)', None),
    **{f'reaction.{name}': ('string', f'reaction to {name}: scale, clamp or reject', None)
       for name in CONFIGURABLE_REACTIONS},
    'commissioning_depth': ('double', 'how far below the highest autonomous TCP floor (table '
                            '+ clearances, closed gripper) the commissioning procedure may '
                            'command the TCP, never below workspace_min z (m; 0 = not at all)',
                            (0.0, 0.05)),
    'commissioning_speed': ('double', 'TCP speed limit of commissioning commands below that '
                            'floor (m/s): the touch-off presses the fingertips onto the table',
                            (0.001, 0.05)),
    # The node's, not a limit: where the software-stop latch persists ('' = not persisted).
    'stop_state_file': ('string', 'file persisting the software-stop latch across restarts '
                        '("" = off)', None),
}


def parameters() -> tuple:
    """The safety node's parameter declarations.

    Every limit is required (no limit is ever assumed); the frame, the stop file and the
    reactions have safe defaults; the joint limits are optional.
    """
    from sim2real_safety.node_interface import Param
    defaults = {'frame_id': 'base_link', 'stop_state_file': '', 'joint_limit_margin': 0.0,
                'commissioning_depth': 0.0, 'commissioning_speed': 0.02,
                'joint_limits.names': None, 'joint_limits.lower': None,
                'joint_limits.upper': None, 'joint_limits.max_velocity': None,
                'tcp_joints': None,
                **{f'reaction.{name}': reaction.name.lower()
                   for name, reaction in CONFIGURABLE_REACTIONS.items()}}
    choices = ('scale', 'clamp', 'reject')
    return tuple(Param(name, defaults.get(name), text, bounds,
                       choices if name.startswith('reaction.') else None, kind,
                       optional=name in OPTIONAL)
                 for name, (kind, text, bounds) in PARAMETERS.items())


OPTIONAL = frozenset(('tcp_joints',))


class LimitsError(ValueError):
    """A safety parameter that is missing, non-finite or inconsistent."""


@dataclass(frozen=True)
class JointLimit:
    """Position and velocity limits of one joint (m or rad, m/s or rad/s)."""

    name: str
    lower: float
    upper: float
    max_velocity: float


@dataclass(frozen=True)
class SafetyLimits:
    """Every limit the safety filter enforces. Build with :meth:`from_parameters`."""

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    table_height: float
    table_clearance: float
    yaw_min: float
    yaw_max: float
    gripper_width_min: float
    gripper_width_max: float
    max_cartesian_speed: float
    max_cartesian_step: float
    max_yaw_rate: float
    max_gripper_speed: float
    stop_deceleration: float
    control_period: float
    command_timeout: float
    max_command_age: float
    future_tolerance: float
    supervisor_timeout: float
    state_timeout: float
    max_follow_error: float
    max_yaw_follow_error: float
    follow_response_time: float
    follow_lag_time: float
    max_state_speed: float
    state_tolerance: float
    joint_limits: tuple[JointLimit, ...]
    finger_clearance: float = 0.0
    servo_speed_margin: float = 0.0
    servo_position_margin: float = 0.0
    # (width, depth) pairs, ascending widths: the fingers' lowest point below the TCP (m)
    finger_drop: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    joint_limit_margin: float = 0.0
    tcp_joints: tuple[str, ...] = ()
    reactions: Mapping[str, Reaction] = field(
        default_factory=lambda: dict(CONFIGURABLE_REACTIONS))
    frame_id: str = 'base_link'
    # The commissioning mode's bounds (the supervisor's Commission service): how far below
    # floor_top the commissioning source may go (m) and how fast it moves there (m/s).
    commissioning_depth: float = 0.0
    commissioning_speed: float = 0.02

    @property
    def floor_top(self) -> float:
        """The highest TCP floor at any opening (m): below it only commissioning goes."""
        widths = [w for w, _ in self.finger_drop] + [self.gripper_width_min,
                                                      self.gripper_width_max]
        return max(self.tcp_floor(w) for w in widths)

    @property
    def commissioning_floor(self) -> float:
        """Lowest TCP z of a commissioning command (m): never below the workspace box."""
        return max(self.workspace_min[2], self.floor_top - self.commissioning_depth)

    @property
    def command_speed(self) -> float:
        """Fastest a command moves (m/s): the speed limit less the servo's margin."""
        return self.max_cartesian_speed * (1.0 - self.servo_speed_margin)

    @property
    def z_floor(self) -> float:
        """Lowest z of the robot's true TCP: the workspace floor or table + clearance."""
        return max(self.workspace_min[2], self.table_height + self.table_clearance)

    @property
    def z_min(self) -> float:
        """Lowest commanded z: :attr:`z_floor` plus the servo's tracking error."""
        return self.z_floor + self.servo_position_margin

    def finger_depth(self, width: float) -> float:
        """How far the fingers' lowest point lies below the TCP at opening ``width`` (m)."""
        table = self.finger_drop
        if width <= table[0][0]:
            return table[0][1]
        for (w0, d0), (w1, d1) in zip(table, table[1:]):
            if width <= w1:
                return d0 + (d1 - d0) * (width - w0) / (w1 - w0)
        return table[-1][1]

    def tcp_floor(self, width: float) -> float:
        """Lowest allowed TCP z with the gripper opened to ``width``.

        :attr:`z_min`, raised where the fingers reach below the TCP by more than the table
        clearance leaves: a closed 2F-85's fingertips are 17.9 mm below it.
        """
        fingers = (self.table_height + self.finger_clearance + self.finger_depth(width)
                   + self.servo_position_margin)
        z_min = self.z_min
        return fingers if fingers > z_min else z_min

    def follow_bounds(self, speed: float, yaw_rate: float) -> tuple[float, float]:
        """How far (m, rad) a command may lie from a robot moving at ``speed``, ``yaw_rate``.

        What it closes at the speed limit within its response time, plus what it lags by while
        moving (m/s, rad/s x follow_lag_time), never more than the max_*follow_error caps.
        """
        return (min(self.max_follow_error, self.max_cartesian_speed * self.follow_response_time
                    + abs(speed) * self.follow_lag_time),
                min(self.max_yaw_follow_error, self.max_yaw_rate * self.follow_response_time
                    + abs(yaw_rate) * self.follow_lag_time))

    @property
    def lower(self) -> tuple[float, float, float, float, float]:
        """Lower bound of each command field."""
        return (self.workspace_min[0], self.workspace_min[1], self.z_min, self.yaw_min,
                self.gripper_width_min)

    @property
    def upper(self) -> tuple[float, float, float, float, float]:
        """Upper bound of each command field."""
        return (self.workspace_max[0], self.workspace_max[1], self.workspace_max[2],
                self.yaw_max, self.gripper_width_max)

    @classmethod
    def from_parameters(cls, params: Mapping) -> 'SafetyLimits':
        """Build from a ``ros__parameters`` mapping (``config/safety.yaml``), checking each value.

        Raises :class:`LimitsError` naming the parameter and its bad value.
        """
        unknown = sorted(key for key in set(params) - set(PARAMETERS)
                         if not key.startswith('reaction.'))
        if unknown:
            raise LimitsError(f'unknown safety parameter(s) {unknown} (a typo would leave a '
                              'limit at its default)')

        def number(name, positive=False, non_negative=False):
            if name not in params:
                raise LimitsError(f'safety parameter {name!r} is missing')
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LimitsError(f'safety parameter {name!r} must be a number, got {value!r}')
            value = float(value)
            if not math.isfinite(value):
                raise LimitsError(f'safety parameter {name!r} must be finite, got {value!r}')
            if positive and value <= 0.0:
                raise LimitsError(f'safety parameter {name!r} must be > 0, got {value!r}')
            if non_negative and value < 0.0:
                raise LimitsError(f'safety parameter {name!r} must be >= 0, got {value!r}')
            bounds = PARAMETERS[name][2]
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise LimitsError(f'safety parameter {name!r} must be in [{bounds[0]}, '
                                  f'{bounds[1]}] (a hard cap), got {value!r}')
            return value

        def triple(name):
            value = params.get(name)
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                raise LimitsError(f'safety parameter {name!r} must be [x, y, z] in m, '
                                  f'got {value!r}')
            return tuple(bounded(name, i, v) for i, v in enumerate(value))

        def number_of(name, index, value):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise LimitsError(f'safety parameter {name}[{index}] must be a finite number, '
                                  f'got {value!r}')
            return float(value)

        def bounded(name, index, value):
            value = number_of(name, index, value)
            low, high = PARAMETERS[name][2]
            if not low <= value <= high:
                raise LimitsError(f'safety parameter {name}[{index}] must be in [{low}, '
                                  f'{high}] (a hard cap), got {value!r}')
            return value

        reactions = dict(CONFIGURABLE_REACTIONS)
        for key, value in params.items():
            if not key.startswith('reaction.'):
                continue
            constraint = key[len('reaction.'):]
            if constraint not in CONFIGURABLE_REACTIONS:
                raise LimitsError(f'{key}: unknown constraint {constraint!r}; configurable: '
                                  f'{sorted(CONFIGURABLE_REACTIONS)}')
            names = {r.name.lower(): r for r in (Reaction.SCALE, Reaction.CLAMP, Reaction.REJECT)}
            if value not in names:
                raise LimitsError(f'{key}: reaction must be one of {sorted(names)}, got {value!r}')
            reactions[constraint] = names[value]

        joints = []
        joint_names = params.get('joint_limits.names')
        if not isinstance(joint_names, (list, tuple)) or not joint_names:
            raise LimitsError(f'joint_limits.names must list the monitored joints (at least '
                              f'one; joint monitoring cannot be switched off), got '
                              f'{joint_names!r}')
        if len(set(joint_names)) != len(joint_names) or not all(
                isinstance(name, str) and name for name in joint_names):
            raise LimitsError(f'joint_limits.names must be distinct joint names, got '
                              f'{joint_names!r}')
        columns = {}
        for column in ('lower', 'upper', 'max_velocity'):
            values = params.get(f'joint_limits.{column}')
            if not isinstance(values, (list, tuple)) or len(values) != len(joint_names):
                raise LimitsError(f'joint_limits.{column} needs one value per joint '
                                  f'({len(joint_names)}), got {values!r}')
            columns[column] = [bounded(f'joint_limits.{column}', i, v)
                               for i, v in enumerate(values)]
        for i, name in enumerate(joint_names):
            joint = JointLimit(str(name), columns['lower'][i], columns['upper'][i],
                               columns['max_velocity'][i])
            if not joint.lower < joint.upper or joint.max_velocity <= 0.0:
                raise LimitsError(f'joint {name!r}: need lower < upper and max_velocity > 0, '
                                  f'got {joint}')
            joints.append(joint)

        tcp_joints = params.get('tcp_joints') or ()
        if not isinstance(tcp_joints, (list, tuple)) or len(tcp_joints) > 4 or any(
                name not in joint_names for name in tcp_joints):
            raise LimitsError(f'tcp_joints must name up to 4 monitored joints (x, y, z, yaw), '
                              f'got {tcp_joints!r}')
        widths = params.get('finger_drop.widths')
        depths = params.get('finger_drop.depths')
        if not isinstance(widths, (list, tuple)) or not widths or \
                not isinstance(depths, (list, tuple)) or len(depths) != len(widths):
            raise LimitsError(f'finger_drop.widths and finger_drop.depths must be lists of '
                              f'the same length (at least one), got {widths!r} and {depths!r}')
        widths = [bounded('finger_drop.widths', i, v) for i, v in enumerate(widths)]
        depths = [bounded('finger_drop.depths', i, v) for i, v in enumerate(depths)]
        if any(b <= a for a, b in zip(widths, widths[1:])):
            raise LimitsError(f'finger_drop.widths must be strictly ascending, got {widths!r}')
        frame_id = params.get('frame_id', 'base_link')
        if not isinstance(frame_id, str) or not frame_id:
            raise LimitsError(f'safety parameter frame_id must be a frame name, got {frame_id!r}')
        limits = cls(
            workspace_min=triple('workspace_min'),
            workspace_max=triple('workspace_max'),
            table_height=number('table_height'),
            table_clearance=number('table_clearance', non_negative=True),
            yaw_min=number('yaw_min'),
            yaw_max=number('yaw_max'),
            gripper_width_min=number('gripper_width_min', non_negative=True),
            gripper_width_max=number('gripper_width_max', positive=True),
            max_cartesian_speed=number('max_cartesian_speed', positive=True),
            servo_speed_margin=number('servo_speed_margin'),
            servo_position_margin=number('servo_position_margin'),
            max_cartesian_step=number('max_cartesian_step', positive=True),
            max_yaw_rate=number('max_yaw_rate', positive=True),
            max_gripper_speed=number('max_gripper_speed', positive=True),
            stop_deceleration=number('stop_deceleration', positive=True),
            control_period=number('control_period', positive=True),
            command_timeout=number('command_timeout', positive=True),
            max_command_age=number('max_command_age', positive=True),
            future_tolerance=number('future_tolerance', non_negative=True),
            supervisor_timeout=number('supervisor_timeout', positive=True),
            state_timeout=number('state_timeout', positive=True),
            joint_limit_margin=number('joint_limit_margin', non_negative=True)
            if 'joint_limit_margin' in params else 0.0,
            max_follow_error=number('max_follow_error', positive=True),
            max_yaw_follow_error=number('max_yaw_follow_error', positive=True),
            follow_response_time=number('follow_response_time', positive=True),
            follow_lag_time=number('follow_lag_time', non_negative=True),
            max_state_speed=number('max_state_speed', positive=True),
            state_tolerance=number('state_tolerance', positive=True),
            joint_limits=tuple(joints),
            finger_clearance=number('finger_clearance', positive=True),
            finger_drop=tuple(zip(widths, depths)),
            tcp_joints=tuple(str(name) for name in tcp_joints),
            reactions=reactions,
            frame_id=frame_id,
            commissioning_depth=number('commissioning_depth')
            if 'commissioning_depth' in params else 0.0,
            commissioning_speed=number('commissioning_speed', positive=True)
            if 'commissioning_speed' in params else 0.02,
        )
        for low, high, name in zip(limits.lower, limits.upper, COMMAND_FIELDS):
            if not low < high:
                raise LimitsError(f'empty range for {name}: lower {low} >= upper {high} '
                                  '(check workspace_min/max, table_height + table_clearance)')
        highest = max(limits.tcp_floor(w) for w in (*widths, limits.gripper_width_min,
                                                   limits.gripper_width_max))
        if not highest < limits.workspace_max[2]:
            raise LimitsError(f'table_height + finger_clearance + the deepest finger_drop '
                              f'({highest:.4g} m) must lie below workspace_max z '
                              f'({limits.workspace_max[2]} m)')
        joints = {joint.name: joint for joint in limits.joint_limits}
        # the box itself, not the table's floor: a commissioned table may lie below it
        box_lower = (*limits.workspace_min, limits.yaw_min)
        box_upper = (*limits.workspace_max, limits.yaw_max)
        for index, name in enumerate(limits.tcp_joints):
            joint, margin = joints[name], limits.joint_limit_margin
            if box_lower[index] < joint.lower + margin or \
                    box_upper[index] > joint.upper - margin:
                raise LimitsError(
                    f'the {COMMAND_FIELDS[index]} range [{box_lower[index]}, '
                    f"{box_upper[index]}] reaches past joint {name!r}'s trip points "
                    f'[{joint.lower + margin}, {joint.upper - margin}] (its limits less '
                    'joint_limit_margin): a command inside the box would stop the robot')
        at_rest = limits.max_cartesian_speed * limits.follow_response_time
        if at_rest < 2.0 * min(limits.max_cartesian_step,
                               limits.command_speed * limits.control_period):
            raise LimitsError(f'max_cartesian_speed x follow_response_time ({at_rest:.4g} m) '
                              f'must be at least two control steps: the command must be able '
                              'to lead a robot at rest')
        return limits
