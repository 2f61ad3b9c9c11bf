"""What each node is fed under load: ONE entry per node with inputs.

Used by the load harness (``av_perception.ros.load``), ``bench/latency.py``,
``bench/burst.py`` and the fuzz and burst tests. A new node plugs in with one
:class:`~av_perception.ros.load.LoadTarget` in :data:`TARGETS`: its params for
the run, its inputs with a factory of valid messages, its nominal rate, and
the output whose header stamp names the input it came from.

Message factories make valid messages of the package's contract
(``/work``-independent, deterministic): 4-mic audio at 16 kHz in 100 ms
chunks, audio_common S16LE buffers, ...
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from geometry_msgs.msg import TwistWithCovarianceStamped
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from av_perception.av_heatmap.heatmap import MEMORY_SECONDS as ACOUSTIC_MEMORY_S
from av_perception.arrays import DEFAULT_ECHO_ARRAY, load_array
from av_perception.audio.chunk import AudioBlock
from av_perception.ros.load import LoadInput, LoadTarget
from av_perception.ros.messages import block_to_chunk, ns_to_stamp, stamp_to_ns
from av_perception.ros.qos import AUDIO, LATCHED, SENSOR
from av_perception.msg import AudioChunk, SoundSourceArray

CHUNK_SECONDS = 0.1


def _noise(channels: int, frames: int, variants: int = 8, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal((channels, frames))).astype(np.float32)
            for _ in range(variants)]


def audio_chunks(array: str = 'respeaker4', chunk_seconds: float = CHUNK_SECONDS):
    """``make(k, stamp_ns)`` of a continuous AudioChunk stream of ``array``
    (its channel count, rate and frame): chunk k starts at sample k * frames."""
    geom = load_array(array)
    frames = int(round(chunk_seconds * geom.sample_rate))
    pool = _noise(geom.channels, frames)

    def make(k: int, stamp_ns: int) -> AudioChunk:
        return block_to_chunk(AudioBlock(pool[k % len(pool)], geom.sample_rate, k * frames,
                                         stamp_ns, geom.frame_id))
    return make


def audio_common_buffers(channels: int = 4, rate: int = 16000,
                         chunk_seconds: float = CHUNK_SECONDS):
    """``make(k, stamp_ns)`` of audio_common AudioDataStamped S16LE buffers,
    stamped at their first sample as the ROS 2 audio_capture driver does."""
    frames = int(round(chunk_seconds * rate))
    pool = [(x.T * 32767).astype('<i2').tobytes() for x in _noise(channels, frames)]

    def make(k: int, stamp_ns: int) -> AudioDataStamped:
        msg = AudioDataStamped(audio=AudioData(data=pool[k % len(pool)]))
        msg.header.stamp = ns_to_stamp(stamp_ns)
        return msg
    return make


def audio_common_info(channels: int = 4, rate: int = 16000):
    def make(k: int, stamp_ns: int) -> AudioInfo:
        return AudioInfo(channels=channels, sample_rate=rate, sample_format='S16LE',
                         bitrate=0, coding_format='wave')
    return make


def echo_chunks(array: str = DEFAULT_ECHO_ARRAY, max_range: float = 12.0):
    """``make(k, stamp_ns)`` of echo windows of ``array`` (sample 0 = the
    chirp's emission; one per slot), as the chirp emitter publishes them."""
    from av_perception.echo.features import spec_for
    geom = load_array(array)
    spec = spec_for(geom, max_range)
    pool = _noise(geom.channels, spec.window, seed=1)

    def make(k: int, stamp_ns: int) -> AudioChunk:
        return block_to_chunk(AudioBlock(pool[k % len(pool)], geom.sample_rate,
                                         k * spec.window, stamp_ns, geom.frame_id))
    return make


def camera_images(width: int = 128, height: int = 128):
    """``make(k, stamp_ns)`` of rgb8 camera frames (textured noise shifted a
    few pixels per frame: a steady turn), in the camera's optical frame."""
    from av_perception.ros.messages import array_to_image, header
    rng = np.random.default_rng(2)
    base = (rng.random((height, width * 2, 3)) * 255).astype(np.uint8)

    def make(k: int, stamp_ns: int):
        shift = (3 * k) % width
        return array_to_image(np.ascontiguousarray(base[:, shift:shift + width]), 'rgb8',
                              header(stamp_ns, 'camera_link_optical'))
    return make


def camera_infos(width: int = 128, height: int = 128, hfov_deg: float = 90.0):
    """``make(k, stamp_ns)`` of the CameraInfo of :func:`camera_images`
    (pinhole, ``hfov_deg`` wide: the shipped av_heatmap model's camera)."""
    import math

    from av_perception.ros.messages import header
    f = width / 2 / math.tan(math.radians(hfov_deg) / 2)
    k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]

    def make(i: int, stamp_ns: int) -> CameraInfo:
        return CameraInfo(header=header(stamp_ns, 'camera_link_optical'), width=width,
                          height=height, distortion_model='plumb_bob', k=k,
                          p=[f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0])
    return make


