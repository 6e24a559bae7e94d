"""camera_node: frames in (a driver topic or an OpenCV source), model-ready images out.

Names (relative; remapped by the launch files):
  sub  image_raw (sensor_msgs/Image, sensor-data QoS) when source is "topic"
  pub  image_processed (sensor_msgs/Image rgb8, sensor-data QoS), health (CameraHealth)
Parameters: config/camera.yaml. Preprocessing (crop, size, colour order) comes from the
model's metadata, so the policy sees exactly what it was trained on.
"""
from cv_bridge import CvBridge
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from sim2real_msgs.msg import CameraHealth as CameraHealthMsg

from sim2real_policy.camera import CameraError, CameraHealth, ImagePreprocessor, OpenCVCamera
from sim2real_policy.models import resolve_model
from sim2real_policy.policy import read_metadata
from sim2real_safety.nodes.runner import run_node

PARAMETERS = {
    'source': ('topic', 'topic, or an OpenCV source: device index, file, URL, GStreamer'),
    'capture_rate': (30.0, 'Hz of OpenCV capture'),
    'model_path': ('', 'model whose metadata defines the preprocessing ("" = bundled)'),
    'frozen_threshold': (0.98, 'frozen-frame score counted as identical frames'),
    'health_period': (0.1, 's between CameraHealth messages'),
    'camera_timeout': (0.5, 's without a frame before reporting unhealthy'),
    'frozen_timeout': (1.0, 's of identical frames before reporting unhealthy'),
}


class CameraNode(Node):
    """Thin node around CameraHealth and ImagePreprocessor."""

    def __init__(self):
        super().__init__('camera_node')
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        meta = read_metadata(resolve_model(p['model_path']))
        self.pre = ImagePreprocessor.from_metadata(meta)
        self.health = CameraHealth(frozen_threshold=p['frozen_threshold'])
        self.params = p
        self.bridge = CvBridge()
        self.image_pub = self.create_publisher(Image, 'image_processed', qos_profile_sensor_data)
        self.health_pub = self.create_publisher(CameraHealthMsg, 'health', 10)
        self.camera = None
        if p['source'] == 'topic':
            self.create_subscription(Image, 'image_raw', self.on_image, qos_profile_sensor_data)
        else:
            self.camera = OpenCVCamera(p['source'])
            self.create_timer(1.0 / p['capture_rate'], self.on_capture)
        self.create_timer(p['health_period'], self.on_health)

    def now_ns(self) -> int:
        """The node clock."""
        return self.get_clock().now().nanoseconds

    def process(self, frame, header) -> None:
        """Account for the frame and publish it preprocessed, keeping its stamp."""
        self.health.on_frame(frame, self.now_ns())
        out = self.bridge.cv2_to_imgmsg(self.pre.image(frame), encoding='rgb8')
        out.header = header
        self.image_pub.publish(out)

    def on_image(self, msg: Image) -> None:
        """A driver frame."""
        try:
            frame = self.bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        except Exception as exc:  # cv_bridge raises its own error types
            self.health.on_error(f'conversion: {exc}')
            return
        self.process(frame, msg.header)

    def on_capture(self) -> None:
        """An OpenCV frame."""
        try:
            frame = self.camera.read()
        except CameraError as exc:
            self.health.on_error(str(exc))
            return
        header = Image().header
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = 'camera_optical_frame'
        self.process(frame, header)

    def on_health(self) -> None:
        """Publish CameraHealth."""
        now, h = self.now_ns(), self.health
        msg = CameraHealthMsg()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.frame_age = h.frame_age(now)
        msg.frame_rate = h.frame_rate()
        msg.frozen_score = h.frozen_score
        msg.frozen_duration = h.frozen_duration(now)
        msg.error_count = h.error_count
        msg.last_error = h.last_error
        msg.healthy = h.healthy(now, self.params['camera_timeout'], self.params['frozen_timeout'])
        self.health_pub.publish(msg)


def main(args=None):
    """Run the camera node until shutdown."""
    run_node(CameraNode, args, on_exit=lambda node: node.camera and node.camera.close())


if __name__ == '__main__':
    main()
