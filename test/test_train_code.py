"""The training code keeps the library's standard: settings as config
dataclasses whose defaults the command line shares, one epoch loop and one
ONNX export for every model, typed functions, files a reader can hold."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parent.parent / 'av_perception' / 'train'
#: flags whose name differs from their config field
RENAMED = {'in_view': 'in_view_deg'}


def _train_parsers() -> dict[str, argparse.ArgumentParser]:
    from av_perception.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices['train']._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def _configs() -> dict[str, type]:
    from av_perception.train.av_heatmap import AvHeatmapConfig
    from av_perception.train.direction import DirectionConfig
    from av_perception.train.echo_depth import StudentConfig, TeacherConfig
    from av_perception.train.rotation import RotationConfig
    return {'direction': DirectionConfig, 'echo-teacher': TeacherConfig,
            'echo-depth': StudentConfig, 'rotation': RotationConfig,
            'av-heatmap': AvHeatmapConfig}


@pytest.mark.parametrize('command', ['direction', 'echo-teacher', 'echo-depth', 'rotation',
                                     'av-heatmap'])
def test_train_flags_default_to_their_config_fields(command):
    """A `train <command>` flag that sets a config field defaults to that
    field's default (or to None: the config's default applies)."""
    cfg = _configs()[command]
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    shared = 0
    for action in _train_parsers()[command]._actions:
        name = RENAMED.get(action.dest, action.dest)
        if name not in fields:
            continue
        shared += 1
        f = fields[name]
        want = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert action.default in (None, want), (command, name, action.default, want)
    assert shared >= 3, command


def test_configs_refuse_impossible_settings():
    from av_perception.errors import ConfigError
    for cfg in _configs().values():
        with pytest.raises(ConfigError):
            cfg(epochs=0)


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_every_training_function_is_typed():
    missing = []
    for path in sorted(TRAIN.glob('*.py')):
        for fn in _functions(ast.parse(path.read_text())):
            args = [a for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ('self', 'cls')]
            if fn.returns is None or any(a.annotation is None for a in args):
                missing.append(f'{path.name}:{fn.lineno} {fn.name}')
    assert not missing, missing


def test_one_epoch_loop_and_one_export():
    """Checkpoints are written by the shared epoch loop and ONNX files by the
    shared export only; no training module outgrows a reader (~400 lines)."""
    for path in sorted(TRAIN.glob('*.py')):
        text = path.read_text()
        if path.name != 'loop.py':
            assert 'ck.save(' not in text and 'range(start' not in text, path.name
        if path.name != 'export.py':
            assert 'torch.onnx.export' not in text and 'metadata_props' not in text, path.name
        assert len(text.splitlines()) <= 420, path.name


#: (command, field, a value each config must refuse)
REFUSED = [('direction', 'batch', 0), ('direction', 'lr', 0.0), ('direction', 'jobs', -1),
           ('echo-teacher', 'width', 0), ('echo-teacher', 'max_depth', 0.0),
           ('echo-teacher', 'tolerance', -1.0), ('echo-depth', 'sam_blocks', 0),
           ('echo-depth', 'token_dim', 0), ('echo-depth', 'max_steps', -1),
           ('echo-depth', 'margin', -1.0), ('echo-depth', 'lr', 0.0),
           ('rotation', 'binaural_epochs', 0), ('rotation', 'batch', 1),
           ('av-heatmap', 'batch', 1), ('av-heatmap', 'warmup', -1), ('av-heatmap', 'threads', 0)]


@pytest.mark.parametrize('command,field,value', REFUSED)
def test_each_config_refuses_its_impossible_values(command, field, value):
    from av_perception.errors import ConfigError
    with pytest.raises(ConfigError):
        _configs()[command](**{field: value})


def test_motion_config_refuses_impossible_values():
    from av_perception.errors import ConfigError
    from av_perception.train.motion import MotionConfig
    for field, value in (('batch', 1), ('draws', 0), ('labelled', 0), ('lr', 0.0)):
        with pytest.raises(ConfigError):
            MotionConfig(**{field: value})
