"""The ``av-perception`` command.

Each subcommand is a thin layer over the library; errors a user can fix
(a missing file, a bad parameter, a bag that is not a bag) end the command
with one readable line and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from av_perception import __version__
from av_perception.arrays import DEFAULT_ECHO_ARRAY
from av_perception.errors import ConfigError, InputError


def _cmd_run(args: argparse.Namespace) -> int:
    from av_perception.runner import run_params
    return run_params(args.params, args.ros_args, namespace=args.namespace,
                      use_sim_time=args.use_sim_time)


def _cmd_demo(args: argparse.Namespace) -> int:
    from av_perception.ros.demo import run_demo
    return run_demo(args.out, args.seconds, args.params)


def _cmd_record(args: argparse.Namespace) -> int:
    from rclpy.parameter import Parameter

    from av_perception.nodes.recorder import RecorderNode
    from av_perception.ros.spin import spin_nodes

    overrides = [Parameter('topics', Parameter.Type.STRING_ARRAY, list(args.topics))]
    if args.output:  # the folder asked for: the bag is its last component
        out = args.output.resolve()
        overrides += [Parameter('output', Parameter.Type.STRING, out.name),
                      Parameter('output_dir', Parameter.Type.STRING, str(out.parent))]
    if args.exclude:
        overrides.append(Parameter('exclude', Parameter.Type.STRING_ARRAY, list(args.exclude)))
    return spin_nodes([lambda: RecorderNode(parameter_overrides=overrides)],
                      args=['av-perception', '--ros-args', *args.ros_args])


def _cmd_simulate(args: argparse.Namespace) -> int:
    from av_perception.sim.bags import simulate
    if args.scenes < 1:
        raise ConfigError(f'--scenes must be at least 1, got {args.scenes}')
    if args.poses < 1:
        raise ConfigError(f'--poses must be at least 1, got {args.poses}')
    if args.snr_db[0] > args.snr_db[1]:
        raise ConfigError(f'--snr-db expects LO <= HI, got {args.snr_db}')
    if args.split == 'shift' and args.textures:
        raise ConfigError('--textures does not apply to --split shift (it draws its own)')
    results = simulate(args.out, args.scenes, seed=args.seed, split=args.split,
                       first=args.first, jobs=args.jobs, poses=args.poses,
                       snr_db=tuple(args.snr_db), teacher=args.teacher,
                       echo_only=args.echo_only,
                       textures=tuple(args.textures) if args.textures else None,
                       view=args.view, robot=args.robot, randomize=args.randomize,
                       classes=tuple(args.classes) if args.classes else None)
    samples = sum(r['samples'] for r in results)
    print(f'[simulate] wrote {len(results)} bags ({samples} samples) to {args.out}')
    return 0


def _cmd_train_direction(args: argparse.Namespace) -> int:
    from av_perception.train.direction import DirectionConfig, train
    res = train(args.bags, args.out, DirectionConfig(
        array=args.array, target=args.target, epochs=args.epochs, jobs=args.jobs,
        seed=args.seed, salvage=args.salvage, namespace=args.namespace,
        geometry=args.geometry, onset_history=args.onset_history,
        **({'teacher_array': args.teacher_geometry} if args.teacher_geometry else {})))
    print(f'[train] wrote {res.model} ({res.windows} windows from {res.bags} bags; '
          f'curve {res.fit.plot})')
    return 0


def _cmd_train_av_heatmap(args: argparse.Namespace) -> int:
    from av_perception.train.av_heatmap import AvHeatmapConfig, train
    res = train(args.bags, args.out, AvHeatmapConfig(
        extra_positives=not args.no_extra_positives, epochs=args.epochs, jobs=args.jobs,
        seed=args.seed, in_view_deg=args.in_view, acoustic=not args.alone,
        threads=args.threads, data_note=args.data_note, array=args.array,
        namespace=args.namespace, hfov_tolerance=args.hfov_tolerance))
    print(f'[train] wrote {res.model} ({res.samples} samples from {res.bags} bags, '
          f'{res.anchors} anchors, {res.fit.seconds:.1f} s; curve {res.fit.plot})')
    return 0


def _cmd_eval_direction(args: argparse.Namespace) -> int:
    from av_perception.direction.evaluate import score
    args.method = args.method or ('gcc_onset' if args.array == 'binaural' else 'srp_onset')
    if args.tracks:
        from av_perception.direction.track_eval import score_tracking
        t = score_tracking(args.bags, args.array, args.method, num_sources=args.sources,
                           model=args.model, namespace=args.namespace, geometry=args.geometry)
        for name, sc in (('tracked', t.tracked), ('untracked', t.untracked)):
            print(f'tracks {args.array} {args.method} {name} ({t.bags} bags): '
                  + ', '.join(f'{k} {v}' for k, v in sc.summary().items()))
        return 0
    s = score(args.bags, args.array, args.method, model=args.model, namespace=args.namespace,
              salvage=args.salvage, geometry=args.geometry)
    summary = s.summary()
    print(f'direction {args.array} {args.method}: '
          + ', '.join(f'{k} {v}' for k, v in summary.items()))
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from av_perception.arrays import load_array
    from av_perception.echo.dataset import build
    from av_perception.echo.features import spec_for
    from av_perception.paths import shipped_model
    if args.tolerance < 0:
        raise ConfigError(f'--tolerance must be >= 0 s, got {args.tolerance}')
    spec = spec_for(load_array(args.array), args.max_range)
    build(args.bags, args.out, args.teacher or shipped_model('echo_teacher'), spec,
          tolerance=args.tolerance, namespace=args.namespace, salvage=args.salvage)
    return 0


def _cmd_train_echo_teacher(args: argparse.Namespace) -> int:
    from av_perception.train.echo_depth import TeacherConfig, train_teacher
    res = train_teacher(args.bags, args.out, TeacherConfig(epochs=args.epochs, seed=args.seed,
                                                           namespace=args.namespace))
    print(f'[train] wrote {res.model} ({res.frames} frames from {res.bags} bags, best '
          f'epoch {res.fit.epoch}; curve {res.fit.plot})')
    return 0


#: `train echo-depth` flags that set a StudentConfig field of the same name
STUDENT_FLAGS = ('variant', 'sam_blocks', 'k', 'width', 'triplet_weight', 'margin', 'epochs',
                 'seed')


def _cmd_train_echo_depth(args: argparse.Namespace) -> int:
    from av_perception.train.echo_depth import StudentConfig, train_student
    # the flags left out keep StudentConfig's defaults (one place for them)
    cfg = StudentConfig(**{k: getattr(args, k) for k in STUDENT_FLAGS
                           if getattr(args, k) is not None})
    res = train_student(args.data, args.out, cfg)
    if res.model is not None:
        print(f'[train] wrote {res.model} ({res.variant}, {res.train_examples} '
              f'training examples, {res.fit.seconds:.0f} s; curve {res.fit.plot})')
    return 0


def _cmd_eval_echo_depth(args: argparse.Namespace) -> int:
    from av_perception.echo.evaluate import format_scores, score_student
    print(format_scores({'model': score_student(args.bags, args.model, args.tolerance,
                                                args.namespace, base_frame=args.base_frame)}))
    return 0


def _cmd_eval_echo_map(args: argparse.Namespace) -> int:
    from av_perception.echo.map_evaluate import MapFrames, format_summary, score_echo_map
    frames = MapFrames(args.odom_frame, args.base_frame, args.optical_frame)
    print(format_summary(score_echo_map(args.bags, args.model, args.namespace, frames=frames,
                                        progress=sys.stderr.isatty())))
    return 0


def _add_echo_depth_commands(sub, tsub, esub) -> None:
    """``dataset``, ``train echo-teacher``, ``train echo-depth``, ``eval echo-depth``,
    ``eval echo-map``."""
    from av_perception.bag.contents import BASE_FRAME, ODOM_FRAME
    p = sub.add_parser('dataset', help='echo / camera pairs from bags, with the teacher\'s '
                       'pseudo-depth, cached for echo-depth training',
                       description='Pair each audio/echo chunk with the camera frame nearest in '
                                   'time, run the visual teacher (pseudo-depth and feature maps) '
                                   'and cache the result; gt/depth, where the bags have it, is '
                                   'kept for evaluation only.')
    p.add_argument('--bags', type=Path, nargs='+', required=True, help='folder(s) of bags')
    p.add_argument('--out', type=Path, required=True, help='data set folder to write')
    p.add_argument('--teacher', type=Path, help='ONNX depth teacher (default: the shipped one)')
    p.add_argument('--tolerance', type=float, default=0.05,
                   help='largest echo / camera stamp difference for a pair [s]')
    p.add_argument('--array', default=DEFAULT_ECHO_ARRAY, help='echo array geometry')
    p.add_argument('--max-range', type=float, default=12.0, help='echo range [m]')
    p.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    p.add_argument('--salvage', action='store_true', help=SALVAGE_HELP)
    p.set_defaults(func=_cmd_dataset)

    t = tsub.add_parser('echo-teacher', help='the stand-in RGB -> depth teacher (simulated bags '
                        'with gt/depth)')
    t.add_argument('--bags', type=Path, required=True)
    t.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    t.add_argument('--epochs', type=int, default=12)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    t.set_defaults(func=_cmd_train_echo_teacher)

    t = tsub.add_parser('echo-depth', help='the echo student (depth from echoes); torchrun '
                        'for data-parallel training')
    t.add_argument('--data', type=Path, required=True, help='folder made by `dataset`')
    t.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    # defaults (None here): StudentConfig's, see av_perception/train/echo_depth.py
    t.add_argument('--variant', choices=['pseudo', 'sam', 'gt'],
                   help='pseudo-depth only, pseudo-depth + SAM, or ground truth (simulation; '
                   'default sam)')
    t.add_argument('--sam-blocks', type=int, help='SAM blocks, coarsest first (default 2)')
    t.add_argument('--k', type=int, help='embeddings of the first SAM block '
                   '(K/4 for each next one; default 64)')
    t.add_argument('--width', type=int, help='channel multiplier (default 16)')
    t.add_argument('--triplet-weight', type=float,
                   help='weight of the SAM triplet feature loss against the depth loss '
                   '(default 0.1)')
    t.add_argument('--margin', type=float, help='triplet margin (SAM; default 0.3)')
    t.add_argument('--epochs', type=int, help='default 25')
    t.add_argument('--seed', type=int, help='default 0')
    t.set_defaults(func=_cmd_train_echo_depth)

    e = esub.add_parser('echo-depth', help='depth from echoes vs gt/depth')
    e.add_argument('--bags', type=Path, required=True)
    e.add_argument('--model', type=Path, help='ONNX student (default: the shipped one)')
    e.add_argument('--tolerance', type=float, default=0.05,
                   help='largest echo / gt/depth stamp difference [s]')
    e.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    e.add_argument('--base-frame', default=BASE_FRAME, help='frame of the occupancy grid: the '
                   'camera\'s mount in it comes from the bags\' /tf_static (default '
                   '%(default)s)')
    e.set_defaults(func=_cmd_eval_echo_depth)

    e = esub.add_parser('echo-map', help='echoes fused in odom vs gt/occupancy carried into '
                        'odom, beside the single-echo grids')
    e.add_argument('--bags', type=Path, nargs='+', required=True,
                   help='folder(s) of bags with audio/echo, /tf (odom -> base), /tf_static '
                   '(base -> the optical frame) and gt/occupancy; a bag lacking one is named '
                   'and skipped')
    e.add_argument('--model', type=Path, help='ONNX student (default: the shipped one)')
    e.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    e.add_argument('--odom-frame', default=ODOM_FRAME, help='the map\'s fixed frame: the '
                   'odometry on /tf (default %(default)s)')
    e.add_argument('--base-frame', default=BASE_FRAME, help='the robot\'s base frame: the '
                   'single-echo grid\'s (default %(default)s)')
    e.add_argument('--optical-frame', default='', help='the echo depth\'s virtual camera, '
                   'placed on the robot by the bags\' TF (default: <frame of the audio/echo '
                   'chunks>_optical, as the echo_depth node)')
    e.set_defaults(func=_cmd_eval_echo_map)


def _add_rotation_bag_options(p: argparse.ArgumentParser) -> None:
    """The bag options of ``train rotation`` and ``eval rotation`` (one
    ``rotation.dataset.BagOptions``, see :func:`_rotation_options`)."""
    from av_perception.bag.contents import BASE_FRAME, ODOM_FRAME
    from av_perception.rotation.dataset import (HFOV_TOLERANCE_DEG, MAX_PAIR_SECONDS,
                                                TURN_IN_PLACE_M)
    p.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    p.add_argument('--max-pair-seconds', type=float, default=MAX_PAIR_SECONDS,
                   help='longest time between the two frames of a turn pair [s] (default '
                   '%(default)s); which frames are turns in place comes from the motion')
    p.add_argument('--max-pair-translation', type=float, default=TURN_IN_PLACE_M,
                   help='largest base translation between the two frames of a turn in place '
                   '[m] (default %(default)s)')
    p.add_argument('--odom-frame', default=ODOM_FRAME, help='odometry frame on /tf, for bags '
                   'without gt/pose (default %(default)s)')
    p.add_argument('--base-frame', default=BASE_FRAME, help='the robot\'s base frame '
                   '(default %(default)s)')
    p.add_argument('--hfov-tolerance', type=float, default=HFOV_TOLERANCE_DEG,
                   help='largest difference between the bag camera\'s field of view '
                   '(camera_info) and the model\'s [deg] (default %(default)s)')


def _rotation_options(args: argparse.Namespace):
    from av_perception.bag.contents import MotionFrames
    from av_perception.rotation.dataset import BagOptions, PairRule
    return BagOptions(args.namespace, MotionFrames(args.odom_frame, args.base_frame),
                      PairRule(args.max_pair_seconds, args.max_pair_translation),
                      args.hfov_tolerance)


def _cmd_train_rotation(args: argparse.Namespace) -> int:
    from av_perception.train.rotation import TARGETS, RotationConfig, train
    targets = TARGETS if args.target == 'both' else (args.target,)
    res = train(args.bags, args.out, RotationConfig(
        targets=targets, epochs=args.epochs, seed=args.seed,
        binaural_epochs=args.binaural_epochs, scale_from_labels=not args.sign_only,
        visual_model=args.visual_model, binaural_sign=args.binaural_sign,
        refine_epochs=args.refine_epochs, refine_rounds=args.refine_rounds,
        refine_members=args.refine_members,
        binaural_array=args.binaural_array,
        binaural_onset_history=args.binaural_onset_history,
        options=_rotation_options(args)))
    for t, v in res.visual.items():
        how = (f'given {v.given}' if v.given else
               f'best epoch {v.fit.epoch}, validation median yaw error '
               f'{v.val_median_yaw_error_deg} deg')
        print(f'[train] rotation {t} visual: {v.model} ({how}; sign {v.sign})')
    if res.binaural is not None:
        b = res.binaural
        err = (f'validation median error {b.val_median_error_deg} deg on {b.val_views} labelled '
               'views' if b.val_median_error_deg is not None else 'no labelled validation view')
        print(f'[train] rotation binaural: {b.model} (best epoch {b.fit.epoch}, sign '
              f'{b.sign_scale}; {err})')
    print(f'[train] wrote the rotation models to {args.out} ({res.pairs} turn pairs from '
          f'{res.bags} bags)')
    return 0


def _cmd_eval_rotation(args: argparse.Namespace) -> int:
    from av_perception.rotation.evaluate import report, score
    results = score(args.bags, model=args.model, labels_model=args.labels_model,
                    binaural_models={'binaural_motion': args.binaural_model}
                    if args.binaural_model else None, progress=sys.stderr,
                    options=_rotation_options(args))
    print('\n'.join(report(results)))
    return 0


def _cmd_eval_av_heatmap(args: argparse.Namespace) -> int:
    import numpy as np

    from av_perception.av_heatmap.evaluate import print_summary, score
    from av_perception.av_heatmap.heatmap import ALONE_MODEL
    from av_perception.paths import shipped_model
    alone = shipped_model(ALONE_MODEL) if args.alone == Path('') else args.alone
    s = score(args.bags, model=args.model, alone=alone, namespace=args.namespace,
              oracle=args.oracle, progress=sys.stderr, array=args.array,
              hfov_tolerance=args.hfov_tolerance)
    n = len(s.object_share)
    print(f'av-heatmap: {n} scored images (sounding object in view, a median '
          f'{100 * float(np.median(s.object_share)):.1f} % of the image) of {s.samples}; '
          f'{s.silent} silent')
    for method in s.methods:
        print_summary(method, s.summary(method))
    return 0


def _add_av_heatmap_bag_options(p: argparse.ArgumentParser) -> None:
    """The bag options of ``train av-heatmap`` and ``eval av-heatmap``."""
    from av_perception.av_heatmap.evaluate import HFOV_TOLERANCE_DEG
    p.add_argument('--array', default='respeaker4', help='microphone array (geometry name or '
                   'file) of the bags\' audio/raw (default %(default)s)')
    p.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    p.add_argument('--hfov-tolerance', type=float, default=HFOV_TOLERANCE_DEG,
                   help='largest difference between a bag camera\'s field of view '
                   '(camera_info) and the model\'s [deg] (default %(default)s)')


def _cmd_check_array(args: argparse.Namespace) -> int:
    import math

    from av_perception.arrays import load_array
    from av_perception.direction.check_array import check, load_recording
    geom = load_array(args.array)
    samples, fs = load_recording(args.recording, args.topic)
    if fs != geom.sample_rate:
        raise ConfigError(f'the recording is at {fs} Hz, the geometry file says '
                          f'{geom.sample_rate} Hz')
    result = check(samples, geom, math.radians(args.azimuth), tolerance=args.tolerance)
    print(result.report())
    return 0 if result.ok else 1


def _cmd_doctor(args: argparse.Namespace) -> int:
    from av_perception.doctor import run_checks
    return run_checks(quiet=args.quiet)


def _cmd_nodes(args: argparse.Namespace) -> int:
    from av_perception.nodes import NODES
    for name, target in NODES.items():
        print(f'{name:24s} {target}')
    return 0


SALVAGE_HELP = ('use the readable messages of damaged (e.g. truncated) MCAP bags, with a '
                'warning, instead of stopping at the first one')


def _add_robot_commands(sub) -> None:
    """run, demo, record: the package's graph from the command line."""
    p = sub.add_parser('run', help='start the nodes a ROS 2 params file names, in one process',
                       description='Start every node named in a ROS 2 params YAML (its top-level '
                                   'keys) on one executor, until Ctrl-C or SIGTERM.')
    p.add_argument('params', type=Path, help='params file, e.g. config/sim.yaml')
    p.add_argument('--namespace', default='', help='the robot\'s namespace (e.g. robot1): '
                   'topics under it, /tf and /tf_static remapped to its tf and tf_static')
    p.add_argument('--use-sim-time', action='store_true',
                   help='every node takes its time from /clock')
    p.add_argument('--ros-args', nargs=argparse.REMAINDER, default=[], dest='ros_args',
                   help='further ROS arguments (remappings, log levels)')
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser('demo', help='the simulated robot with every node for a minute, then a '
                       'bag, a report and metrics',
                       description='Run the simulated robot (a held-out room) with every node of '
                                   'the package in one process, record inputs and outputs to an '
                                   'MCAP bag, then draw a report (PNG) and write a metrics JSON '
                                   'of the outputs against the ground truth.')
    p.add_argument('--seconds', type=float, default=60.0, help='how long to run [s]')
    p.add_argument('--out', type=Path, default=Path('out/demo'),
                   help='folder for bag/, report.png, metrics.json (its bag/ is replaced)')
    p.add_argument('--params', default='sim.yaml',
                   help='params file of the graph (default: config/sim.yaml)')
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser('record', help='record topics to an MCAP bag until Ctrl-C or SIGTERM',
                       description='Record topics (any message type installed here) to a ROS 2 '
                                   'MCAP bag; the bag is finalized on Ctrl-C or SIGTERM.')
    p.add_argument('topics', nargs='*', help='topics to record (default: all)')
    p.add_argument('-o', '--output', type=Path, help='bag folder to create')
    p.add_argument('--exclude', nargs='*', default=[], help='topics never to record')
    p.add_argument('--ros-args', nargs=argparse.REMAINDER, default=[], dest='ros_args',
                   help='further ROS arguments')
    p.set_defaults(func=_cmd_record)


