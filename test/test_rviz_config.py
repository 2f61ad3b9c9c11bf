"""config/av_perception.rviz shows only what the package publishes: every
topic it names is published by some registered node (from the nodes' own
declarations, checked against their code), and its fixed frame is one the
robot config broadcasts."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from av_perception.nodes import NODES

ROOT = Path(__file__).resolve().parent.parent
RVIZ = ROOT / 'config' / 'av_perception.rviz'


def _norm(topic: str) -> str:
    """Relative and absolute names of the same topic (no namespace) compare equal."""
    return topic.lstrip('/')


def _module(name: str):
    return importlib.import_module(NODES[name].split(':')[0])


def _created_in_code(name: str) -> set[str]:
    """Topics a node module creates publishers for with literal names, plus
    /tf and /tf_static for the TF broadcasters it constructs."""
    tree = ast.parse(Path(_module(name).__file__).read_text())
    found = set()
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
        if (fname == 'create_publisher' and len(call.args) >= 2
                and isinstance(call.args[1], ast.Constant)):
            found.add(call.args[1].value)
        elif fname == 'TfBroadcaster':
            found.add('/tf')
        elif fname == 'StaticTfBroadcaster':
            found.add('/tf_static')
    return {t for t in found if _norm(t) != 'diagnostics'}


def _published(name: str) -> set[str]:
    """The node's declared PUBLISHES, or (a node written before the
    convention) the topics found in its code."""
    declared = getattr(_module(name), 'PUBLISHES', None)
    return set(declared) if declared is not None else _created_in_code(name)


def _rviz_topics() -> set[str]:
    doc = yaml.safe_load(RVIZ.read_text())
    topics = set()

    def walk(displays):
        for d in displays or []:
            for key in ('Topic', 'Update Topic', 'Image Topic', 'Marker Topic'):
                value = d.get(key)
                if isinstance(value, dict):
                    value = value.get('Value')
                if value:
                    topics.add(value)
            walk(d.get('Displays'))
    walk(doc['Visualization Manager']['Displays'])
    return topics


@pytest.mark.parametrize('name', [n for n in sorted(NODES)
                                  if hasattr(_module(n), 'PUBLISHES')])
def test_declared_topics_match_the_code(name):
    declared = set(_module(name).PUBLISHES)
    assert _created_in_code(name) <= declared, (name, _created_in_code(name), declared)


def test_rviz_shows_what_the_issue_asks_for():
    doc = yaml.safe_load(RVIZ.read_text())
    classes = [d['Class'] for d in doc['Visualization Manager']['Displays']]
    assert 'rviz_default_plugins/TF' in classes
    assert {'/echo_depth/depth', '/echo_depth/occupancy', '/echo_depth/map',
            '/echo_depth/scan', '/sound_direction/markers',
            '/rotation/sound_direction/markers',   # use_audio: on by default (issue #25)
            '/av_heatmap/overlay'} <= _rviz_topics()
    markers = next(d for d in doc['Visualization Manager']['Displays']
                   if d.get('Topic', {}).get('Value') == '/sound_direction/markers')
    assert markers['Namespaces'] == {'sound_direction': True, 'sound_direction/ids': True}
    echo_map = next(d for d in doc['Visualization Manager']['Displays']
                    if d.get('Topic', {}).get('Value') == '/echo_depth/map')
    assert echo_map['Topic']['Durability Policy'] == 'Transient Local'  # the map is latched


def test_every_rviz_topic_is_published_by_a_node():
    published = {_norm(t) for n in NODES for t in _published(n)}
    missing = sorted(t for t in _rviz_topics() if _norm(t) not in published)
    assert not missing, f'{RVIZ.name} names topics no node publishes: {missing}'


def test_rviz_fixed_frame_is_the_echo_maps_frame():
    """The fixed frame is the odometry frame echo_depth fuses its map in (so
    the map stays put while the robot moves), and the simulated robot's
    odometry broadcasts it."""
    import inspect

    from av_perception.nodes.echo_depth import EchoDepthNode
    from av_perception.nodes.sim_world import SimWorldNode
    fixed = yaml.safe_load(RVIZ.read_text())['Visualization Manager']['Global Options'][
        'Fixed Frame']
    assert fixed == 'odom'
    assert "self.param('map_frame', 'odom'" in inspect.getsource(EchoDepthNode)
    assert "'odom_frame', 'odom'" in inspect.getsource(SimWorldNode)
