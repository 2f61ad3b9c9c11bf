"""The README's status table is what bench/status.py renders from
bench/results/*.json: every figure, baseline and status in it comes from a
benchmark's JSON file, not from a hand-written number."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _status():
    spec = importlib.util.spec_from_file_location('bench_status', ROOT / 'bench' / 'status.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


status = _status()


def test_readme_status_table_is_the_rendered_one():
    section = status.section((ROOT / 'README.md').read_text())
    assert section is not None, 'README.md lost its status table markers'
    assert section == status.render(), (
        'README.md status table is stale: run `python bench/status.py --write`')


def test_every_row_reads_an_existing_results_file():
    for row in status.ROWS:
        assert (status.RESULTS / f'{row.bench}.json').is_file(), row.bench


def test_a_missing_key_names_the_file_and_the_key(tmp_path):
    for f in status.RESULTS.glob('*.json'):
        shutil.copy(f, tmp_path / f.name)
    doc = json.loads((tmp_path / 'direction.json').read_text())
    del doc['binaural']['learned']
    (tmp_path / 'direction.json').write_text(json.dumps(doc))
    with pytest.raises(KeyError, match=r"bench/results/direction\.json has no key "
                                       r"'binaural\.learned\.median_deg'"):
        status.render(tmp_path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(KeyError, match=r'bench/results/direction\.json is missing'):
        status.render(tmp_path)


def test_status_follows_the_figures(tmp_path):
    """A figure that crosses its target flips its row's status."""
    for f in status.RESULTS.glob('*.json'):
        shutil.copy(f, tmp_path / f.name)
    doc = json.loads((tmp_path / 'echo_depth.json').read_text())
    doc['student_sam']['delta1'] = 0.85
    (tmp_path / 'echo_depth.json').write_text(json.dumps(doc))
    row = next(line for line in status.render(tmp_path).splitlines()
               if line.startswith('| depth from echoes (SAM student)'))
    assert 'δ<1.25 0.850' in row and row.endswith('| met |')
