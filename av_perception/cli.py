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
from av_perception.errors import ConfigError, InputError


def _cmd_run(args: argparse.Namespace) -> int:
    from av_perception.runner import run_params
    return run_params(args.params, args.ros_args)


def _cmd_record(args: argparse.Namespace) -> int:
    from rclpy.parameter import Parameter

    from av_perception.nodes.recorder import RecorderNode
    from av_perception.ros.spin import spin_nodes

    overrides = [Parameter('topics', Parameter.Type.STRING_ARRAY, list(args.topics))]
    if args.output:
        overrides.append(Parameter('output', Parameter.Type.STRING, str(args.output)))
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
    results = simulate(args.out, args.scenes, seed=args.seed, split=args.split,
                       first=args.first, jobs=args.jobs, poses=args.poses,
                       snr_db=tuple(args.snr_db), teacher=args.teacher)
    samples = sum(r['samples'] for r in results)
    print(f'[simulate] wrote {len(results)} bags ({samples} samples) to {args.out}')
    return 0


def _cmd_train_direction(args: argparse.Namespace) -> int:
    from av_perception.train.direction import train
    res = train(args.bags, args.array, args.out, target=args.target, epochs=args.epochs,
                jobs=args.jobs, seed=args.seed)
    print(f'[train] wrote {res["model"]} ({res["windows"]} windows from {res["bags"]} bags; '
          f'curve {res["curve"]})')
    return 0


def _cmd_train_av_heatmap(args: argparse.Namespace) -> int:
    from av_perception.train.av_heatmap import train
    res = train(args.bags, args.out, extra_positives=not args.no_extra_positives,
                epochs=args.epochs, jobs=args.jobs, seed=args.seed, in_view_deg=args.in_view)
    print(f'[train] wrote {res["model"]} ({res["samples"]} samples from {res["bags"]} bags, '
          f'{res["seconds"]} s; curve {res["curve"]})')
    return 0


def _cmd_eval_direction(args: argparse.Namespace) -> int:
    from av_perception.doa.evaluate import score
    s = score(args.bags, args.array, args.method, model=args.model, namespace=args.namespace)
    summary = s.summary()
    print(f'direction {args.array} {args.method}: ' + ', '.join(f'{k} {v}'
                                                               for k, v in summary.items()))
    return 0


def _cmd_eval_av_heatmap(args: argparse.Namespace) -> int:
    from av_perception.avl.evaluate import print_summary, score
    s = score(args.bags, model=args.model, namespace=args.namespace)
    print(f'av-heatmap: {len(s.cious["model"])} scored images (sounding object in view) of '
          f'{s.samples}; {s.silent} silent')
    for method in ('model', 'center_prior'):
        print_summary(method, s.summary(method))
    return 0


