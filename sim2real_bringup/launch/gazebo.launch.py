"""For users with Gazebo (Harmonic, gz-sim 8, and ros_gz for Jazzy): the suite on a Gazebo world.

The world is generated at launch from the MuJoCo cell's own dimensions and the randomization
config (``sim2real_policy.sim.gazebo_world``): table, object, camera with the suite's
intrinsics, and the 2F-85 on the Cartesian stage with the MuJoCo stage's travel and gains.
Gazebo's joint position controllers move it; ros_gz_bridge carries the clock, the camera and
its camera info, the joints and the object's pose; ``gz_driver_node`` serves them as the
standard driver interfaces (pose target, end-effector pose, JointState, GripperCommand), and
the suite runs on them through the same driver relay as ``robot.launch.py``, on use_sim_time.
``gz_episode_node`` judges each episode and places the object for the next one.

  ros2 launch sim2real_bringup gazebo.launch.py randomization:=light seed:=3
  ros2 launch sim2real_bringup gazebo.launch.py headless:=false      # with the Gazebo GUI
"""
import os
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import (
    CAMERA,
    CELL_FILE_NODES,
    GZ_DRIVER,
    GZ_EPISODE,
    POLICY,
    recorded_topics,
    RELAY,
    SUITE,
)


def _world(context):
    """Write the world and the bridge's topics for this launch's seed and profile."""
    import yaml

    from sim2real_policy.sim import gazebo_world
    from sim2real_policy.sim.randomization import Randomizer

    seed = int(LaunchConfiguration('seed').perform(context))
    profile = LaunchConfiguration('randomization').perform(context)
    config = LaunchConfiguration('randomization_file').perform(context)
    with open(config) as handle:
        # the first episode's draw (the object's placement is drawn in every profile, as
        # gz_episode_node draws the next ones)
        params = Randomizer(yaml.safe_load(handle), profile).sample(seed)
    folder = tempfile.mkdtemp(prefix='sim2real_gazebo_')
    world = os.path.join(folder, 'grasp_cell.sdf')
    bridge = os.path.join(folder, 'bridge.yaml')
    with open(world, 'w') as handle:
        handle.write(gazebo_world.world_sdf(params))
    with open(bridge, 'w') as handle:
        yaml.safe_dump(gazebo_world.bridge_topics(), handle, sort_keys=False)
    headless = LaunchConfiguration('headless').perform(context).lower() in ('true', '1')
    gz = ['gz', 'sim', '-r', world] + (['-s', '--headless-rendering'] if headless else [])
    return [
        LogInfo(msg=f'gazebo.launch: world {world} (seed {seed}, randomization {profile})'),
        ExecuteProcess(cmd=gz, output='screen', name='gz_sim',
                       sigterm_timeout='10', sigkill_timeout='10'),
        Node(package='ros_gz_bridge', executable='parameter_bridge', name='gz_bridge',
             output='screen', parameters=[{'config_file': bridge, 'use_sim_time': True}]),
    ]


def generate_launch_description():
    share = FindPackageShare('sim2real_bringup')
    sim_time = {'use_sim_time': True}
    policy = {'model_path': LaunchConfiguration('model_path')}
    cell = {'calibration_file': LaunchConfiguration('calibration_file')}
    extra = {spec.executable: dict(cell) for spec in CELL_FILE_NODES}
    extra[CAMERA.executable] = policy
    extra[POLICY.executable].update(policy)
    # The shipped cell file was commissioned in MuJoCo: its check pixel is the keypoint
    # network's on MuJoCo's rendering, not on Gazebo's (the projection is the same camera).
    extra[POLICY.executable]['verify_calibration'] = LaunchConfiguration('verify_calibration')
    suite = [suite_node(spec, **sim_time, **extra.get(spec.executable, {})) for spec in SUITE]
    relay = suite_node(RELAY, **sim_time)
    driver = suite_node(GZ_DRIVER, **sim_time)
    episodes = suite_node(GZ_EPISODE, **sim_time,
                          randomization=LaunchConfiguration('randomization'),
                          randomization_file=LaunchConfiguration('randomization_file'),
                          seed=LaunchConfiguration('seed'))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--use-sim-time', '-o',
             LaunchConfiguration('bag'), *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        DeclareLaunchArgument('randomization', default_value='none',
                              description='randomization profile: none, light, heavy (the '
                                          "world's object, colours, light, physics at start; "
                                          "each episode's object pose)"),
        DeclareLaunchArgument('randomization_file', default_value=PathJoinSubstitution(
            [share, 'config', 'randomization.yaml']), description='randomization ranges'),
        DeclareLaunchArgument('seed', default_value='0', description='first episode seed'),
        DeclareLaunchArgument('headless', default_value='true',
                              description='true: the server only, rendering the camera '
                                          'offscreen (EGL); false: with the Gazebo GUI'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='ONNX policy ("" = the bundled policy)'),
        DeclareLaunchArgument('calibration_file', default_value=PathJoinSubstitution(
            [share, 'config', 'cell_calibration_sim.yaml']),
            description="the cell's calibration (the world's camera is the nominal one)"),
        DeclareLaunchArgument('verify_calibration', default_value='false',
                              description="check the cell file against Gazebo's camera "
                                          '(the shipped file is the MuJoCo cell: false)'),
        DeclareLaunchArgument('record', default_value='false',
                              description='record every suite topic with rosbag2 (MCAP)'),
        DeclareLaunchArgument('bag', default_value='sim2real_gazebo_run',
                              description='rosbag2 output folder (must not exist)'),
        OpaqueFunction(function=_world),
        driver, episodes, *suite, relay, record,
    ])
