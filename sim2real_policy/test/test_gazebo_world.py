"""The Gazebo world is the MuJoCo cell: dimensions read back from the SDF against the model."""
import math
from pathlib import Path
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import mujoco
import numpy as np
import pytest
import yaml

from sim2real_policy.gripper_goals import GripperGoals, GripperJoint
from sim2real_policy.sim import gazebo_world
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import Randomizer
from sim2real_policy.sim.robot import HOME
from sim2real_policy.sim.scene import build_model, STAGE_JOINTS

CONFIG = Path(__file__).resolve().parents[2] / 'config'


@pytest.fixture(scope='module')
def nominal():
    params = SimParams()
    return params, ElementTree.fromstring(gazebo_world.world_sdf(params)), build_model(params)


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def test_the_stage_joints_have_the_mujoco_travel_damping_and_gains(nominal):
    _, world, model = nominal
    robot = world.find(".//model[@name='robot']")
    for index, name in enumerate(STAGE_JOINTS):
        joint = robot.find(f"joint[@name='{name}']")
        limit = joint.find('axis/limit')
        # Gazebo joints are offsets from HOME: HOME added back is the MuJoCo joint's range
        travel = (float(limit.find('lower').text) + HOME[index],
                  float(limit.find('upper').text) + HOME[index])
        assert travel == pytest.approx(tuple(model.joint(name).range))
        damping = float(joint.find('axis/dynamics/damping').text)
        assert damping == pytest.approx(model.dof_damping[model.joint(name).dofadr[0]])
        controller = robot.find(
            f"plugin[@name='gz::sim::systems::JointPositionController'][joint_name='{name}']")
        assert float(controller.find('p_gain').text) == pytest.approx(
            model.actuator(f'act_{name}').gainprm[0])


def test_the_table_and_the_camera_are_where_the_mujoco_ones_are(nominal):
    _, world, model = nominal
    top = world.find(".//model[@name='table']//collision")
    size = floats(top.find('geometry/box/size').text)
    centre = floats(top.find('pose').text)[:3]
    assert size == pytest.approx(list(2 * model.geom('table').size))
    assert centre == pytest.approx(list(model.geom('table').pos))
    camera = world.find(".//model[@name='scene_camera']")
    x, y, z, roll, pitch, yaw = floats(camera.find('pose').text)
    assert (x, y, z) == pytest.approx(tuple(model.cam('scene').pos))
    # Gazebo's camera looks along its +x; MuJoCo's along -z of its frame
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    mujoco_forward = -data.cam('scene').xmat.reshape(3, 3)[:, 2]
    gz_forward = (math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                  -math.sin(pitch))
    assert np.dot(mujoco_forward, gz_forward) == pytest.approx(1.0, abs=1e-9)
    fov = float(camera.find('.//horizontal_fov').text)
    assert math.degrees(fov) == pytest.approx(model.cam('scene').fovy[0])  # square images


def test_the_fingers_never_reach_lower_than_the_mujoco_ones(nominal):
    # the safety filter's finger floor comes from the MuJoCo 2F-85 (finger_drop): the
    # Gazebo fingers must lie no lower below the TCP at any opening
    _, world, _ = nominal
    safety = yaml.safe_load((CONFIG / 'safety.yaml').read_text())
    depths = safety['safety_node']['ros__parameters']['finger_drop']['depths']
    robot = world.find(".//model[@name='robot']")
    for name in gazebo_world.FINGER_JOINTS:
        pad = robot.find(f".//link[@name='{name}_link']/collision")
        z, height = floats(pad.find('pose').text)[2], floats(pad.find('geometry/box/size').text)[2]
        assert z - height / 2 >= -min(depths) - 1e-6