def _cmd_check_array(args: argparse.Namespace) -> int:
    import math

    from av_perception.arrays import load_array
    from av_perception.doa.check_array import check, load_recording
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='av-perception',
        description='Perception with sound for ROS 2 robots: run the nodes, record bags, '
                    'check the environment.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('run', help='start the nodes a ROS 2 params file names, in one process',
                       description='Start every node named in a ROS 2 params YAML (its top-level '
                                   'keys) on one executor, until Ctrl-C or SIGTERM.')
    p.add_argument('params', type=Path, help='params file, e.g. config/sim.yaml')
    p.add_argument('--ros-args', nargs=argparse.REMAINDER, default=[], dest='ros_args',
                   help='further ROS arguments (remappings, log levels)')
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser('record', help='record topics to an MCAP bag until Ctrl-C or SIGTERM',
                       description='Record topics (any message type installed here) to a ROS 2 '
                                   'MCAP bag; the bag is finalized on Ctrl-C or SIGTERM.')
    p.add_argument('topics', nargs='*', help='topics to record (default: all)')
    p.add_argument('-o', '--output', type=Path, help='bag folder to create')
    p.add_argument('--exclude', nargs='*', default=[], help='topics never to record')
    p.add_argument('--ros-args', nargs=argparse.REMAINDER, default=[], dest='ros_args',
                   help='further ROS arguments')
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser('simulate', help='render simulated scenes into MCAP bags',
                       description='Render procedurally generated rooms (images, depth, echoes, '
                                   'array and binaural audio, ground truth) into one MCAP bag '
                                   'per scene, in parallel; deterministic for a given seed.')
    p.add_argument('--scenes', type=int, required=True, help='number of scenes (rooms)')
    p.add_argument('--out', type=Path, required=True, help='output folder (one bag per scene)')
    p.add_argument('--seed', type=int, default=0, help='seed of the scene generator')
    p.add_argument('--split', choices=['train', 'test'], default='train',
                   help='train rooms, or the held-out test rooms')
    p.add_argument('--first', type=int, default=0, help='index of the first scene')
    p.add_argument('--poses', type=int, default=8, help='samples (robot poses) per scene')
    p.add_argument('--snr-db', type=float, nargs=2, default=[10.0, 30.0], metavar=('LO', 'HI'),
                   help='range of the microphones\' signal-to-noise ratio [dB]')
    p.add_argument('--teacher', action='store_true',
                   help='also record the 16-mic virtual teacher array (audio/teacher) that the '
                        'learned direction models distil from')
    p.add_argument('--jobs', type=int, default=0, help='worker processes (0: one per core)')
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser('train', help='train a model from bags',
                       description='Train a model from bags (PyTorch, CPU or GPU).')
    tsub = p.add_subparsers(dest='model_kind', required=True, metavar='MODEL')
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
    t.set_defaults(func=_cmd_train_direction)
    t = tsub.add_parser('av-heatmap', help='audio-visual localization (where in the image the '
                        'sound comes from), self-supervised contrastive')
    t.add_argument('--bags', type=Path, required=True, action='append',
                   help='folder of bags with camera/image_raw and audio/raw (repeatable)')
    t.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    t.add_argument('--no-extra-positives', action='store_true',
                   help='ablation: one view per sample, its own pair the only positive')
    t.add_argument('--in-view', type=float, metavar='DEG',
                   help='train only on samples the array hears within DEG of the camera axis '
                        '(its own SRP-PHAT direction, no ground truth)')
    t.add_argument('--epochs', type=int, default=25)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--jobs', type=int, default=0, help='feature workers (0: one per core)')
    t.set_defaults(func=_cmd_train_av_heatmap)

    p = sub.add_parser('eval', help='score a method or model on bags with ground truth',
                       description='Score on any bags that carry the inputs and the gt/... '
                                   'topics, whoever made them; prints the benchmark metrics.')
    esub = p.add_subparsers(dest='eval_kind', required=True, metavar='TASK')
    e = esub.add_parser('direction', help='direction of arrival vs gt/sound_direction')
    e.add_argument('--bags', type=Path, required=True)
    e.add_argument('--array', choices=['array', 'binaural'], default='array')
    e.add_argument('--method', choices=['srp', 'normmusic', 'gcc', 'learned'], default='srp')
    e.add_argument('--model', type=Path, help='ONNX model for --method learned (default: the '
                   'shipped one for the array)')
    e.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    e.set_defaults(func=_cmd_eval_direction)
    e = esub.add_parser('av-heatmap', help='audio-visual localization vs gt/source_mask: cIoU, '
                        'AUC, retrieval, beside the centre prior')
    e.add_argument('--bags', type=Path, required=True,
                   help='bags with camera/image_raw, audio/raw and gt/source_mask')
    e.add_argument('--model', type=Path, help='ONNX model (default: the shipped one)')
    e.add_argument('--namespace', default='', help='robot namespace of the bag topics')
    e.set_defaults(func=_cmd_eval_av_heatmap)

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
