"""policy_node: action chunks from the latest image and state; inference off the callbacks.

Names (relative; remapped by the launch files):
  sub  image_processed (sensor_msgs/Image, sensor-data QoS), robot_state (RobotState)
  pub  action_chunk (ActionChunk, stamped with the observation's time), health (PolicyHealth)
Parameters: config/policy.yaml. A model whose metadata disagrees with the expected action
names, horizon or period is refused at start-up with a message naming the field.
Inference runs on a worker thread: no callback (and no other node) ever waits for it.
"""
from concurrent.futures import ThreadPoolExecutor
import math
import threading

from cv_bridge import CvBridge
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Duration, Time
from sensor_msgs.msg import Image
from sim2real_msgs.msg import ActionChunk, PolicyHealth, RobotState

from sim2real_policy.models import resolve_model
from sim2real_policy.policy import PolicyRunner
from sim2real_safety.nodes.runner import run_node

PARAMETERS = {
    'model_path': ('', 'ONNX policy ("" = the bundled one)'),
    'backend': ('onnxruntime', 'onnxruntime or cv2_dnn'),
    'inference_period': (0.1, 's between the starts of two inferences'),
    'expected_action_names': (['x', 'y', 'z', 'yaw', 'gripper_width'], 'expected of the model'),
    'expected_horizon': (16, 'expected horizon of the model'),
    'expected_action_period': (0.05, 'expected action period of the model (s)'),
}


class PolicyNode(Node):
    """Thin node around PolicyRunner."""

    def __init__(self):
        super().__init__('policy_node')
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.runner = PolicyRunner(resolve_model(p['model_path']), p['backend'], expected={
            'action_names': list(p['expected_action_names']), 'horizon': p['expected_horizon'],
            'action_period': p['expected_action_period']})
        self.get_logger().info(f'policy {self.runner.model_id} on {p["backend"]}')
        self.bridge = CvBridge()
        self.chunk_pub = self.create_publisher(ActionChunk, 'action_chunk', 10)
        self.health_pub = self.create_publisher(PolicyHealth, 'health', 10)
        self.create_subscription(Image, 'image_processed', self.on_image,
                                 qos_profile_sensor_data)
        self.create_subscription(RobotState, 'robot_state', self.on_state,
                                 qos_profile_sensor_data)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix='inference')
        self.lock = threading.Lock()
        self.image, self.stamp, self.proprio = None, None, None
        self.busy = False
        self.sequence = 0
        self.errors = 0
        self.last_error = ''
        self.last_chunk_ns = None
        self.create_timer(p['inference_period'], self.on_timer)

    def on_image(self, msg: Image) -> None:
        """Keep the newest image (the last good one if the camera fails)."""
        frame = self.bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        with self.lock:
            self.image, self.stamp = frame, msg.header.stamp

    def on_state(self, msg: RobotState) -> None:
        """Keep the newest proprioception."""
        with self.lock:
            self.proprio = (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width, msg.gripper_effort)

    def on_timer(self) -> None:
        """Hand the newest observation to the worker unless it is still busy."""
        with self.lock:
            if self.busy or self.image is None or self.proprio is None:
                return
            self.busy = True
            observation = (self.image, self.stamp, self.proprio)
        self.worker.submit(self.infer, *observation)

    def infer(self, image, stamp, proprio) -> None:
        """On the worker thread: predict and publish (rclpy publishers are thread-safe)."""
        try:
            actions = self.runner.predict(image, proprio, preprocessed=True)
        except Exception as exc:  # a failing model is a health fault the supervisor handles
            self.errors += 1
            self.last_error = f'{type(exc).__name__}: {exc}'
            self.publish_health(math.nan, healthy=False)
            with self.lock:
                self.busy = False
            return
        meta = self.runner.meta
        msg = ActionChunk()
        msg.header.stamp = stamp
        msg.header.frame_id = 'base_link'
        msg.model_id = self.runner.model_id
        self.sequence += 1
        msg.sequence = self.sequence
        msg.horizon, msg.action_dim = actions.shape
        msg.action_names = list(meta.action_names)
        msg.action_period = Duration(seconds=meta.action_period).to_msg()
        msg.start_offset = Duration(seconds=meta.start_offset).to_msg()
        msg.actions = actions.reshape(-1).tolist()
        msg.inference_latency = self.runner.last_latency
        self.chunk_pub.publish(msg)
        self.last_chunk_ns = self.get_clock().now().nanoseconds
        self.publish_health(self.runner.last_latency, healthy=True)
        with self.lock:
            self.busy = False

    def publish_health(self, latency: float, healthy: bool) -> None:
        """PolicyHealth after every attempt."""
        now = self.get_clock().now()
        msg = PolicyHealth()
        msg.header.stamp = now.to_msg()
        msg.model_id = self.runner.model_id
        msg.inference_latency = float(latency)
        msg.chunk_age = math.inf if self.last_chunk_ns is None else (
            now - Time(nanoseconds=self.last_chunk_ns)).nanoseconds / 1e9
        msg.error_count = self.errors
        msg.last_error = self.last_error
        msg.healthy = healthy
        self.health_pub.publish(msg)


def main(args=None):
    """Run the policy node until shutdown."""
    run_node(PolicyNode, args,
             on_exit=lambda node: node.worker.shutdown(wait=False, cancel_futures=True))


if __name__ == '__main__':
    main()
