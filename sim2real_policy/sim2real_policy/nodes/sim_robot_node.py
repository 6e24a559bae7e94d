"""sim_robot_node: the embedded MuJoCo robot in place of the real drivers.

Names (relative; remapped by the launch files):
  sub  command (CartesianCommand: the safety node's safe command, and nothing else)
  pub  /clock (rosgraph_msgs/Clock: run the other nodes with use_sim_time), robot_state
       (RobotState), joint_states, image_raw (sensor_msgs/Image rgb8), grasp_result
Parameters: config/sim.yaml. The simulation advances one state period per wall timer tick
(real-time pace) and publishes its own time on /clock.
"""
from cv_bridge import CvBridge
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image, JointState
from sim2real_msgs.msg import CartesianCommand, GraspResult, RobotState

from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import Randomizer, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim
from sim2real_safety.nodes.runner import run_node

PARAMETERS = {
    'state_rate': (100.0, 'Hz of state messages and physics advance'),
    'camera_rate': (10.0, 'Hz of rendered frames'),
    'image_width': (96, 'px'), 'image_height': (96, 'px'),
    'randomization_file': ('', 'randomization.yaml ("" = nominal scene only)'),
    'randomization': ('none', 'profile of the randomization file'),
    'episode_timeout': (12.0, 's before an episode counts as failed'),
    'success_hold_time': (0.5, 's the object must stay lifted'),
    'seed': (0, 'seed of the first episode'),
}


class SimRobotNode(Node):
    """Thin node around GripperSim."""

    def __init__(self):
        super().__init__('sim_robot_node')
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.randomizer = None
        if self.p['randomization_file']:
            import yaml
            with open(self.p['randomization_file']) as handle:
                self.randomizer = Randomizer(yaml.safe_load(handle), self.p['randomization'])
        self.bridge = CvBridge()
        self.clock_pub = self.create_publisher(ClockMsg, '/clock', 10)
        self.state_pub = self.create_publisher(RobotState, 'robot_state', qos_profile_sensor_data)
        self.joint_pub = self.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self.image_pub = self.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
        self.result_pub = self.create_publisher(GraspResult, 'grasp_result', 10)
        self.create_subscription(CartesianCommand, 'command', self.on_command, 1)
        self.sim_ns = 0
        self.episode = 0
        self.start_episode()
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.period = 1.0 / self.p['state_rate']
        self.create_timer(self.period, self.on_step, clock=wall)
        self.create_timer(1.0 / self.p['camera_rate'], self.on_camera, clock=wall)

    def start_episode(self) -> None:
        """A new world."""
        seed = self.p['seed'] + self.episode
        params = self.randomizer.sample(seed) if self.randomizer else SimParams(seed=seed)
        self.sim = GripperSim(params)
        self.visual = VisualRandomizer(params.image, seed)
        self.episode_start_ns = self.sim_ns
        self.held_ns = 0

    def stamp(self):
        """The simulated time as a message."""
        return Time(nanoseconds=self.sim_ns).to_msg()

    def on_command(self, msg: CartesianCommand) -> None:
        """Targets from the safety node."""
        self.sim.command((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width))

    def on_step(self) -> None:
        """Advance one state period, publish clock and state, bookkeep the episode."""
        self.sim.step(self.period)
        self.sim_ns += int(round(self.period * 1e9))
        self.clock_pub.publish(ClockMsg(clock=self.stamp()))
        x, y, z, yaw, vx, vy, vz, width, effort = self.sim.robot_state()
        state = RobotState(x=x, y=y, z=z, yaw=yaw, vx=vx, vy=vy, vz=vz, gripper_width=width,
                           gripper_effort=effort, gripper_fault=False)
        state.header.stamp = self.stamp()
        state.header.frame_id = 'base_link'
        self.state_pub.publish(state)
        names, positions, velocities = self.sim.joint_state()
        joints = JointState(name=names, position=positions.tolist(),
                            velocity=velocities.tolist())
        joints.header.stamp = self.stamp()
        self.joint_pub.publish(joints)
        held = self.sim.object_lifted() and self.sim.object_in_gripper()
        self.held_ns = self.held_ns + int(self.period * 1e9) if held else 0
        elapsed = (self.sim_ns - self.episode_start_ns) / 1e9
        if self.held_ns >= self.p['success_hold_time'] * 1e9 or \
                elapsed >= self.p['episode_timeout']:
            self.end_episode(held, elapsed)

    def end_episode(self, success: bool, duration: float) -> None:
        """Publish the outcome and start the next episode."""
        result = GraspResult(episode=self.episode, attempts=1, success=success,
                             duration=duration, seed=self.sim.params.seed,
                             final_gripper_width=self.sim.gripper_width(),
                             failure_reason='' if success else 'not lifted in time')
        result.header.stamp = self.stamp()
        self.result_pub.publish(result)
        self.get_logger().info(f'episode {self.episode}: '
                               f'{"success" if success else "failure"} in {duration:.1f} s')
        self.sim.close()
        self.episode += 1
        self.start_episode()

    def on_camera(self) -> None:
        """A rendered frame."""
        frame = self.visual.apply(self.sim.render(self.p['image_width'],
                                                  self.p['image_height']))
        msg = self.bridge.cv2_to_imgmsg(frame, encoding='rgb8')
        msg.header.stamp = self.stamp()
        msg.header.frame_id = 'camera_optical_frame'
        self.image_pub.publish(msg)


def main(args=None):
    """Run the simulated robot node until shutdown."""
    run_node(SimRobotNode, args, on_exit=lambda node: node.sim.close())


if __name__ == '__main__':
    main()
