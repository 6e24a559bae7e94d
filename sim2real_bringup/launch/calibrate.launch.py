"""A calibration run for system identification: safe excitation, recorded for `sim2real sysid`.

  ros2 launch sim2real_bringup calibrate.launch.py command_topic:=/arm/target   # the robot
  ros2 launch sim2real_bringup calibrate.launch.py use_sim:=true                 # MuJoCo

calibration_node stands in for camera, policy and control: its targets go through the
safety node like any command. The arm's drivers are started separately, as for
robot.launch.py; they must publish efforts in their JointState (the fit needs them).
Then: `sim2real sysid BAG` (with --command-topic/--joint-states-topic if remapped).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import CALIBRATE, CALIBRATION_TOPICS, SIM_ROBOT


def generate_launch_description():
    use_sim = LaunchConfiguration('use_sim')
    command_topic = LaunchConfiguration('command_topic')
    state_topic = LaunchConfiguration('state_topic')
    joint_topic = LaunchConfiguration('joint_states_topic')
    overrides = {
        'safety_node': (('safe_command', command_topic), ('robot_state', state_topic),
                        ('joint_states', joint_topic)),
        'supervisor_node': (('robot_state', state_topic), ('safe_command', command_topic)),
        'calibration_node': (('robot_state', state_topic),),
    }
    nodes = [suite_node(spec, overrides.get(spec.executable, ()), use_sim_time=use_sim)
             for spec in CALIBRATE]
    # one long "episode": the world must not reset mid-run
    robot = suite_node(SIM_ROBOT, condition=IfCondition(use_sim), episode_timeout=3600.0)
    driver = {'/safety/command': command_topic, '/robot/state': state_topic,
              '/robot/joint_states': joint_topic}
    topics = [driver.get(t, t) for t in CALIBRATION_TOPICS]
    record_sim = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--use-sim-time', '-o',
             LaunchConfiguration('bag'), '/clock', *topics],
        output='screen', condition=IfCondition(use_sim))
    record_robot = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '-o', LaunchConfiguration('bag'), *topics],
        output='screen', condition=UnlessCondition(use_sim))
    return LaunchDescription([
        DeclareLaunchArgument('use_sim', default_value='false',
                              description='true: the embedded MuJoCo robot instead of drivers'),
        DeclareLaunchArgument('command_topic', default_value='/safety/command',
                              description="the driver's CartesianCommand input"),
        DeclareLaunchArgument('state_topic', default_value='/robot/state',
                              description="the driver's RobotState output"),
        DeclareLaunchArgument('joint_states_topic', default_value='/robot/joint_states',
                              description="the driver's JointState output (with efforts)"),
        DeclareLaunchArgument('bag', default_value='sim2real_calibration',
                              description='rosbag2 output folder (must not exist)'),
        robot, *nodes, record_sim, record_robot,
    ])
