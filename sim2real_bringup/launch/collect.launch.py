"""Data collection: the suite with collect_node between the controller and the safety node.

  ros2 launch sim2real_bringup collect.launch.py phase:=teleop operator:=ada
  ros2 launch sim2real_bringup collect.launch.py phase:=policy operator:=ada use_sim:=true
  (on the robot add command_topic:=... state_topic:=... for the drivers, as robot.launch.py)

The operator's device driver runs beside it (spacenav_node, or joy_node for a gamepad)
publishing /teleop/cmd_vel (Twist) and /teleop/joy; a pedal or button publishes
/collect/intervention (std_msgs/Bool). Labels: `ros2 service call /collect/label
sim2real_msgs/srv/LabelEpisode "{episode: 3, success: false, operator_name: ada}"`. On the
robot, mark episodes with /collect/start_episode and /collect/end_episode (std_srvs/Trigger).
Everything is recorded; `sim2real export BAG --out DATASET` makes the training set.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import (
    COLLECT,
    COLLECT_REMAPS,
    recorded_topics,
    SIM_ROBOT,
    SUITE,
)


def generate_launch_description():
    use_sim = LaunchConfiguration('use_sim')
    command_topic = LaunchConfiguration('command_topic')
    state_topic = LaunchConfiguration('state_topic')
    # every proposal goes through collect_node, then the safety node, as ever
    overrides = {
        'safety_node': (*COLLECT_REMAPS['safety_node'],
                        ('safe_command', command_topic), ('robot_state', state_topic)),
        'policy_node': (('robot_state', state_topic),),
        'control_node': (('robot_state', state_topic),),
        'supervisor_node': (('robot_state', state_topic), ('safe_command', command_topic)),
        'logger_node': (('safe_command', command_topic),),
        'collect_node': (('robot_state', state_topic), ('safe_command', command_topic)),
    }
    nodes = [suite_node(spec, overrides.get(spec.executable, ()), use_sim_time=use_sim,
                  **({'model_path': LaunchConfiguration('model_path')}
                     if spec.executable in ('policy_node', 'camera_node') else {}))
             for spec in SUITE]
    nodes.append(suite_node(COLLECT, overrides['collect_node'], use_sim_time=use_sim,
                      phase=LaunchConfiguration('phase'),
                      operator_name=LaunchConfiguration('operator'),
                      auto_start=use_sim))
    # the simulator's own episode verdict is privileged: it only marks the reset
    robot = suite_node(SIM_ROBOT, COLLECT_REMAPS['sim_robot_node'], condition=IfCondition(use_sim))
    topics = [*recorded_topics(), '/teleop/cmd_vel', '/teleop/joy', '/collect/intervention',
              '/collect/proposed_command', '/collect/events']
    # a collection is its recording: always on
    record = ['ros2', 'bag', 'record', '-s', 'mcap', '--max-bag-duration', '600', '-o',
              LaunchConfiguration('bag'), *topics]
    record_sim = ExecuteProcess(cmd=record + ['/clock', '--use-sim-time'], output='screen',
                                condition=IfCondition(use_sim))
    record_robot = ExecuteProcess(cmd=record, output='screen',
                                  condition=UnlessCondition(use_sim))
    return LaunchDescription([
        DeclareLaunchArgument('phase', default_value='policy',
                              description='teleop (human-driven) or policy (+ interventions)'),
        DeclareLaunchArgument('operator', default_value='',
                              description="the operator's name, recorded with interventions"),
        DeclareLaunchArgument('use_sim', default_value='false',
                              description='true: the embedded MuJoCo robot instead of drivers'),
        DeclareLaunchArgument('command_topic', default_value='/safety/command',
                              description="the driver's CartesianCommand input"),
        DeclareLaunchArgument('state_topic', default_value='/robot/state',
                              description="the driver's RobotState output"),
        DeclareLaunchArgument('model_path', default_value='',
                              description='ONNX policy ("" = the bundled policy)'),
        DeclareLaunchArgument('bag', default_value='sim2real_collection',
                              description='rosbag2 output folder (must not exist)'),
        robot, *nodes, record_sim, record_robot,
    ])