def _add_simulation_commands(sub) -> None:
    """simulate: the simulated world into bags."""
    from av_perception.sim.scene import SOUND_CLASSES, SPLITS, TEXTURES, VIEWS
    p = sub.add_parser('simulate', help='render simulated scenes into MCAP bags',
                       description='Render procedurally generated rooms (images, depth, echoes, '
                                   'array and binaural audio, ground truth) into one MCAP bag '
                                   'per scene, in parallel; deterministic for a given seed.')
    p.add_argument('--scenes', type=int, required=True, help='number of scenes (rooms)')
    p.add_argument('--out', type=Path, required=True, help='output folder (one bag per scene)')
    p.add_argument('--seed', type=int, default=0, help='seed of the scene generator')
    p.add_argument('--split', choices=list(SPLITS), default='train',
                   help='train rooms, the held-out test rooms, or the shifted split: rooms of '
                   'families neither has (other floor plans, materials, reverberation, '
                   'textures, lighting, looks and sounds; its own SNR range, so --snr-db and '
                   '--textures do not apply; docs/simulation_shift.md)')
    p.add_argument('--first', type=int, default=0, help='index of the first scene')
    p.add_argument('--poses', type=int, default=8, help='samples (robot poses) per scene')
    p.add_argument('--snr-db', type=float, nargs=2, default=[10.0, 30.0], metavar=('LO', 'HI'),
                   help='range of the microphones\' signal-to-noise ratio [dB]')
    p.add_argument('--teacher', action='store_true',
                   help='also record the 16-mic virtual teacher array (audio/teacher) that the '
                        'learned direction models distil from')
    p.add_argument('--echo-only', action='store_true',
                   help='camera, echo and ground truth only, without the array and binaural '
                        'streams (about 3x faster; data for echo depth)')
    p.add_argument('--textures', nargs='+', choices=list(TEXTURES), default=None,
                   metavar='TEXTURE', help='draw walls, floor, ceiling and furniture from these '
                   f'textures only (default: all of {", ".join(TEXTURES)}; plain: poorly '
                   'textured rooms)')
    p.add_argument('--view', choices=list(VIEWS), default='path',
                   help='how the robot\'s poses are chosen: path (drive and turn at random '
                   'through the room) or sources (close-ups facing the source objects, one '
                   'sounding: audio-visual localization data)')
    p.add_argument('--classes', nargs='+', choices=sorted(SOUND_CLASSES), default=None,
                   metavar='CLASS', help='draw the sound sources from these classes only '
                   f'(default: all of {", ".join(sorted(SOUND_CLASSES))})')
    p.add_argument('--robot', default='robots/sim.yaml',
                   help='robot description: a path, or a file under config/ (default '
                   'robots/sim.yaml, whose echo head has cardioid microphones; '
                   'robots/sim_omni_echo.yaml: the same robot with omnidirectional ones)')
    p.add_argument('--randomize', choices=['none', 'wide'], default='none',
                   help='sensor randomization for training data: wide draws per-microphone '
                   'gain (+-2 dB), phase (+-5 deg) and position (+-2 mm) errors, a '
                   'sample-clock offset (+-50 ppm), diffuse and directional noise (SNR 5-30 '
                   'dB), camera exposure (+-0.7 EV), white balance (+-15 %%), blur and noise; '
                   'recorded in each bag\'s index entry (default none: the bags as without '
                   'it; sim/randomize.py)')
    p.add_argument('--jobs', type=int, default=0, help='worker processes (0: one per core)')
    p.set_defaults(func=_cmd_simulate)


