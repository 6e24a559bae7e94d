"""The MuJoCo cell as a Gazebo (Harmonic, gz-sim 8) world, and the ros_gz_bridge topics for it.

Every dimension comes from the MuJoCo side: the stage's joints, travel, gains and damping, the
table and the camera from :mod:`sim2real_policy.sim.scene`; the 2F-85's finger pads and mass
from the compiled MuJoCo model (:func:`gripper_geometry`). ``test_gazebo_world`` compares the
two, so they cannot drift.

What differs, deliberately:
- The 2F-85's four-bar linkage becomes two prismatic fingers carrying the MuJoCo pads at
  their fully open height. Closing, the MuJoCo fingertips swing down (17.9 mm below the TCP
  closed, 4.5 mm open); these stay at the open height, so at every opening they are no
  lower than the modelled ones and the safety filter's finger floor stays conservative.
- Gazebo joints are offsets from :data:`~sim2real_policy.sim.robot.HOME` (zero inside their
  travel); ``gz_driver_node`` adds HOME back, so the suite sees joint positions that *are*
  the TCP coordinates, as with the MuJoCo stage.
- The robot's links do not feel gravity (MuJoCo's ``gravcomp``: the stage carries the gripper
  as a real arm's controller does).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GRIPPER_MAX_WIDTH, HOME
from sim2real_policy.sim.scene import (
    CAMERA_FOVY,
    CAMERA_POSITION,
    CAMERA_TARGET,
    look_at,
    object_half_height,
    PINCH_OFFSET,
    STAGE_DAMPING,
    STAGE_JOINTS,
    STAGE_KP,
    STAGE_RANGE,
    TABLE_CENTRE,
    TABLE_HALF_SIZE,
    TIMESTEP,
)

WORLD = 'grasp_cell'
ROBOT = 'robot'
OBJECT = 'object'
FINGER_JOINTS = ('finger_left', 'finger_right')
STATE_RATE = 100.0   # Hz of the joint states (the suite's control rate)
# The fingers' position gain (N/m) and force limit (N): they squeeze an object with up to the
# force limit, as the 2F-85's actuator does (its force range at EFFORT_PER_UNIT).
FINGER_KP = 4000.0
FINGER_FORCE = 60.0
FINGER_DAMPING = 20.0
# Gazebo's PBR lighting of MuJoCo's light (its ambient and diffuse), matched by eye on the
# nominal scene: the same intensities render brighter and washed out in ogre2.
AMBIENT = 0.6
# gz-sensors' Gaussian camera noise, measured on ogre2 here: its frames differ far less than
# its stddev says. With this gain, consecutive frames differ by the MuJoCo camera's amount
# (camera_noise 2: 2.2 grey levels mean absolute difference in both).
NOISE_GAIN = 7.7
LIGHT_SCALE = 2.0


@dataclass(frozen=True)
class GripperGeometry:
    """The MuJoCo 2F-85's pads, fully open, relative to the TCP (m, kg)."""

    pad_size: tuple        # x (closing direction), y, z extents of one finger's pads
    pad_centre_z: float    # height of the pads' centre above the TCP
    open_gap: float        # distance between the pads' inner faces, fully open
    mass: float            # the gripper's mass


def gripper_geometry() -> GripperGeometry:
    """Measure the pads in the compiled MuJoCo model with the stage at HOME, fully open."""
    import mujoco

    from sim2real_policy.sim.scene import build_model
    model = build_model(SimParams())
    data = mujoco.MjData(model)
    for name, value in zip(STAGE_JOINTS, HOME):
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_forward(model, data)
    low, high = np.full(3, np.inf), np.full(3, -np.inf)
    for geom in range(model.ngeom):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, geom) or ''
        if not name.startswith('gripper/left_pad'):
            continue
        # world-aligned extent of the (rotated) box
        half = np.abs(data.geom_xmat[geom].reshape(3, 3)) @ model.geom_size[geom]
        low = np.minimum(low, data.geom_xpos[geom] - half)
        high = np.maximum(high, data.geom_xpos[geom] + half)
    mass = sum(model.body_mass[b] for b in range(model.nbody)
               if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or '')
               .startswith('gripper/'))
    size = tuple(float(v) for v in high - low)
    return GripperGeometry(pad_size=size, pad_centre_z=float((low[2] + high[2]) / 2 - HOME[2]),
                           open_gap=GRIPPER_MAX_WIDTH, mass=float(mass))


