"""For users with Gazebo (Harmonic, ros_gz): the suite on a Gazebo world instead of MuJoCo.

Starts ros_gz_sim with worlds/grasp_cell.sdf (table, object, camera; the arm and gripper are
the user's robot model, with gz_ros2_control), bridges the clock, the camera and the arm's
pose topics with ros_gz_bridge (config/gz_bridge.yaml), and runs the suite on use_sim_time
with the same driver relay as robot.launch.py: the arm's PoseStamped target and end-effector
pose, the gripper's control_msgs/GripperCommand action (served by the model's gripper
controller), its JointState.

  ros2 launch sim2real_bringup gazebo.launch.py
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import RELAY, SUITE


def generate_launch_description():
    share = FindPackageShare('sim2real_bringup')
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('ros_gz_sim'), 'launch', 'gz_sim.launch.py'])),
        launch_arguments={'gz_args': ['-r ', LaunchConfiguration('world')]}.items())
    bridge = Node(package='ros_gz_bridge', executable='parameter_bridge', output='screen',
                  parameters=[{'config_file': PathJoinSubstitution(
                      [share, 'config', 'gz_bridge.yaml']), 'use_sim_time': True}])
    suite = [suite_node(spec, use_sim_time=True) for spec in SUITE]
    relay = suite_node(RELAY, (('gripper_action', LaunchConfiguration('gripper_action')),),
                       use_sim_time=True)
    return LaunchDescription([
        DeclareLaunchArgument('world', default_value=PathJoinSubstitution(
            [share, 'worlds', 'grasp_cell.sdf']), description='SDF world'),
        DeclareLaunchArgument('gripper_action', default_value='/gripper_controller/gripper_cmd',
                              description="the model's gripper controller action"),
        gazebo, bridge, *suite, relay,
    ])
