"""The MuJoCo scene: table, object, camera, light and the 2F-85 on a Cartesian stage.

The stage's joints ``stage_x``, ``stage_y``, ``stage_z``, ``stage_yaw`` are placed so that
their positions *are* the tool centre point (the 2F-85 ``pinch`` site, between the fingertips)
in the base frame: a command ``(x, y, z, yaw)`` is the stage's position target directly.

Render settings are chosen by measurement (see ``sim2real bench sim``): no multisampling and
no shadows; the gripper meshes dominate the cost, not the resolution.
"""
from __future__ import annotations

import math

import mujoco
import numpy as np

from sim2real_policy.sim.assets import gripper_xml
from sim2real_policy.sim.params import OBJECT_SHAPES, SimParams

STAGE_JOINTS = ('stage_x', 'stage_y', 'stage_z', 'stage_yaw')
# Stage travel (TCP coordinates; m, rad). The safety limits sit inside these.
STAGE_RANGE = ((0.25, 0.85), (-0.30, 0.30), (-0.02, 0.50), (-1.65, 1.65))
TIMESTEP = 0.001           # s; 0.002 is occasionally unstable with the 2F-85 linkage
PINCH_OFFSET = 0.1558      # m from the flange to the pinch site along the gripper axis
STAGE_KP = (6000.0, 6000.0, 6000.0, 60.0)
STAGE_DAMPING = (220.0, 220.0, 220.0, 2.0)
# The table: its top's centre in the base frame (x, y; z is SimParams.table_height) and
# half-sizes (m); the top face is at table_height.
TABLE_CENTRE = (0.55, 0.0)
TABLE_HALF_SIZE = (0.42, 0.4, 0.02)
CAMERA_FOVY = 45.0         # degrees, vertical (square images: the horizontal one too)
CAMERA_TARGET = (0.52, 0.0, 0.08)
CAMERA_POSITION = (1.12, 0.0, 0.52)
MAX_RENDER_SIZE = 512


def look_at(position, target, tilt):
    """MuJoCo camera ``xyaxes`` looking from ``position`` at ``target``, pitched by ``tilt``."""
    forward = np.subtract(target, position).astype(float)
    forward /= np.linalg.norm(forward)
    c, s = math.cos(tilt), math.sin(tilt)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    forward, up = c * forward + s * up, c * up - s * forward  # pitch about the right axis
    return np.concatenate([right, up])


def _rgba(rgb) -> str:
    return ' '.join(f'{v:.4f}' for v in (*rgb, 1.0))


def _object_geom(p: SimParams) -> str:
    if p.object_shape not in OBJECT_SHAPES:
        raise ValueError(f'object_shape must be one of {OBJECT_SHAPES}, got {p.object_shape!r}')
    if p.object_shape == 'box':
        size = f'{p.object_size} {p.object_size} {p.object_height}'
    elif p.object_shape == 'cylinder':
        size = f'{p.object_size} {p.object_height}'
    else:
        size = f'{p.object_size}'
    return (f'<geom name="object" type="{p.object_shape}" size="{size}" mass="{p.object_mass}" '
            f'rgba="{_rgba(p.object_rgb)}" friction="{p.object_friction} 0.005 '
            f'{p.rolling_friction}" condim="6"/>')


def object_half_height(p: SimParams) -> float:
    """Height of the object's centre above the table when it rests (m)."""
    return p.object_size if p.object_shape == 'sphere' else p.object_height