def _rgba(rgb) -> str:
    return ' '.join(f'{v:.4f}' for v in (*rgb, 1.0))


def _material(rgb) -> str:
    # ogre2 shades in linear light and writes sRGB; MuJoCo's colours are the pixels' own
    rgb = tuple(v ** 2.2 for v in rgb)
    return (f'<material><ambient>{_rgba(rgb)}</ambient><diffuse>{_rgba(rgb)}</diffuse>'
            '<specular>0 0 0 1</specular></material>')


def _box(name: str, size, pose=(0, 0, 0), rgb=(0.2, 0.2, 0.2), collide=True, mu=1.0) -> str:
    geometry = f'<geometry><box><size>{" ".join(f"{v:.6f}" for v in size)}</size></box></geometry>'
    where = f'<pose>{" ".join(f"{v:.6f}" for v in pose)} 0 0 0</pose>'
    collision = (f'<collision name="{name}_c">{where}{geometry}<surface><friction><ode>'
                 f'<mu>{mu}</mu><mu2>{mu}</mu2></ode></friction></surface></collision>'
                 if collide else '')
    return f'{collision}<visual name="{name}_v">{where}{geometry}{_material(rgb)}</visual>'


def _inertial(mass: float, half: float = 0.03) -> str:
    inertia = mass * (2 * half) ** 2 / 6.0  # a cube of side 2 x half
    return (f'<inertial><mass>{mass}</mass><inertia><ixx>{inertia}</ixx><iyy>{inertia}</iyy>'
            f'<izz>{inertia}</izz><ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia></inertial>')


def camera_pose(p: SimParams) -> tuple:
    """The scene camera's pose for Gazebo: (x, y, z, roll, pitch, yaw), looking along +x."""
    position = np.add(CAMERA_POSITION, p.camera_offset)
    right, up = np.split(look_at(position, np.add(CAMERA_TARGET, p.camera_aim_offset),
                                 p.camera_tilt), 2)
    forward = np.cross(up, right)   # MuJoCo cameras look along -z of (right, up, z)
    rotation = np.column_stack([forward, -right, up])   # Gazebo: x forward, y left, z up
    roll = math.atan2(rotation[2, 1], rotation[2, 2])
    pitch = math.asin(-max(-1.0, min(1.0, rotation[2, 0])))
    yaw = math.atan2(rotation[1, 0], rotation[0, 0])
    return (*(float(v) for v in position), roll, pitch, yaw)


def _object(p: SimParams) -> str:
    if p.object_shape == 'box':
        shape = (f'<box><size>{2 * p.object_size} {2 * p.object_size} '
                 f'{2 * p.object_height}</size></box>')
    elif p.object_shape == 'cylinder':
        shape = (f'<cylinder><radius>{p.object_size}</radius>'
                 f'<length>{2 * p.object_height}</length></cylinder>')
    else:
        shape = f'<sphere><radius>{p.object_size}</radius></sphere>'
    z = p.table_height + object_half_height(p) + 0.0005
    mu = p.object_friction
    return f"""
    <model name="{OBJECT}">
      <pose>{p.object_x} {p.object_y} {z} 0 0 {p.object_yaw}</pose>
      <link name="body">
        {_inertial(p.object_mass, max(p.object_size, p.object_height))}
        <collision name="c"><geometry>{shape}</geometry>
          <surface><friction><ode><mu>{mu}</mu><mu2>{mu}</mu2></ode></friction></surface>
        </collision>
        <visual name="v"><geometry>{shape}</geometry>{_material(p.object_rgb)}</visual>
      </link>
      <plugin filename="gz-sim-pose-publisher-system" name="gz::sim::systems::PosePublisher">
        <publish_link_pose>false</publish_link_pose>
        <publish_model_pose>true</publish_model_pose>
        <use_pose_vector_msg>false</use_pose_vector_msg>
        <update_frequency>50</update_frequency>
      </plugin>
    </model>"""


