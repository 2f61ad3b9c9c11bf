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


def test_a_sound_making_object_looks_like_its_own_sound():
    """Instance-level tie (what audio-visual retrieval needs): each source
    object's hue is its class's turned by where its own sound sits in the
    class's range (pitch_key), steadily, so two tones of different pitch
    look different while both keep the tone's shape, size and texture."""
    import colorsys

    from av_perception.sim.scene import (INSTANCE_HUE_SPAN, SOUND_CLASSES, instance_color)
    from av_perception.sim.signals import pitch_key, signal_params

    for cls, klass in SOUND_CLASSES.items():
        h0 = colorsys.rgb_to_hsv(*klass.color)[0]
        keys, hues = [], []
        for seed in range(40):
            u = pitch_key(cls, seed)
            h = colorsys.rgb_to_hsv(*instance_color(cls, seed))[0]
            turn = (h - h0 + 0.5) % 1.0 - 0.5          # signed hue change [turns]
            assert turn == pytest.approx((u - 0.5) * INSTANCE_HUE_SPAN, abs=2e-3), (cls, seed)
            keys.append(u)
            hues.append(turn)
        assert max(keys) - min(keys) > 0.7, cls      # the seeds spread over the range
    # the key follows the audible parameter: a higher tone has a higher key
    f0 = {s: signal_params('tone', s)['f0'] for s in range(40)}
    lo, hi = min(f0, key=f0.get), max(f0, key=f0.get)
    assert pitch_key('tone', lo) < 0.1 < 0.9 < pitch_key('tone', hi)
    # and the generator paints each source object with it
    for i in range(3):
        scene = generate_scene(i, 'train', 0, view_params('sources'))
        for src in scene.sources:
            box = scene.boxes[src.box]
            assert box.color == instance_color(src.cls, src.seed)
            assert box.texture == SOUND_CLASSES[src.cls].texture
            ratio = [a / b for a, b in zip(box.size, SOUND_CLASSES[src.cls].size)]
            assert max(ratio) - min(ratio) < 0.02      # the class's shape (this view scales it)
