"""config/foxglove_layout.json names only the suite's topics and their messages' fields."""
import json

from sim2real_bringup import interfaces
from sim2real_bringup.config import find_config_dir
from sim2real_bringup.topics import BY_NAME

LAYOUT = find_config_dir() / 'foxglove_layout.json'


def _leaves(node):
    if isinstance(node, str):
        yield node
    else:
        yield from _leaves(node['first'])
        yield from _leaves(node['second'])


def _paths(config):
    """(topic, [field, ...]) of every message path and topic a panel shows."""
    for entry in config.get('paths', []):
        topic, *fields = entry['value'].split('.')
        yield topic, fields
    if 'topicPath' in config:
        yield config['topicPath'], []
    if 'imageMode' in config:
        yield config['imageMode']['imageTopic'], []


def test_every_panel_is_laid_out_and_every_path_is_a_real_field():
    layout = json.loads(LAYOUT.read_text())
    panels = layout['configById']
    assert sorted(_leaves(layout['layout'])) == sorted(panels)
    fields = interfaces.typestore().fielddefs
    shown = set()
    for panel, config in panels.items():
        for topic, path in _paths(config):
            assert topic in BY_NAME, (panel, topic)
            typename = BY_NAME[topic].typename
            for name in path:
                declared = dict(fields[typename][1])
                assert name in declared, (panel, topic, name, sorted(declared))
                kind, detail = declared[name]
                typename = detail if kind == interfaces.Nodetype.NAME else None
            shown.add(topic)
    # what the issue asks the layout to show
    assert {'/camera/image_raw', '/control/proposed_command', '/safety/command',
            '/safety/status', '/supervisor/state', '/robot/state'} <= shown
    plotted = {p['value'] for c in panels.values() for p in c.get('paths', [])}
    assert {'/control/proposed_command.z', '/safety/command.z', '/robot/state.gripper_width',
            '/robot/state.gripper_effort', '/safety/status.verdict',
            '/supervisor/state.mode'} <= plotted