def _add_direction_commands(tsub, esub) -> None:
    """train direction, eval direction."""
    t = tsub.add_parser('direction', help='learned direction of arrival, distilled from the '
                        'acoustic image of the 16-mic teacher array')
    t.add_argument('--bags', type=Path, required=True, help='folder of bags (simulate --teacher)')
    t.add_argument('--array', choices=['array', 'binaural'], default='array',
                   help='the student: the 4-mic array (audio/raw) or the binaural head')
    t.add_argument('--target', choices=['teacher', 'labels'], default='teacher',
                   help='acoustic-image distillation, or ground-truth labels (ablation)')
    t.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    t.add_argument('--epochs', type=int, default=60)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--jobs', type=int, default=0, help='feature workers (0: one per core)')
    t.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    t.add_argument('--salvage', action='store_true', help=SALVAGE_HELP)
    t.add_argument('--geometry', help='the student array\'s geometry: a name under '
                   'config/arrays/ or a file (default: respeaker4 for --array array, binaural '
                   'for binaural); each bag\'s stream must have its channels and sample rate, '
                   'and the model records its name')
    t.add_argument('--teacher-geometry', help='geometry of the larger '
                   'array recorded on audio/teacher, whose acoustic image teaches (name or '
                   'file; default: the simulator\'s 16-mic virtual array)')
    t.add_argument('--onset-history', type=int, default=0, help='> 0: the cross-correlation '
                   'features weighted by onsets over this many 8 ms frames (0: the whole '
                   'window\'s, the shipped models\')')
    t.set_defaults(func=_cmd_train_direction)
    e = esub.add_parser('direction', help='direction of arrival vs gt/sound_direction')
    e.add_argument('--bags', type=Path, required=True)
    e.add_argument('--array', choices=['array', 'binaural'], default='array')
    # direction.evaluate.ESTIMATORS, written out: the parser imports no science
    # (test_direction_srp.py checks they agree)
    e.add_argument('--method', choices=['srp', 'normmusic', 'gcc', 'srp_onset', 'gcc_onset',
                                        'learned'],
                   help='default: srp_onset (SRP-PHAT weighted by onsets, the node\'s default) '
                   'for --array array, gcc_onset (GCC-PHAT weighted by onsets, '
                   'config/sim.yaml\'s) for binaural')
    e.add_argument('--model', type=Path, help='ONNX model for --method learned (default: the '
                   'shipped one for the array)')
    e.add_argument('--geometry', help='array geometry name or file (default: respeaker4 for '
                   '--array array, binaural for binaural); each bag\'s stream must have its '
                   'channels and sample rate')
    e.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    e.add_argument('--salvage', action='store_true', help=SALVAGE_HELP)
    e.add_argument('--tracks', action='store_true', help='score the node\'s tracked sources '
                   '(track recall, ID switches per minute, IDF1) against the ids of '
                   'gt/sound_direction, beside the untracked per-window estimates')
    e.add_argument('--sources', type=int, default=2, help='sources estimated per window '
                   'with --tracks (the node\'s num_sources; default 2)')
    e.set_defaults(func=_cmd_eval_direction)