def scene_xml(p: SimParams) -> str:
    """The world around the gripper, as MJCF."""
    cam_pos = np.add(CAMERA_POSITION, p.camera_offset)
    target = np.add(CAMERA_TARGET, p.camera_aim_offset)
    xyaxes = ' '.join(f'{v:.6f}' for v in look_at(cam_pos, target, p.camera_tilt))
    joints = []
    for name, (low, high), damping, axis in zip(
            STAGE_JOINTS, STAGE_RANGE, STAGE_DAMPING,
            ('slide" axis="1 0 0', 'slide" axis="0 1 0', 'slide" axis="0 0 1',
             'hinge" axis="0 0 1')):
        joints.append(f'<joint name="{name}" type="{axis}" range="{low} {high}" '
                      f'damping="{damping * p.joint_damping}" stiffness="{p.joint_stiffness}" '
                      f'frictionloss="{p.joint_friction if name != "stage_yaw" else 0.0}" '
                      f'armature="{0.05 if name == "stage_yaw" else 1.0}"/>')
    actuators = '\n'.join(
        f'<position name="act_{name}" joint="{name}" kp="{kp * p.actuator_strength}" '
        f'ctrlrange="{low} {high}"/>'
        for name, (low, high), kp in zip(STAGE_JOINTS, STAGE_RANGE, STAGE_KP))
    z_obj = p.table_height + object_half_height(p) + 0.0005
    return f"""
<mujoco model="sim2real_gripper">
  <!-- MJCF reads angles as degrees unless told: the stage's yaw travel is in radians -->
  <compiler angle="radian"/>
  <!-- the object's yaw is a quaternion: MJCF euler angles are degrees unless compiler says
       otherwise, and object_yaw is radians -->
  <option timestep="{TIMESTEP}" gravity="0 0 {-p.gravity}" cone="elliptic" impratio="10"
          integrator="implicitfast"/>
  <visual>
    <global offwidth="{MAX_RENDER_SIZE}" offheight="{MAX_RENDER_SIZE}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.2 0.2 0.2"/>
  </visual>
  <worldbody>
    <light name="key" pos="{' '.join(map(str, p.light_pos))}" dir="0 0 -1" castshadow="false"
           diffuse="{p.light_intensity} {p.light_intensity} {p.light_intensity}"/>
    <geom name="floor" type="plane" pos="0 0 {p.table_height - 0.75}" size="3 3 0.1"
          rgba="{_rgba(p.floor_rgb)}"/>
    <geom name="table" type="box"
          pos="{TABLE_CENTRE[0]} {TABLE_CENTRE[1]} {p.table_height - TABLE_HALF_SIZE[2]}"
          size="{' '.join(map(str, TABLE_HALF_SIZE))}"
          rgba="{_rgba(p.table_rgb)}" friction="0.8 0.005 0.0001"/>
    <camera name="scene" pos="{' '.join(f'{v:.6f}' for v in cam_pos)}" xyaxes="{xyaxes}"
            fovy="{CAMERA_FOVY}"/>
    <body name="stage" gravcomp="1">
      {' '.join(joints)}
      <inertial pos="0 0 0" mass="{p.stage_mass}" diaginertia="0.01 0.01 0.01"/>
      <frame name="flange" pos="0 0 {PINCH_OFFSET}" quat="0 1 0 0"/>
    </body>
    <body name="object" pos="{p.object_x} {p.object_y} {z_obj}"
          quat="{math.cos(p.object_yaw / 2)} 0 0 {math.sin(p.object_yaw / 2)}">
      <freejoint name="object"/>
      {_object_geom(p)}
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>"""


def build_model(p: SimParams) -> mujoco.MjModel:
    """Compile the scene for ``p`` (about 25 ms)."""
    spec = mujoco.MjSpec.from_string(scene_xml(p))
    gripper = mujoco.MjSpec.from_file(str(gripper_xml()))
    spec.frame('flange').attach_body(gripper.body('base_mount'), 'gripper/', '')
    for body in spec.bodies:
        if body.name.startswith('gripper/'):
            body.gravcomp = 1.0  # the stage carries the gripper like a real arm would
    for geom in spec.geoms:
        if geom.name.startswith('gripper/') and 'pad' in geom.name:
            geom.friction[0] *= p.pad_friction
    actuator = spec.actuator('gripper/fingers_actuator')
    actuator.forcerange = np.array(actuator.forcerange) * p.gripper_strength
    return spec.compile()
