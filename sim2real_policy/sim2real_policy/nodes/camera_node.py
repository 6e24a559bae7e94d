"""camera_node: frames in (a driver topic or an OpenCV source), model-ready images out.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  image_raw (sensor_msgs/Image rgb8 or bgr8, sensor QoS) when ``source`` is "topic"
  pub  image_processed (sensor_msgs/Image rgb8, sensor QoS), health (CameraHealth),
       tf_static (tf2_msgs/TFMessage, latched): with a cell file, the commissioned camera
       ``base_frame`` -> ``camera_frame`` (its optical frame), so RViz and Foxglove show it
Parameters: config/camera.yaml (read-only). Preprocessing (crop, size, colour order) comes
from the model's metadata, so the policy sees exactly what it was trained on.

Health is published from the first frame on: before it, silence is the signal (the
supervisor's camera liveness check), so start-up never reads as "camera unhealthy".
"""
from __future__ import annotations

from sim2real_policy.camera import CameraError, CameraHealth, ImagePreprocessor, OpenCVCamera
from sim2real_policy.models import resolve_model
from sim2real_policy.policy import read_metadata
from sim2real_safety import convert
from sim2real_safety.cell_file import CELL_PARAMETERS, load_cell_parameters
from sim2real_safety.node_interface import Param

M = 'sim2real_msgs/msg/'
PARAMETERS = (
    Param('source', 'topic', 'topic, or an OpenCV source: device index, file, URL, '
          'GStreamer pipeline'),
    Param('capture_rate', 30.0, 'Hz of OpenCV capture (OpenCV sources only)', (0.1, 1000.0)),
    Param('model_path', '', 'model whose metadata defines the preprocessing ("" = bundled)'),
    Param('frozen_threshold', 0.98, 'frozen-frame score at or above which frames count as '
          'identical', (0.0, 1.0)),
    Param('health_period', 0.1, 's between CameraHealth messages', (0.001, 10.0)),
    Param('camera_timeout', 0.5, 's without a frame before reporting unhealthy', (0.01, 60.0)),
    Param('frozen_timeout', 1.0, 's of identical frames before reporting unhealthy',
          (0.01, 60.0)),
    *CELL_PARAMETERS,   # the commissioned camera, published as a static transform
    Param('base_frame', 'base_link', "the robot's base frame, which the cell file's camera "
          'is in (the frame its TCP was measured in)'),
    # A frame of the suite's own: a camera driver's optical frame has a parent in the
    # driver's tree already, and a tf2 frame has one parent.
    Param('camera_frame', 'commissioned_camera_optical_frame', 'child frame of the '
          "commissioned camera's static transform (optical: z along the view, x right, "
          'y down)'),
)


class CameraNode:
    """Thin node around CameraHealth and ImagePreprocessor."""

    NAME = 'camera_node'

    def __init__(self, node, preprocessor: ImagePreprocessor | None = None):
        # preprocessor: given by the in-process runtime for policies without a model file
        # (the privileged expert, a replayed bag); otherwise from the model's metadata.
        self.node = node
        p = self.params = node.declare_parameters(PARAMETERS)
        # a bad cell file refuses the node before it opens a camera
        self.cell = load_cell_parameters(p)
        self.pre = preprocessor or ImagePreprocessor.from_metadata(
            read_metadata(resolve_model(p['model_path'])))
        self.health = CameraHealth(frozen_threshold=p['frozen_threshold'])
        self.msgs = node.messages
        self.image_pub = node.create_publisher('image_processed', 'sensor_msgs/msg/Image',
                                               'sensor')
        self.health_pub = node.create_publisher('health', M + 'CameraHealth', 'default')
        self.camera = None
        if p['source'] == 'topic':
            node.create_subscription('image_raw', 'sensor_msgs/msg/Image', self.on_image,
                                     'sensor')
        else:
            self.camera = OpenCVCamera(p['source'])
            node.on_shutdown(self.camera.close)
            node.create_timer(1.0 / p['capture_rate'], self.on_capture)
        node.create_timer(p['health_period'], self.on_health)
        if self.cell is not None:
            self.tf_pub = node.create_publisher('tf_static', 'tf2_msgs/msg/TFMessage',
                                                'latched')
            self.tf_pub.publish(self.camera_transform())

    def camera_transform(self):
        """The cell file's camera as a TFMessage: ``base_frame`` -> ``camera_frame``."""
        from sim2real_policy.camera_geometry import camera_pose

        _, (x, y, z), (qx, qy, qz, qw) = camera_pose(self.cell.matrix)
        m, p = self.msgs, self.params
        transform = m.make('geometry_msgs/msg/TransformStamped',
                           header=m.header(self.node.now_ns(), p['base_frame']),
                           child_frame_id=p['camera_frame'], transform=m.make(
                               'geometry_msgs/msg/Transform',
                               translation=m.make('geometry_msgs/msg/Vector3', x=float(x),
                                                  y=float(y), z=float(z)),
                               rotation=m.make('geometry_msgs/msg/Quaternion', x=float(qx),
                                               y=float(qy), z=float(qz), w=float(qw))))
        return m.make('tf2_msgs/msg/TFMessage', transforms=[transform])

    def process(self, frame, stamp_ns: int, frame_id: str) -> None:
        """Account for the frame and publish it preprocessed, keeping its stamp."""
        self.health.on_frame(frame, self.node.now_ns())
        self.image_pub.publish(convert.image_msg(self.msgs, self.pre.image(frame), stamp_ns,
                                                 frame_id))

    def on_image(self, msg) -> None:
        """A driver frame."""
        try:
            frame = convert.image_array(msg)
        except ValueError as exc:
            self.health.on_error(f'conversion: {exc}')
            return
        self.process(frame, convert.ns_of(msg.header.stamp), msg.header.frame_id)

    def on_capture(self) -> None:
        """An OpenCV frame."""
        try:
            frame = self.camera.read()
        except CameraError as exc:
            self.health.on_error(str(exc))
            return
        self.process(frame, self.node.now_ns(), 'camera_optical_frame')

    def on_health(self) -> None:
        """Publish CameraHealth (from the first frame or error on)."""
        now, h, p = self.node.now_ns(), self.health, self.params
        if h.last_frame_ns is None and not h.error_count:
            return
        healthy = h.healthy(now, p['camera_timeout'], p['frozen_timeout'])
        problem = h.last_error
        if not healthy and h.last_frame_ns is not None:
            problem = (f'frozen for {h.frozen_duration(now):.2f} s'
                       if h.frozen_duration(now) > p['frozen_timeout']
                       else f'no frame for {h.frame_age(now):.2f} s')
        msgs = self.msgs
        self.health_pub.publish(msgs.make(
            M + 'CameraHealth', header=msgs.header(now, 'camera_optical_frame'),
            frame_age=h.frame_age(now), frame_rate=h.frame_rate(),
            frozen_score=h.frozen_score, frozen_duration=h.frozen_duration(now),
            error_count=h.error_count, last_error=problem, healthy=healthy))


def main(args=None):
    """Run the camera node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(CameraNode, args)


if __name__ == '__main__':
    main()