def _add_av_heatmap_commands(tsub, esub) -> None:
    """train av-heatmap, eval av-heatmap."""
    t = tsub.add_parser('av-heatmap', help='audio-visual localization (where in the image the '
                        'sound comes from): the projected acoustic image teaches where, '
                        'contrastive alignment what; no labels')
    t.add_argument('--bags', type=Path, required=True, action='append',
                   help='folder of bags with camera/image_raw, camera/camera_info, audio/raw '
                   'and the array -> camera transform on /tf_static (a robot\'s own '
                   'recordings; no ground truth is read) (repeatable)')
    t.add_argument('--alone', action='store_true',
                   help='the audio-visual model alone, without the acoustic image (the '
                   'paper\'s method; the baseline)')
    t.add_argument('--threads', type=int, default=1, help='PyTorch CPU threads')
    t.add_argument('--data-note', help='what the bags are, stored in the model\'s metadata '
                   '(default: their folder names)')
    t.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    t.add_argument('--no-extra-positives', action='store_true',
                   help='ablation: one view per sample, its own pair the only positive')
    t.add_argument('--in-view', type=float, metavar='DEG',
                   help='--alone: train only on samples the array hears within DEG of the '
                        'camera axis (its own SRP-PHAT direction, no ground truth)')
    t.add_argument('--epochs', type=int, default=25)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--jobs', type=int, default=0, help='feature workers (0: one per core)')
    _add_av_heatmap_bag_options(t)
    t.set_defaults(func=_cmd_train_av_heatmap)

    e = esub.add_parser('av-heatmap', help='audio-visual localization vs gt/source_mask: '
                        'pointing, pixel AUC-ROC, cIoU at the object\'s size, the paper\'s cIoU '
                        'and AUC, retrieval; beside the centre prior, a random point and the '
                        'projected acoustic image alone')
    e.add_argument('--bags', type=Path, required=True,
                   help='bags with camera/image_raw, camera/camera_info, audio/raw, /tf_static '
                   'and gt/source_mask')
    e.add_argument('--model', type=Path, help='fused ONNX model (default: the shipped one)')
    e.add_argument('--alone', type=Path, nargs='?', const=Path(''), default=None,
                   help='also score an audio-visual model without the acoustic image (no '
                   'value: the shipped av_heatmap_alone.onnx)')
    e.add_argument('--oracle', action='store_true',
                   help='also the oracles: the true directions (gt/sound_direction) and the '
                   'virtual 16-mic array (audio/teacher) as acoustic images')
    _add_av_heatmap_bag_options(e)
    e.set_defaults(func=_cmd_eval_av_heatmap)


