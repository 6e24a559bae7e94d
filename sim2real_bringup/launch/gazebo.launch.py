"""For users with Gazebo (Harmonic, ros_gz): the suite on a Gazebo world instead of MuJoCo.

Starts ros_gz_sim with worlds/grasp_cell.sdf (table, object, camera; the gripper stage is
left to the user's robot model), bridges the camera and /clock with ros_gz_bridge, and runs
the suite on use_sim_time. The arm and gripper controllers of the user's Gazebo robot take
/safety/command and publish /robot/state (pass command_topic/state_topic as for the robot).

  ros2 launch sim2real_bringup gazebo.launch.py
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import SUITE


def generate_launch_description():
    share = FindPackageShare('sim2real_bringup')
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('ros_gz_sim'), 'launch', 'gz_sim.launch.py'])),
        launch_arguments={'gz_args': ['-r ', LaunchConfiguration('world')]}.items())
    bridge = Node(package='ros_gz_bridge', executable='parameter_bridge', output='screen',
                  arguments=['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock',
                             '/camera/image_raw@sensor_msgs/msg/Image[gz.msgs.Image'])
    suite = [suite_node(spec, use_sim_time=True) for spec in SUITE]
    return LaunchDescription([
        DeclareLaunchArgument('world', default_value=PathJoinSubstitution(
            [share, 'worlds', 'grasp_cell.sdf']), description='SDF world'),
        gazebo, bridge, *suite,
    ])