def camera_tf_static(array: str = 'respeaker4'):
    """``make(k, stamp_ns)`` of the /tf_static message array frame -> the
    camera's optical frame (10 cm above it, looking along the array's +x)."""
    from geometry_msgs.msg import TransformStamped

    from av_perception.ros.messages import header
    frame = load_array(array).frame_id

    def make(i: int, stamp_ns: int) -> TFMessage:
        t = TransformStamped(header=header(stamp_ns, frame), child_frame_id='camera_link_optical')
        t.transform.translation.z = 0.1
        r = t.transform.rotation
        r.x, r.y, r.z, r.w = -0.5, 0.5, -0.5, 0.5   # optical z = array x, x = -y, y = -z
        return TFMessage(transforms=[t])
    return make


def _header_stamp(msg) -> int:
    return stamp_to_ns(msg.header.stamp)


def _markers_stamp(msg: MarkerArray) -> int:
    return stamp_to_ns(msg.markers[0].header.stamp)


#: Analysis window of sound_direction under load [s] (its default: the array's).
_WINDOW = load_array('respeaker4').doa_window

TARGETS: dict[str, LoadTarget] = {
    # every window gives a MarkerArray (a DELETEALL at least), stamped at the
    # window's first sample: the chunk that completed it holds its last sample
    'sound_direction': LoadTarget(
        'sound_direction', {'method': 'srp_onset', 'array': 'respeaker4', 'window': _WINDOW,
                            'hop': CHUNK_SECONDS, 'min_confidence': 0.0,
                            'silence_dbfs': -150.0},
        [LoadInput('audio/raw', AudioChunk, audio_chunks(), AUDIO)], 1 / CHUNK_SECONDS,
        ('sound_direction/markers', MarkerArray), _markers_stamp,
        offset_s=_WINDOW - 1 / 16000),
    # the chunk and the buffer are both stamped at their first sample
    'audio_common_adapter': LoadTarget(
        'audio_common_adapter', {'frame_id': 'mic_array'},
        [LoadInput('audio_info', AudioInfo, audio_common_info(), LATCHED, once=True),
         LoadInput('audio_stamped', AudioDataStamped, audio_common_buffers(), AUDIO)],
        1 / CHUNK_SECONDS, ('audio/raw', AudioChunk), _header_stamp),
    # one depth image per echo, with the echo's stamp
    'echo_depth': LoadTarget(
        'echo_depth', {}, [LoadInput('audio/echo', AudioChunk, echo_chunks(), AUDIO)], 2.0,
        ('echo_depth/depth', Image), _header_stamp),
    # one twist per frame after the first, with the later frame's stamp; the
    # binaural head's audio too, as the node's default (use_audio) hears the
    # segment of every frame on it while it turns the frames into twists
    'rotation': LoadTarget(
        'rotation', {}, [LoadInput('camera/image_raw', Image, camera_images(), SENSOR),
                         LoadInput('audio/binaural', AudioChunk, audio_chunks('binaural'),
                                   AUDIO)], 10.0,
        ('rotation/twist', TwistWithCovarianceStamped), _header_stamp),
    # a heatmap per image, with the image's stamp, once the audio window
    # that starts at the image has come
    'av_heatmap': LoadTarget(
        'av_heatmap', {'array': 'respeaker4', 'silence_dbfs': -150.0},
        # the fused model projects the acoustic image through CameraInfo and TF:
        # both come with each frame (/tf_static latched, as a robot's)
        [LoadInput('camera/image_raw', Image, camera_images(), SENSOR),
         LoadInput('audio/raw', AudioChunk, audio_chunks(), AUDIO),
         LoadInput('camera/camera_info', CameraInfo, camera_infos(), SENSOR),
         LoadInput('/tf_static', TFMessage, camera_tf_static(), LATCHED)], 10.0,
        ('av_heatmap/heatmap', Image), _header_stamp,
        settle_s=ACOUSTIC_MEMORY_S + 1.0),
    # outputs only /diagnostics: latency is its own callback time
    'audio_monitor': LoadTarget(
        'audio_monitor', {'array': 'respeaker4'},
        [LoadInput('audio/raw', AudioChunk, audio_chunks(), AUDIO)], 1 / CHUNK_SECONDS),
    # outputs a bag: latency is its own write time
    'recorder': LoadTarget(
        'recorder', {'output': 'bag', 'output_dir': '{out}', 'topics': ['audio/raw']},
        [LoadInput('audio/raw', AudioChunk, audio_chunks(), AUDIO)], 1 / CHUNK_SECONDS,
        diag_input='/audio/raw'),
}


def second_outputs() -> dict[str, LoadTarget]:
    """Stamped outputs that bench/latency.py measures beside each target's
    own, by name, each as its target with that output: the rotation node's
    binaural direction (``use_audio``, its default), stamped at its frame's
    stamp and published once that frame's segment (the shipped model's
    ``audio_window``) has come, so its latency runs from the chunk that
    completes the segment. Loads the shipped rotation model (not at import)."""
    from av_perception.rotation.estimate import VisualRotation
    spec = VisualRotation().spec
    return {'rotation/sound_direction': replace(
        TARGETS['rotation'], output=('rotation/sound_direction', SoundSourceArray),
        offset_s=(spec.audio_window - 1) / spec.sample_rate)}
