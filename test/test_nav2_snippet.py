"""The nav2 costmap snippet (config/nav2/echo_costmap.yaml) names topics and
types the echo_depth node publishes, with the settings nav2 needs to clear
with +Inf ranges and to read a transient-local map."""

from __future__ import annotations

from pathlib import Path

import yaml

from av_perception.nodes import published_topics

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / 'config' / 'nav2' / 'echo_costmap.yaml'


def test_the_costmap_snippet_subscribes_to_what_echo_depth_publishes():
    doc = yaml.safe_load(SNIPPET.read_text())
    params = doc['local_costmap']['local_costmap']['ros__parameters']
    assert params['global_frame'] == 'odom' and params['robot_base_frame'] == 'base_link'
    published = set(published_topics('echo_depth'))
    layers = {name: params[name] for name in params['plugins']}
    static = next(v for v in layers.values() if v['plugin'] == 'nav2_costmap_2d::StaticLayer')
    assert static['map_topic'] in published and static['map_topic'] == 'echo_depth/map'
    assert static['map_subscribe_transient_local'] is True
    obstacle = next(v for v in layers.values() if v['plugin'] == 'nav2_costmap_2d::ObstacleLayer')
    for source in obstacle['observation_sources'].split():
        src = obstacle[source]
        assert src['topic'] in published
        assert src['data_type'] == 'LaserScan' and src['topic'] == 'echo_depth/scan'
        assert src['clearing'] and src['marking'] and src['inf_is_valid'] is True
        assert src['obstacle_max_range'] < src['raytrace_max_range'] <= 12.0


def test_the_map_is_transient_local_as_the_static_layer_subscribes():
    import ast
    src = (ROOT / 'av_perception' / 'nodes' / 'echo_depth.py').read_text()
    calls = [c for c in ast.walk(ast.parse(src)) if isinstance(c, ast.Call)
             and getattr(c.func, 'attr', '') == 'create_publisher']
    qos = {c.args[1].value: c.args[2].id for c in calls if isinstance(c.args[1], ast.Constant)}
    assert qos['echo_depth/map'] == 'LATCHED'
