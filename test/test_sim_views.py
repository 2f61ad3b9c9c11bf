"""The scene generator's view='sources' option: every pose faces a source
object from close by (audio-visual localization data); defaults unchanged."""

from __future__ import annotations

import math

import pytest

from av_perception.errors import ConfigError
from av_perception.sim.scene import (FACING_JITTER_DEG, FACING_RANGE, SceneParams,
                                     direction_in_frame, generate_scene,
                                     view_params)


def test_every_pose_faces_a_source_object_from_close_by():

    for i in range(4):
        scene = generate_scene(i, 'train', 0, view_params('sources'))
        assert len(scene.active_sources) == 1
        for pose in scene.poses:
            seen = [direction_in_frame(pose, (0.0, 0.0, 0.0), s.position) for s in scene.sources]
            assert any(abs(math.degrees(az)) <= FACING_JITTER_DEG + 1
                       and FACING_RANGE[0] - 0.05 <= d_xy <= FACING_RANGE[1] + 0.05
                       for az, el, d in seen
                       for d_xy in [d * math.cos(el)]), (i, pose, seen)


def test_default_view_is_the_path_and_a_bad_view_is_refused():
    assert SceneParams().view == 'path'
    assert generate_scene(3, 'test', 0) == generate_scene(3, 'test', 0, view_params('path'))
    with pytest.raises(ConfigError, match='view'):
        view_params('overhead')
