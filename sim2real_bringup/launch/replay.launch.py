"""Replay a recorded bag through the suite's decision nodes (ROS 2 twin of sim2real replay).

`ros2 bag play --clock` provides the recorded inputs (images, robot state, chunks, health)
and the clock; control, safety, supervisor and logger run live on use_sim_time. Recorded
outputs of those nodes are not replayed (they are what is being recomputed).

  ros2 launch sim2real_bringup replay.launch.py bag:=runs/demo/bag
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import REPLAY

# Inputs the bag provides; the nodes below recompute everything else.
REPLAYED_TOPICS = ['/camera/image_raw', '/camera/image_processed', '/camera/health',
                   '/policy/action_chunk', '/policy/health', '/robot/state',
                   '/robot/joint_states', '/episode/result']


def generate_launch_description():
    nodes = [suite_node(spec, use_sim_time=True) for spec in REPLAY]
    play = ExecuteProcess(
        cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag'), '--clock', '--rate',
             LaunchConfiguration('rate'), '--delay', LaunchConfiguration('delay'),
             '--topics', *REPLAYED_TOPICS],
        output='screen')
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='rosbag2 folder to replay'),
        DeclareLaunchArgument('rate', default_value='1.0', description='playback rate'),
        DeclareLaunchArgument('delay', default_value='2.0',
                              description='s to wait before playing (the nodes come up first)'),
        *nodes, play,
    ])
