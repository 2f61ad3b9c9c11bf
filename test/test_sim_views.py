"""The scene generator's view='sources' option: every pose faces a source
object from close by (audio-visual localization data); defaults unchanged."""

from __future__ import annotations

import math

import pytest

from av_perception.errors import ConfigError
from av_perception.sim.scene import (FACING_JITTER_DEG, SceneParams,
                                     direction_in_frame, generate_scene,
                                     view_params)


def test_every_pose_faces_a_source_object_from_close_by():

    params = view_params('sources')
    near, far = params.facing_range
    for i in range(4):
        scene = generate_scene(i, 'train', 0, params)
        assert len(scene.active_sources) == 1
        for pose in scene.poses:
            # (azimuth, elevation, distance) of each source, and its half extent:
            # the facing distance is measured from the object's near side
            seen = [(*direction_in_frame(pose, (0.0, 0.0, 0.0), s.position),
                     max(scene.boxes[s.box].size[:2]) / 2) for s in scene.sources]
            assert any(abs(math.degrees(az)) <= FACING_JITTER_DEG + 1
                       and near - 0.05 <= d_xy - half <= far + 0.05
                       for az, el, d, half in seen
                       for d_xy in [d * math.cos(el)]), (i, pose, seen)


def test_default_view_is_the_path_and_a_bad_view_is_refused():
    assert SceneParams().view == 'path'
    assert generate_scene(3, 'test', 0) == generate_scene(3, 'test', 0, view_params('path'))
    with pytest.raises(ConfigError, match='view'):
        view_params('overhead')