def test_the_pads_are_the_mujoco_pads_and_open_to_the_full_width(nominal):
    _, world, model = nominal
    geometry = gazebo_world.gripper_geometry()
    # the MuJoCo pads' own boxes: two per finger, stacked along the gripper's axis
    pad = model.geom('gripper/left_pad1').size
    assert sorted(geometry.pad_size) == pytest.approx(sorted([2 * pad[0], 2 * pad[1],
                                                              4 * pad[2]]))
    robot = world.find(".//model[@name='robot']")
    faces = []
    for name in gazebo_world.FINGER_JOINTS:
        collision = robot.find(f".//link[@name='{name}_link']/collision")
        x = floats(collision.find('pose').text)[0]
        thickness = floats(collision.find('geometry/box/size').text)[0]
        faces.append(abs(x) - thickness / 2)
        upper = float(robot.find(f"joint[@name='{name}']/axis/limit/upper").text)
        assert upper == pytest.approx(geometry.open_gap / 2)   # closing meets in the middle
    assert sum(faces) == pytest.approx(0.085)


def test_a_randomized_world_places_and_colours_the_object_as_drawn():
    randomizer = Randomizer(yaml.safe_load((CONFIG / 'randomization.yaml').read_text()),
                            'heavy')
    poses = set()
    for seed in (1, 2):
        params = randomizer.sample(seed)
        world = ElementTree.fromstring(gazebo_world.world_sdf(params))
        obj = world.find(".//model[@name='object']")
        x, y, _, _, _, yaw = floats(obj.find('pose').text)
        assert (x, y, yaw) == pytest.approx((params.object_x, params.object_y,
                                             params.object_yaw))
        colour = floats(obj.find('.//visual/material/diffuse').text)[:3]
        assert colour == pytest.approx([v ** 2.2 for v in params.object_rgb], abs=1e-4)
        poses.add((x, y))
    assert len(poses) == 2


def test_the_world_validates_where_gazebo_is_installed(tmp_path):
    if shutil.which('gz') is None:
        pytest.skip('Gazebo (gz sdf) is not installed: the SDF is checked as XML only')
    path = tmp_path / 'world.sdf'
    path.write_text(gazebo_world.world_sdf(SimParams()))
    result = subprocess.run(['gz', 'sdf', '-k', str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and 'Valid' in result.stdout, result.stdout + result.stderr


def test_every_joint_command_topic_is_bridged_to_its_controller(nominal):
    _, world, _ = nominal
    controllers = {p.find('topic').text for p in world.iter('plugin')
                   if p.get('name') == 'gz::sim::systems::JointPositionController'}
    bridged = {e['gz_topic_name'] for e in gazebo_world.bridge_topics()
               if e['direction'] == 'ROS_TO_GZ'}
    assert controllers == bridged and len(controllers) == 6


def test_a_gripper_goal_is_reached_stalls_or_is_preempted():
    outcomes = []
    goals = GripperGoals(tolerance=0.002, stall_time=0.3)
    goals.start(0.02, 0, 0.085, outcomes.append)
    goals.update(10_000_000, 0.05)           # moving: nothing yet
    goals.start(0.0, 20_000_000, 0.05, outcomes.append)
    assert outcomes == ['preempted']
    goals.update(30_000_000, 0.03)
    goals.update(200_000_000, 0.03)          # on an object: not moving, not yet stalled
    goals.update(330_000_000, 0.03)          # 0.3 s without motion
    assert outcomes == ['preempted', 'stalled']
    goals.start(0.085, 400_000_000, 0.03, outcomes.append)
    goals.update(500_000_000, 0.0840)
    assert outcomes == ['preempted', 'stalled', 'reached']


def test_the_gripper_joint_maps_width_and_position_both_ways():
    knuckle = GripperJoint(open_position=0.0, closed_position=0.8, width_max=0.085)
    assert knuckle.position(0.085) == pytest.approx(0.0)
    assert knuckle.position(0.0) == pytest.approx(0.8)
    for width in np.linspace(0.0, 0.085, 7):
        assert knuckle.width(knuckle.position(width)) == pytest.approx(width)
    assert knuckle.width(-1.0) == pytest.approx(0.085)   # beyond open: clamped
