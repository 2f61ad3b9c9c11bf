"""The package's ROS 2 nodes, by name (the name is also the console script and
the params-YAML key). Each module is a thin shell over the library."""

from __future__ import annotations

import importlib

#: node name -> "module:Class"
NODES: dict[str, str] = {
    'static_frames': 'av_perception.nodes.static_frames:StaticFramesNode',
    'audio_common_adapter': 'av_perception.nodes.audio_common_adapter:AudioCommonAdapterNode',
    'audio_monitor': 'av_perception.nodes.audio_monitor:AudioMonitorNode',
    'recorder': 'av_perception.nodes.recorder:RecorderNode',
    'sim_world': 'av_perception.nodes.sim_world:SimWorldNode',
    'sound_direction': 'av_perception.nodes.sound_direction:SoundDirectionNode',
    'av_heatmap': 'av_perception.nodes.av_heatmap:AvHeatmapNode',
}


def node_class(name: str):
    """The node class registered under ``name`` (imports rclpy)."""
    module, cls = NODES[name].split(':')
    return getattr(importlib.import_module(module), cls)
