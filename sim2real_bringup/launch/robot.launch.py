"""The real robot: camera, policy, control, safety, supervisor, logger and rosbag2 recording.

The arm's and gripper's drivers are started separately (they are the robot's); point the
suite at their topics with the arguments below. The driver must take a Cartesian target
(sim2real_msgs/CartesianCommand, or adapt it with a small relay) and publish RobotState.

  ros2 launch sim2real_bringup robot.launch.py camera_source:=0 command_topic:=/arm/target
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import CAMERA, recorded_topics, SUITE


def generate_launch_description():
    command_topic = LaunchConfiguration('command_topic')
    state_topic = LaunchConfiguration('state_topic')
    joint_topic = LaunchConfiguration('joint_states_topic')
    image_topic = LaunchConfiguration('image_topic')
    overrides = {
        'safety_node': (('safe_command', command_topic), ('robot_state', state_topic),
                        ('joint_states', joint_topic)),
        'policy_node': (('robot_state', state_topic),),
        'control_node': (('robot_state', state_topic),),
        'supervisor_node': (('robot_state', state_topic), ('safe_command', command_topic)),
        'logger_node': (('safe_command', command_topic),),
        'camera_node': (('image_raw', image_topic),),
    }
    nodes = []
    for spec in SUITE:
        extra = {}
        if spec is CAMERA:
            extra['source'] = LaunchConfiguration('camera_source')
        if spec.executable in ('policy_node', 'camera_node'):
            extra['model_path'] = LaunchConfiguration('model_path')
        nodes.append(suite_node(spec, overrides.get(spec.executable, ()), **extra))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--max-bag-duration', '600',
             '-o', LaunchConfiguration('bag'), *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        DeclareLaunchArgument('camera_source', default_value='topic',
                              description='"topic" (a driver on image_topic) or an OpenCV '
                                          'source: device index, file, URL, GStreamer'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description="the camera driver's sensor_msgs/Image topic"),
        DeclareLaunchArgument('command_topic', default_value='/safety/command',
                              description='where the safe CartesianCommand goes (the driver)'),
        DeclareLaunchArgument('state_topic', default_value='/robot/state',
                              description="the driver's RobotState topic"),
        DeclareLaunchArgument('joint_states_topic', default_value='/robot/joint_states',
                              description="the driver's sensor_msgs/JointState topic"),
        DeclareLaunchArgument('model_path', default_value='',
                              description='ONNX policy ("" = the bundled policy)'),
        DeclareLaunchArgument('record', default_value='true',
                              description='record every suite topic with rosbag2 (MCAP)'),
        DeclareLaunchArgument('bag', default_value='sim2real_run',
                              description='rosbag2 output folder (must not exist)'),
        *nodes, record,
    ])
