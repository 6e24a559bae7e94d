"""Conversions between the suite's messages and the plain data the cores use, for both runtimes.

Every builder takes the node's message factory (``node.messages``: rclpy's generated classes on
the robot, the rosbags typestore in-process), so a node converts the same way on both. Readers
only use field access, which both kinds of message share. Images are built by hand (rgb8,
row-major, no padding, the layout cv_bridge's ``cv2_to_imgmsg`` produces), so no node needs
cv_bridge or the OpenCV it was compiled against.
"""
from __future__ import annotations

import math

import numpy as np

from sim2real_safety.node_interface import NS, ns_of  # noqa: F401 -- ns_of re-exported

M = 'sim2real_msgs/msg/'


def image_msg(msgs, frame: np.ndarray, stamp_ns: int, frame_id: str = 'camera_optical_frame'):
    """A ``sensor_msgs/Image`` (rgb8) of an RGB uint8 frame."""
    height, width = frame.shape[:2]
    return msgs.make('sensor_msgs/msg/Image', header=msgs.header(stamp_ns, frame_id),
                     height=height, width=width, encoding='rgb8', is_bigendian=0,
                     step=width * 3,
                     data=np.ascontiguousarray(frame, dtype=np.uint8).reshape(-1))


def image_array(msg) -> np.ndarray:
    """The RGB uint8 frame of an rgb8 or bgr8 ``sensor_msgs/Image``."""
    if msg.encoding not in ('rgb8', 'bgr8'):
        raise ValueError(f'image encoding {msg.encoding!r} is not supported (rgb8, bgr8)')
    if msg.step < msg.width * 3 or len(msg.data) < msg.height * msg.step:
        raise ValueError(f'image data of {len(msg.data)} bytes does not hold {msg.height} rows '
                         f'of step {msg.step} for width {msg.width}')
    rows = np.frombuffer(msg.data, np.uint8, msg.height * msg.step).reshape(msg.height,
                                                                           msg.step)
    frame = rows[:, :msg.width * 3].reshape(msg.height, msg.width, 3)
    return frame[..., ::-1].copy() if msg.encoding == 'bgr8' else frame


def command_msg(msgs, pose, stamp_ns: int, source: int, frame_id: str = 'base_link'):
    """A ``CartesianCommand``."""
    x, y, z, yaw, width = (float(v) for v in pose)
    return msgs.make(M + 'CartesianCommand', header=msgs.header(stamp_ns, frame_id), x=x, y=y,
                     z=z, yaw=yaw, gripper_width=width, source=int(source))


def command_pose(msg) -> tuple:
    """``(x, y, z, yaw, gripper_width)`` of a CartesianCommand."""
    return (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)


def robot_state_msg(msgs, state, stamp_ns: int, fault: bool = False,
                    frame_id: str = 'base_link'):
    """A ``RobotState`` from ``(x, y, z, yaw, vx, vy, vz, width, effort)``."""
    x, y, z, yaw, vx, vy, vz, width, effort = (float(v) for v in state)
    return msgs.make(M + 'RobotState', header=msgs.header(stamp_ns, frame_id), x=x, y=y, z=z,
                     yaw=yaw, vx=vx, vy=vy, vz=vz, gripper_width=width, gripper_effort=effort,
                     gripper_fault=bool(fault))


def state_pose(msg) -> tuple:
    """``(x, y, z, yaw, gripper_width)`` of a RobotState."""
    return (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)


def proprio(msg) -> tuple:
    """The policy's proprioception ``(x, y, z, yaw, gripper_width, gripper_effort)``."""
    return (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width, msg.gripper_effort)


def joint_state_msg(msgs, names, positions, velocities, stamp_ns: int, efforts=()):
    """A ``sensor_msgs/JointState``."""
    return msgs.make('sensor_msgs/msg/JointState', header=msgs.header(stamp_ns),
                     name=list(names), position=np.asarray(positions, np.float64),
                     velocity=np.asarray(velocities, np.float64),
                     effort=np.asarray(efforts, np.float64))


def chunk_msg(msgs, actions: np.ndarray, stamp_ns: int, model_id: str, sequence: int,
              period: float, start_offset: float, latency: float, action_names,
              frame_id: str = 'base_link'):
    """An ``ActionChunk``."""
    horizon, dim = actions.shape
    return msgs.make(M + 'ActionChunk', header=msgs.header(stamp_ns, frame_id),
                     model_id=model_id, sequence=int(sequence), horizon=horizon,
                     action_dim=dim, action_names=list(action_names),
                     action_period=msgs.duration(round(period * NS)),
                     start_offset=msgs.duration(round(start_offset * NS)),
                     actions=np.ascontiguousarray(actions, np.float64).reshape(-1),
                     inference_latency=float(latency))


def chunk_actions(msg) -> np.ndarray:
    """The horizon x action_dim array of an ActionChunk (checks the declared sizes)."""
    if len(msg.actions) != msg.horizon * msg.action_dim:
        raise ValueError(f'ActionChunk.actions has {len(msg.actions)} values, header says '
                         f'{msg.horizon} x {msg.action_dim}')
    return np.asarray(msg.actions, dtype=np.float64).reshape(msg.horizon, msg.action_dim)


def duration_s(duration) -> float:
    """Seconds of a ``builtin_interfaces/Duration`` (either runtime)."""
    return ns_of(duration) / NS


def yaw_of(quaternion) -> float:
    """The rotation about the base z axis of the tool's x axis (rad), for any tool tilt.

    ``quaternion`` is (x, y, z, w); the inverse of :func:`tool_pose_msg`'s orientation.
    """
    x, y, z, w = quaternion
    # first column of the rotation matrix: where the tool's x axis points in the base frame
    r00 = 1 - 2 * (y * y + z * z)
    r10 = 2 * (x * y + z * w)
    return math.atan2(r10, r00)


def tool_pose_msg(msgs, pose, stamp_ns: int, frame_id: str):
    """A ``geometry_msgs/PoseStamped`` of the TCP ``(x, y, z, yaw)``, the tool pointing down.

    Roll pi about x, then ``yaw`` about z: what the driver relay's ``tool_roll`` expects.
    """
    x, y, z, yaw = pose
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    # the product of yaw (cy, 0, 0, sy) and roll pi (0, 1, 0, 0), as (x, y, z, w)
    orientation = msgs.make('geometry_msgs/msg/Quaternion', x=cy, y=sy, z=0.0, w=0.0)
    return msgs.make('geometry_msgs/msg/PoseStamped', header=msgs.header(stamp_ns, frame_id),
                     pose=msgs.make('geometry_msgs/msg/Pose', position=msgs.make(
                         'geometry_msgs/msg/Point', x=float(x), y=float(y), z=float(z)),
                         orientation=orientation))