def _add_rotation_commands(tsub, esub) -> None:
    """train rotation, eval rotation."""
    from av_perception.train.motion_refine import EPOCHS, MEMBERS, ROUNDS
    t = tsub.add_parser('rotation', help='visual rotation and binaural direction, learned '
                        'together without labels (and the label-trained reference)')
    t.add_argument('--bags', type=Path, nargs='+', required=True,
                   help='folders of bags with camera/image_raw and audio/binaural')
    t.add_argument('--out', type=Path, required=True, help='folder for the ONNX models')
    t.add_argument('--target', choices=['selfsup', 'labels', 'both'], default='both',
                   help='self-supervised, label-trained reference, or both')
    t.add_argument('--epochs', type=int, default=6, help='epochs of the visual network (self-'
                   'supervised: of its pretext task; labels: with the true yaw)')
    t.add_argument('--binaural-epochs', type=int, default=40,
                   help='self-supervised: epochs in which the binaural direction network learns '
                   'from the frozen visual network\'s turns')
    t.add_argument('--visual-model', type=Path, default=None,
                   help='self-supervised: take the turns from this visual ONNX model (e.g. the '
                   'shipped models/rotation_visual.onnx) instead of training one')
    t.add_argument('--sign-only', action='store_true',
                   help='self-supervised: the 12 labelled validation pairs fix the yaw\'s sign '
                   'only (as the paper), not also its scale (parallax of an off-axis camera)')
    t.add_argument('--binaural-sign', choices=['auto', 'labels', 'geometry'], default='auto',
                   help='self-supervised: what fixes the binaural network\'s mirror image: 12 '
                   'labelled validation views (gt/sound_direction), or no labels at all: '
                   'GCC-PHAT\'s left/right on the training views (auto: labels if the bags '
                   'have them)')
    t.add_argument('--refine-epochs', type=int, default=EPOCHS,
                   help='self-supervised: epochs of each round of the binaural network\'s '
                   'self-training on the pseudo-labels that each chain of turns gives its views '
                   '(0: none; no label is read either way)')
    t.add_argument('--refine-rounds', type=int, default=ROUNDS,
                   help='self-supervised: the most self-training rounds, each on the '
                   'pseudo-labels of the network before it; they stop once the pseudo-labels '
                   'stand still (0: none)')
    t.add_argument('--refine-members', type=int, default=MEMBERS,
                   help='self-supervised: chains of self-training rounds, each from its own '
                   'seed, whose networks\' distributions are averaged in the exported model '
                   '(default %(default)s; 1: one network)')
    t.add_argument('--binaural-array', default='binaural',
                   help='the binaural head\'s geometry: a name under config/arrays/ or a file '
                   '(its sample rate is the one audio/binaural must have; the models record '
                   'the name)')
    t.add_argument('--binaural-onset-history', type=int, default=0,
                   help='self-supervised: the binaural network\'s cross-correlation features '
                   'weighted by onsets over this many 8 ms frames (as train direction '
                   '--onset-history; 0: the whole window\'s)')
    t.add_argument('--seed', type=int, default=0)
    _add_rotation_bag_options(t)
    t.set_defaults(func=_cmd_train_rotation)
    e = esub.add_parser('rotation', help='yaw between frames vs gt/pose, binaural direction vs '
                        'gt/sound_direction; OpenCV baseline and label-trained reference')
    e.add_argument('--bags', type=Path, required=True)
    e.add_argument('--model', type=Path, help='visual rotation model (default: the shipped '
                   'self-supervised one)')
    e.add_argument('--labels-model', type=Path, help='supervised reference (default: shipped)')
    e.add_argument('--binaural-model', type=Path, help='binaural direction model trained from '
                   'motion (default: the shipped rotation_binaural); the distilled and '
                   'label-trained ones are the shipped direction_binaural*')
    _add_rotation_bag_options(e)
    e.set_defaults(func=_cmd_eval_rotation)