def _robot(p: SimParams, g: GripperGeometry) -> str:
    """The Cartesian stage (x, y, z, yaw), the gripper body and two prismatic fingers."""
    links, joints, controllers = [], [], []
    home = f'{HOME[0]} {HOME[1]} {HOME[2]} 0 0 0'
    parents = ('base', 'stage_x_link', 'stage_y_link', 'stage_z_link')
    axes = ('1 0 0', '0 1 0', '0 0 1', '0 0 1')
    links.append(f'<link name="base"><pose>{home}</pose>{_inertial(1.0)}'
                 '<gravity>false</gravity></link>')
    joints.append('<joint name="fixed_to_world" type="fixed"><parent>world</parent>'
                  '<child>base</child></joint>')
    for index, (name, (low, high), kp, damping) in enumerate(
            zip(STAGE_JOINTS, STAGE_RANGE, STAGE_KP, STAGE_DAMPING)):
        mass = p.stage_mass if name == 'stage_yaw' else 0.01
        links.append(f'<link name="{name}_link"><pose>{home}</pose>{_inertial(mass)}'
                     '<gravity>false</gravity></link>')
        kind = 'revolute' if name == 'stage_yaw' else 'prismatic'
        joints.append(
            f'<joint name="{name}" type="{kind}"><parent>{parents[index]}</parent>'
            f'<child>{name}_link</child><axis><xyz>{axes[index]}</xyz><limit>'
            f'<lower>{low - HOME[index]}</lower><upper>{high - HOME[index]}</upper>'
            f'</limit><dynamics><damping>{damping * p.joint_damping}</damping></dynamics>'
            '</axis></joint>')
        controllers.append(_controller(name, kp * p.actuator_strength, 1e6))
    pad_x, pad_y, pad_z = g.pad_size
    body_low = g.pad_centre_z + pad_z / 2
    body_size = (g.open_gap + 2 * pad_x, pad_y * 2, PINCH_OFFSET - body_low)
    links.append(
        f'<link name="gripper"><pose>{home}</pose>{_inertial(g.mass - 0.1)}'
        '<gravity>false</gravity>'
        + _box('body', body_size, (0, 0, body_low + body_size[2] / 2), (0.15, 0.15, 0.15))
        + '</link>')
    joints.append('<joint name="gripper_mount" type="fixed"><parent>stage_yaw_link</parent>'
                  '<child>gripper</child></joint>')
    for name, side in zip(FINGER_JOINTS, (-1.0, 1.0)):
        # the inner face at +-open_gap/2 when open; closing moves it toward the TCP
        x = side * (g.open_gap + pad_x) / 2
        links.append(
            f'<link name="{name}_link"><pose>{home}</pose>{_inertial(0.05, 0.01)}'
            '<gravity>false</gravity>'
            + _box('pad', g.pad_size, (x, 0, g.pad_centre_z), (0.1, 0.1, 0.1), mu=1.0)
            + '</link>')
        joints.append(
            f'<joint name="{name}" type="prismatic"><parent>gripper</parent><child>{name}'
            f'_link</child><axis><xyz>{-side} 0 0</xyz><limit><lower>0</lower>'
            f'<upper>{g.open_gap / 2}</upper></limit><dynamics><damping>{FINGER_DAMPING}'
            '</damping></dynamics></axis></joint>')
        controllers.append(_controller(name, FINGER_KP, FINGER_FORCE * p.gripper_strength))
    return f"""
    <model name="{ROBOT}">
      {''.join(links)}
      {''.join(joints)}
      {''.join(controllers)}
      <plugin filename="gz-sim-joint-state-publisher-system"
              name="gz::sim::systems::JointStatePublisher">
        {''.join(f'<joint_name>{j}</joint_name>' for j in (*STAGE_JOINTS, *FINGER_JOINTS))}
        <update_rate>{STATE_RATE}</update_rate>
      </plugin>
    </model>"""


def _controller(joint: str, kp: float, force: float) -> str:
    return (f'<plugin filename="gz-sim-joint-position-controller-system" '
            f'name="gz::sim::systems::JointPositionController"><joint_name>{joint}'
            f'</joint_name><topic>{command_topic(joint)}</topic><p_gain>{kp}</p_gain>'
            f'<i_gain>0</i_gain><d_gain>0</d_gain><cmd_max>{force}</cmd_max>'
            f'<cmd_min>{-force}</cmd_min></plugin>')


def command_topic(joint: str) -> str:
    """The Gazebo topic of ``joint``'s position target (gz.msgs.Double)."""
    return f'/model/{ROBOT}/joint/{joint}/cmd_pos'


