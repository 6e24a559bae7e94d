"""Conversions between the suite's messages and the plain data the cores use.

``rosbags-image`` only converts Image -> numpy, so building an Image from a frame is done here
(rgb8, row-major, no padding), the way cv_bridge's ``cv2_to_imgmsg`` lays it out.
"""
from __future__ import annotations

import numpy as np

from sim2real_bringup import interfaces as ifc

M = 'sim2real_msgs/msg/'


def image_msg(frame: np.ndarray, stamp_ns: int, frame_id: str = 'camera_optical_frame'):
    """A ``sensor_msgs/Image`` (rgb8) of an RGB uint8 frame."""
    height, width = frame.shape[:2]
    return ifc.message_class('sensor_msgs/msg/Image')(
        header=ifc.header(stamp_ns, frame_id), height=height, width=width, encoding='rgb8',
        is_bigendian=0, step=width * 3,
        data=np.ascontiguousarray(frame, dtype=np.uint8).reshape(-1))


def image_array(msg) -> np.ndarray:
    """The RGB uint8 frame of an rgb8 or bgr8 ``sensor_msgs/Image``."""
    if msg.encoding not in ('rgb8', 'bgr8'):
        raise ValueError(f'image encoding {msg.encoding!r} is not supported (rgb8, bgr8)')
    rows = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.step)
    frame = rows[:, :msg.width * 3].reshape(msg.height, msg.width, 3)
    return frame[..., ::-1].copy() if msg.encoding == 'bgr8' else frame


def command_msg(pose, stamp_ns: int, source: int, frame_id: str = 'base_link'):
    """A ``CartesianCommand``."""
    x, y, z, yaw, width = (float(v) for v in pose)
    return ifc.message_class(M + 'CartesianCommand')(
        header=ifc.header(stamp_ns, frame_id), x=x, y=y, z=z, yaw=yaw, gripper_width=width,
        source=int(source))


def command_pose(msg) -> tuple:
    """``(x, y, z, yaw, gripper_width)`` of a CartesianCommand."""
    return (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)


def robot_state_msg(state, stamp_ns: int, fault: bool = False, frame_id: str = 'base_link'):
    """A ``RobotState`` from ``(x, y, z, yaw, vx, vy, vz, width, effort)``."""
    x, y, z, yaw, vx, vy, vz, width, effort = (float(v) for v in state)
    return ifc.message_class(M + 'RobotState')(
        header=ifc.header(stamp_ns, frame_id), x=x, y=y, z=z, yaw=yaw, vx=vx, vy=vy, vz=vz,
        gripper_width=width, gripper_effort=effort, gripper_fault=bool(fault))


def proprio(msg) -> tuple:
    """The policy's proprioception ``(x, y, z, yaw, gripper_width, gripper_effort)``."""
    return (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width, msg.gripper_effort)


def joint_state_msg(names, positions, velocities, stamp_ns: int, efforts=()):
    """A ``sensor_msgs/JointState``."""
    return ifc.message_class('sensor_msgs/msg/JointState')(
        header=ifc.header(stamp_ns), name=list(names),
        position=np.asarray(positions, np.float64), velocity=np.asarray(velocities, np.float64),
        effort=np.asarray(efforts, np.float64))


def chunk_msg(actions: np.ndarray, stamp_ns: int, model_id: str, sequence: int, period: float,
              start_offset: float, latency: float, action_names, frame_id: str = 'base_link'):
    """An ``ActionChunk``."""
    horizon, dim = actions.shape
    return ifc.message_class(M + 'ActionChunk')(
        header=ifc.header(stamp_ns, frame_id), model_id=model_id, sequence=int(sequence),
        horizon=horizon, action_dim=dim, action_names=list(action_names),
        action_period=ifc.duration_from_ns(round(period * 1e9)),
        start_offset=ifc.duration_from_ns(round(start_offset * 1e9)),
        actions=np.ascontiguousarray(actions, np.float64).reshape(-1),
        inference_latency=float(latency))


def chunk_actions(msg) -> np.ndarray:
    """The horizon x action_dim array of an ActionChunk (checks the declared sizes)."""
    if len(msg.actions) != msg.horizon * msg.action_dim:
        raise ValueError(f'ActionChunk.actions has {len(msg.actions)} values, header says '
                         f'{msg.horizon} x {msg.action_dim}')
    return np.asarray(msg.actions).reshape(msg.horizon, msg.action_dim)