def _add_tool_commands(sub) -> None:
    """check-array, doctor, nodes."""
    p = sub.add_parser('check-array', help='check channel order and geometry against a '
                       'recording of a source at a known direction',
                       description='Say whether the channel order and geometry of an array file '
                                   'agree with a recording (WAV or bag) of one source at a known '
                                   'azimuth, and which channel order would fit better. Exit 0 '
                                   'if they agree, 1 if not.')
    p.add_argument('--array', required=True, help='geometry name or file')
    p.add_argument('--recording', type=Path, required=True, help='WAV/FLAC file or bag folder')
    p.add_argument('--azimuth', type=float, required=True,
                   help='known source azimuth [deg], CCW from +x of the array frame')
    p.add_argument('--topic', default='audio/raw', help='AudioChunk topic in a bag')
    p.add_argument('--tolerance', type=float, default=10.0, help='accepted error [deg]')
    p.set_defaults(func=_cmd_check_array)

    p = sub.add_parser('doctor', help='check that ROS 2, the interfaces and ONNX Runtime work',
                       description='Check the environment: rclpy and the middleware, generated '
                                   'interfaces, ONNX Runtime providers, optional extras.')
    p.add_argument('--quiet', action='store_true', help='print only problems')
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser('nodes', help='list the nodes of the package')
    p.set_defaults(func=_cmd_nodes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='av-perception',
        description='Perception with sound for ROS 2 robots: run the nodes, record bags, '
                    'check the environment.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    _add_robot_commands(sub)
    _add_simulation_commands(sub)

    p = sub.add_parser('train', help='train a model from bags',
                       description='Train a model from bags (PyTorch, CPU or GPU).')
    tsub = p.add_subparsers(dest='model_kind', required=True, metavar='MODEL')
    p = sub.add_parser('eval', help='score a method or model on bags with ground truth',
                       description='Score on any bags that carry the inputs and the gt/... '
                                   'topics, whoever made them; prints the benchmark metrics.')
    esub = p.add_subparsers(dest='eval_kind', required=True, metavar='TASK')
    _add_direction_commands(tsub, esub)
    _add_echo_depth_commands(sub, tsub, esub)
    _add_rotation_commands(tsub, esub)
    _add_av_heatmap_commands(tsub, esub)
    _add_tool_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, InputError, FileNotFoundError) as exc:
        print(f'av-perception {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
