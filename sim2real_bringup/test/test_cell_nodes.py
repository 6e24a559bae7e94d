"""The control, safety and policy nodes load a cell file the same way (calibration_file).

On the in-process graph, the node code the robot runs: the values in use are the cell's
(``GraphNode.parameters``, as ``ros2 param get`` shows them on ROS), and a bad file stops the
node from starting with one line naming the file, the field and the value.
"""
from pathlib import Path

import pytest
import yaml

from sim2real_bringup.pipeline import PipelineConfig
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.runtime.node import GraphNode
from sim2real_policy.nodes.control_node import ControlNode
from sim2real_safety.cell_file import CellCalibration, CellFileError, write_cell_file
from sim2real_safety.nodes.safety_node import SafetyNode
from sim2real_safety.software_stop import SoftwareStopLatch

CONFIG = PipelineConfig.load()
# the simulated cell's commissioned camera (a real one: the camera node publishes its pose and
# every node checks it sits in the cell's camera hull)
SIM_CELL = Path(__file__).resolve().parents[2] / 'config' / 'cell_calibration_sim.yaml'
PROJECTION = yaml.safe_load(SIM_CELL.read_text())['projection']


def _cell_file(tmp_path, name='cell.yaml', **changes):
    fields = dict(projection=PROJECTION,
                  table_height=0.012, reprojection_rms_px=0.4, points_used=17, points_seen=17,
                  actuation_delay=0.047, cell='bench-2')
    fields.update(changes)
    path = tmp_path / name
    write_cell_file(CellCalibration(**fields), path)
    return str(path)


def _node(name, **parameters):
    given = {k: v for k, v in CONFIG.params[name].items() if v is not None}
    given.update(parameters)
    return GraphNode(Graph(Scheduler(0)), name, (), given)


def test_the_control_node_leads_by_the_commissioned_delay(tmp_path):
    path = _cell_file(tmp_path)
    node = _node('control_node', calibration_file=path)
    control = ControlNode(node)
    assert node.parameters['actuation_delay'] == 0.047
    assert control.config.actuation_delay == 0.047
    assert node.parameters['calibration_file'] == path
    # a cell that measured no delay keeps the configured one
    unmeasured = _node('control_node', calibration_file=_cell_file(
        tmp_path, 'no_delay.yaml', actuation_delay=None))
    ControlNode(unmeasured)
    assert unmeasured.parameters['actuation_delay'] == CONFIG.control.actuation_delay


def test_the_safety_node_floors_at_the_commissioned_table(tmp_path):
    node = _node('safety_node', calibration_file=_cell_file(tmp_path))
    safety = SafetyNode(node, latch=SoftwareStopLatch())
    assert node.parameters['table_height'] == 0.012
    assert safety.core.limits.z_floor == pytest.approx(0.012 + CONFIG.safety.table_clearance)
    assert safety.core.limits.workspace_min == CONFIG.safety.workspace_min
    bounded = _node('safety_node', calibration_file=_cell_file(
        tmp_path, 'bound.yaml', table_height=None, table_height_max=-0.021))
    SafetyNode(bounded, latch=SoftwareStopLatch())
    assert bounded.parameters['table_height'] == -0.021


@pytest.mark.parametrize('node_name, changes, field', [
    ('control_node', {'actuation_delay': 0.9}, 'actuation_delay'),     # above max (0.3 s)
    ('safety_node', {'table_height': 0.44}, 'table_height'),           # no room above it
    ('safety_node', {'table_height': 0.7}, 'table_height'),            # past the range
    ('safety_node', {'table_height': -0.3}, 'table_height'),           # out of reach
    ('safety_node', {'table_height': None, 'table_height_max': -0.3}, 'table_height_max'),
])
def test_a_cell_a_node_cannot_use_is_refused_naming_file_and_field(tmp_path, node_name,
                                                                    changes, field):
    path = _cell_file(tmp_path, **changes)
    node = _node(node_name, calibration_file=path)
    with pytest.raises(ValueError, match=field) as error:
        ControlNode(node) if node_name == 'control_node' else \
            SafetyNode(node, latch=SoftwareStopLatch())
    assert path in str(error.value) and '\n' not in str(error.value)


@pytest.mark.parametrize('node_name', ['control_node', 'safety_node', 'policy_node'])
def test_every_cell_node_refuses_a_file_for_another_cell_or_a_broken_one(tmp_path, node_name):
    from sim2real_policy.nodes.policy_node import PolicyNode

    def start(**parameters):
        node = _node(node_name, **parameters)
        if node_name == 'control_node':
            return ControlNode(node)
        if node_name == 'safety_node':
            return SafetyNode(node, latch=SoftwareStopLatch())
        return PolicyNode(node)

    path = _cell_file(tmp_path)
    with pytest.raises(CellFileError, match="'bench-2' is not this cell"):
        start(calibration_file=path, cell_name='bench-3')
    broken = tmp_path / 'broken.yaml'
    data = yaml.safe_load(open(path))
    data['actuation_delay'] = float('nan')
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(CellFileError, match=f'{broken}: actuation_delay'):
        start(calibration_file=str(broken))
    with pytest.raises(CellFileError, match='missing.yaml'):
        start(calibration_file=str(tmp_path / 'missing.yaml'))


def test_the_camera_node_publishes_the_commissioned_camera_as_a_static_transform(tmp_path):
    import numpy as np
    from scipy.spatial.transform import Rotation

    from sim2real_policy.camera_geometry import project
    from sim2real_policy.nodes.camera_node import CameraNode

    graph = Graph(Scheduler(0))
    given = {k: v for k, v in CONFIG.params['camera_node'].items() if v is not None}
    node = GraphNode(graph, 'camera_node', (('tf_static', '/tf_static'),),
                     dict(given, calibration_file=_cell_file(tmp_path)))
    CameraNode(node)
    seen = []
    graph.create_subscription('/tf_static', 'tf2_msgs/msg/TFMessage', seen.append,
                              qos='latched')   # a late joiner, as RViz is
    graph.scheduler.run_until(graph.scheduler.now_ns + 1)
    (transform,) = seen[0].transforms
    assert transform.header.frame_id == 'base_link'
    assert transform.child_frame_id == 'commissioned_camera_optical_frame'
    t, r = transform.transform.translation, transform.transform.rotation
    # the camera's centre, and its optical axes: x to the image's right, y down, z ahead
    optical = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
    centre = np.array([t.x, t.y, t.z])
    projection = np.asarray(PROJECTION)
    assert np.allclose(projection @ [*centre, 1.0], 0.0, atol=1e-6)
    ahead = centre + 0.7 * optical[:, 2]
    u, v = project(projection, ahead)[0]
    right = project(projection, ahead + 0.02 * optical[:, 0])[0]
    down = project(projection, ahead + 0.02 * optical[:, 1])[0]
    assert right[0] > u + 2.0 and abs(right[1] - v) < 0.2
    assert down[1] > v + 2.0 and abs(down[0] - u) < 0.2
    assert 30.0 < u < 66.0 and 30.0 < v < 66.0   # ahead is near the 96 px image's middle
    # no cell file: no transform (nothing to show)
    bare = Graph(Scheduler(0))
    CameraNode(GraphNode(bare, 'camera_node', (('tf_static', '/tf_static'),), given))
    assert '/tf_static' not in bare.topics()
