"""The shared message conversions bound to the in-process runtime's message factory.

``sim2real_safety.convert`` with the rosbags factory filled in, for tools that build messages
outside a node (replay, tests, export).
"""
from __future__ import annotations

from functools import partial

from sim2real_bringup.interfaces import MESSAGES
from sim2real_safety import convert as _shared
from sim2real_safety.convert import (  # noqa: F401 -- readers work on either runtime's messages
    chunk_actions,
    command_pose,
    image_array,
    proprio,
    state_pose,
)

image_msg = partial(_shared.image_msg, MESSAGES)
command_msg = partial(_shared.command_msg, MESSAGES)
robot_state_msg = partial(_shared.robot_state_msg, MESSAGES)
joint_state_msg = partial(_shared.joint_state_msg, MESSAGES)
chunk_msg = partial(_shared.chunk_msg, MESSAGES)
