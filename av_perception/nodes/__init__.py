"""The package's ROS 2 nodes, by name (the name is also the console script and
the params-YAML key). Each module is a thin shell over the library.

Convention: each node module declares ``PUBLISHES``, the topics it publishes
with its default parameters (relative names as it creates them, absolute
ones such as ``/tf``), besides the /diagnostics every node publishes. Tests
check the declarations against the module's ``create_publisher`` calls and
that every topic the RViz config names is published by some node."""

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
    'audio_capture': 'av_perception.nodes.audio_capture:AudioCaptureNode',
    'chirp_emitter': 'av_perception.nodes.chirp_emitter:ChirpEmitterNode',
    'echo_depth': 'av_perception.nodes.echo_depth:EchoDepthNode',
    'rotation': 'av_perception.nodes.rotation:RotationNode',
    'av_heatmap': 'av_perception.nodes.av_heatmap:AvHeatmapNode',
}


def published_topics(name: str) -> tuple[str, ...]:
    """The ``PUBLISHES`` of node ``name``'s module (imports it, hence rclpy)."""
    module = importlib.import_module(NODES[name].split(':')[0])
    return tuple(module.PUBLISHES)


def node_class(name: str):
    """The node class registered under ``name`` (imports rclpy)."""
    module, cls = NODES[name].split(':')
    return getattr(importlib.import_module(module), cls)
