"""Microphone array geometry, from a config file, never from code.

A geometry file (YAML) names the array, its frame, its sample rate and its
microphones in channel order, each with a position [m] in the array frame:

    name: respeaker4
    frame_id: mic_array
    sample_rate: 16000
    kind: circular            # circular | linear | binaural | echo
    mics:                     # the order of the channels in the stream
      - {name: m0, position: [0.0325, 0.0, 0.0]}
      ...

Optionally (the simulator honours it; an echolocation head with
directional microphones, say) a ``directivity`` pattern shared by the
microphones and, per microphone, the direction it faces in the array frame
(``facing: [azimuth_deg, elevation_deg]``, default straight ahead).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from av_perception.errors import ConfigError
from av_perception.paths import config_path

KINDS = ('circular', 'linear', 'planar', 'binaural', 'echo')
#: Default direction-of-arrival analysis window [s] of an array file without
#: ``doa_window``.
DEFAULT_DOA_WINDOW = 0.256
#: Microphone pick-up patterns (first-order family: p = 1 omni ... 0 figure-8).
DIRECTIVITIES = {'omni': 1.0, 'subcardioid': 0.75, 'cardioid': 0.5, 'hypercardioid': 0.25}
#: The echo head the shipped echo-depth models were trained with (the simulated
#: robot's, config/robots/sim.yaml): the default of every echo command and node.
DEFAULT_ECHO_ARRAY = 'echo_head_cardioid'


@dataclass(frozen=True)
class ArrayGeometry:
    """A microphone array.

    Attributes:
        name: geometry id (goes into model metadata and diagnostics).
        frame_id: the array frame (REP 103: x forward, y left, z up).
        sample_rate: Hz.
        kind: one of :data:`KINDS`.
        mic_names: channel names in stream order.
        positions: (channels, 3) microphone positions in the array frame [m].
        speaker: (3,) speaker position [m] for an echolocation head, else None.
        head_radius: effective radius [m] of a binaural head for the
            interaural delay (Woodworth), else None.
        itd_table: (K, 2) measured [azimuth rad, interaural delay s] of a
            binaural head for azimuths 0..90 deg to the left, else None.
        doa_window: the direction-of-arrival analysis window that suits the
            array [s] (``doa_window`` in the file; default 0.256): the node's
            default and what ``eval direction`` and bench/direction score with.
        directivity: pick-up pattern of the microphones (:data:`DIRECTIVITIES`).
        facing: (channels, 2) [azimuth, elevation] [rad] each microphone
            faces in the array frame (meaningless for 'omni').
    """

    name: str
    frame_id: str
    sample_rate: int
    kind: str
    mic_names: tuple[str, ...]
    positions: np.ndarray
    speaker: np.ndarray | None = None
    head_radius: float | None = None
    itd_table: np.ndarray | None = None
    doa_window: float = DEFAULT_DOA_WINDOW
    directivity: str = 'omni'
    facing: np.ndarray | None = None

    @property
    def channels(self) -> int:
        return len(self.mic_names)

    @property
    def resolves_elevation(self) -> bool:
        """True where the microphones span 3-D space (not all in one plane):
        only then can the array tell elevation (and up from down)."""
        if self.channels < 4:
            return False
        centred = self.positions - self.positions.mean(axis=0)
        return bool(np.linalg.matrix_rank(centred, tol=1e-4) == 3)

    @property
    def front_back_ambiguous(self) -> bool:
        """True where the array cannot tell front from back (2 mics on a line,
        or a binaural head)."""
        if self.kind == 'binaural' or self.channels < 3:
            return True
        centred = self.positions - self.positions.mean(axis=0)
        return bool(np.linalg.matrix_rank(centred[:, :2], tol=1e-4) < 2)

    @property
    def aperture(self) -> float:
        """Largest distance between two microphones [m]."""
        d = self.positions[:, None, :] - self.positions[None, :, :]
        return float(np.sqrt((d ** 2).sum(-1)).max())


def _facing(path: Path, mics: list) -> np.ndarray:
    """(channels, 2) [azimuth, elevation] [rad] from the mics' ``facing``
    [deg] (default straight ahead)."""
    out = []
    for m in mics:
        f = m.get('facing', (0.0, 0.0))
        if not isinstance(f, (list, tuple)) or len(f) != 2:
            raise ConfigError(f'{path}: facing must be [azimuth_deg, elevation_deg] per '
                              f'microphone, got {f!r} for {m.get("name")!r}')
        out.append([float(f[0]), float(f[1])])
    return np.radians(np.asarray(out, dtype=np.float64))


def load_array(name_or_path: str | Path) -> ArrayGeometry:
    """Load a geometry file by path or by name (``config/arrays/<name>.yaml``).

    Raises:
        ConfigError: a missing file or a field that does not fit (one line).
    """
    p = Path(name_or_path)
    try:
        path = config_path(p if p.suffix else Path('arrays') / f'{p}.yaml')
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML ({exc.__class__.__name__})') from None
    if not isinstance(doc, dict):
        raise ConfigError(f'{path}: expected a mapping, got {type(doc).__name__}')
    try:
        mics = doc['mics']
        names = tuple(str(m['name']) for m in mics)
        pos = np.asarray([[float(v) for v in m['position']] for m in mics], dtype=np.float64)
        kind = str(doc.get('kind', 'planar'))
        rate = int(doc['sample_rate'])
        speaker = doc.get('speaker')
        speaker = None if speaker is None else np.asarray(speaker, dtype=np.float64)
        geom = ArrayGeometry(name=str(doc.get('name', path.stem)),
                             frame_id=str(doc.get('frame_id', 'mic_array')),
                             sample_rate=rate, kind=kind, mic_names=names,
                             positions=pos, speaker=speaker,
                             head_radius=(float(doc['head_radius']) if 'head_radius' in doc
                                          else None),
                             itd_table=(np.asarray([[np.radians(float(a)), float(t) * 1e-3]
                                                    for a, t in doc['itd_table']])
                                        if 'itd_table' in doc else None),
                             doa_window=float(doc.get('doa_window', DEFAULT_DOA_WINDOW)),
                             directivity=str(doc.get('directivity', 'omni')),
                             facing=_facing(path, mics))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f'{path}: expected name, frame_id, sample_rate and mics with '
                          f'name and position [x, y, z] in metres; problem: {exc!r}') from None
    if pos.ndim != 2 or pos.shape[1] != 3 or len(names) == 0:
        raise ConfigError(f'{path}: expected mics with 3-D positions, got shape {pos.shape}')
    if kind not in KINDS:
        raise ConfigError(f'{path}: kind must be one of {KINDS}, got {kind!r}')
    if geom.directivity not in DIRECTIVITIES:
        raise ConfigError(f'{path}: directivity must be one of {tuple(DIRECTIVITIES)}, '
                          f'got {geom.directivity!r}')
    if not 0.01 <= geom.doa_window <= 5.0:
        raise ConfigError(f'{path}: doa_window must be 0.01-5 s, got {geom.doa_window}')
    if rate <= 0:
        raise ConfigError(f'{path}: sample_rate must be positive, got {rate}')
    if len(set(names)) != len(names):
        raise ConfigError(f'{path}: microphone names must be unique, got {list(names)}')
    return geom