def world_sdf(p: SimParams, image_size: int = 96, camera_rate: float = 10.0) -> str:
    """The cell for ``p`` (object, colours, light, camera jitter), as SDF 1.9."""
    g = gripper_geometry()
    camera = ' '.join(f'{v:.6f}' for v in camera_pose(p))
    light = p.light_intensity
    tx, ty = TABLE_CENTRE
    table = tuple(2 * v for v in TABLE_HALF_SIZE)
    return f"""<?xml version="1.0"?>
<!-- Generated by sim2real_policy.sim.gazebo_world (seed {p.seed}): do not edit. -->
<sdf version="1.9">
  <world name="{WORLD}">
    <physics name="1ms" type="ignored">
      <max_step_size>{TIMESTEP}</max_step_size>
      <real_time_factor>1.0</real_time_factor>
    </physics>
    <gravity>0 0 {-p.gravity}</gravity>
    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>
    <plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>
    <plugin filename="gz-sim-scene-broadcaster-system"
            name="gz::sim::systems::SceneBroadcaster"/>
    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">
      <render_engine>ogre2</render_engine>
    </plugin>
    <scene>
      <ambient>{AMBIENT} {AMBIENT} {AMBIENT} 1</ambient>
      <background>0 0 0 1</background>
      <shadows>false</shadows>
    </scene>
    <light type="directional" name="key">
      <pose>{' '.join(map(str, p.light_pos))} 0 0 0</pose>
      <direction>0 0 -1</direction>
      <diffuse>{light} {light} {light} 1</diffuse>
      <intensity>{LIGHT_SCALE}</intensity>
      <specular>0 0 0 1</specular>
      <cast_shadows>false</cast_shadows>
    </light>
    <model name="floor">
      <static>true</static>
      <link name="floor">{_box('floor', (6, 6, 0.01), (0, 0, p.table_height - 0.755),
                                p.floor_rgb)}</link>
    </model>
    <model name="table">
      <static>true</static>
      <link name="top">{_box('top', table, (tx, ty, p.table_height - TABLE_HALF_SIZE[2]),
                              p.table_rgb, mu=0.8)}</link>
    </model>
    {_object(p)}
    {_robot(p, g)}
    <model name="scene_camera">
      <static>true</static>
      <pose>{camera}</pose>
      <link name="link">
        <sensor name="camera" type="camera">
          <topic>/gz/camera/image</topic>
          <update_rate>{camera_rate}</update_rate>
          <always_on>true</always_on>
          <camera>
            <camera_info_topic>/gz/camera/camera_info</camera_info_topic>
            <horizontal_fov>{math.radians(CAMERA_FOVY)}</horizontal_fov>
            <image><width>{image_size}</width><height>{image_size}</height>
              <format>R8G8B8</format></image>
            <clip><near>0.01</near><far>10</far></clip>
            <!-- a real sensor is never noise-free (and a frame-freeze check needs that) -->
            <noise><type>gaussian</type><mean>0</mean>
              <stddev>{p.camera_noise / 255.0 * NOISE_GAIN}</stddev></noise>
          </camera>
        </sensor>
      </link>
    </model>
  </world>
</sdf>
"""


def bridge_topics() -> list[dict]:
    """ros_gz_bridge's config for the world: clock, camera, robot joints, object pose."""
    def entry(ros, gz, ros_type, gz_type, direction):
        return {'ros_topic_name': ros, 'gz_topic_name': gz, 'ros_type_name': ros_type,
                'gz_type_name': gz_type, 'direction': direction}
    topics = [
        entry('/clock', '/clock', 'rosgraph_msgs/msg/Clock', 'gz.msgs.Clock', 'GZ_TO_ROS'),
        entry('/camera/image_raw', '/gz/camera/image', 'sensor_msgs/msg/Image',
              'gz.msgs.Image', 'GZ_TO_ROS'),
        entry('/camera/camera_info', '/gz/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
              'gz.msgs.CameraInfo', 'GZ_TO_ROS'),
        entry('/gz/joint_states', f'/world/{WORLD}/model/{ROBOT}/joint_state',
              'sensor_msgs/msg/JointState', 'gz.msgs.Model', 'GZ_TO_ROS'),
        entry('/gz/object_pose', f'/model/{OBJECT}/pose', 'geometry_msgs/msg/PoseStamped',
              'gz.msgs.Pose', 'GZ_TO_ROS'),
    ]
    for joint in (*STAGE_JOINTS, *FINGER_JOINTS):
        topics.append(entry(f'/gz/{joint}/cmd_pos', command_topic(joint),
                            'std_msgs/msg/Float64', 'gz.msgs.Double', 'ROS_TO_GZ'))
    return topics
