"""The same graph as robot.launch.py with the embedded MuJoCo robot instead of drivers.

  ros2 launch sim2real_bringup sim.launch.py randomization:=heavy

sim_robot_node publishes /clock; every other node runs with use_sim_time.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import CELL_FILE_NODES, recorded_topics, SIM_ROBOT, SUITE


def generate_launch_description():
    share = FindPackageShare('sim2real_bringup')
    sim_time = {'use_sim_time': True}
    policy = {'model_path': LaunchConfiguration('model_path')}
    cell = {'calibration_file': LaunchConfiguration('calibration_file')}
    extra = {spec.executable: dict(cell) for spec in CELL_FILE_NODES}
    extra['camera_node'] = policy
    extra['policy_node'].update(policy)
    suite = [suite_node(spec, **sim_time, **extra.get(spec.executable, {})) for spec in SUITE]
    robot = suite_node(SIM_ROBOT, randomization=LaunchConfiguration('randomization'),
                 randomization_file=PathJoinSubstitution([share, 'config',
                                                          'randomization.yaml']),
                 seed=LaunchConfiguration('seed'))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--use-sim-time', '-o',
             LaunchConfiguration('bag'), '/clock', *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        DeclareLaunchArgument('randomization', default_value='none',
                              description='randomization profile: none, light, heavy'),
        DeclareLaunchArgument('seed', default_value='0', description='first episode seed'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='ONNX policy ("" = the bundled policy)'),
        DeclareLaunchArgument('calibration_file',
                              default_value=PathJoinSubstitution(
                                  [share, 'config', 'cell_calibration_sim.yaml']),
                              description="the cell's calibration for the keypoint policy "
                                          '(default: the nominal scene, sim2real '
                                          'calibrate-cell)'),
        DeclareLaunchArgument('record', default_value='false',
                              description='record every suite topic with rosbag2 (MCAP)'),
        DeclareLaunchArgument('bag', default_value='sim2real_sim_run',
                              description='rosbag2 output folder (must not exist)'),
        robot, *suite, record,
    ])
