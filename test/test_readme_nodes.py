"""The node reference in docs/nodes.md is what the code declares (it is
generated from the nodes' source and cannot drift), and the node tables of
the README (one line per node) and of docs/nodes.md name every node and
every topic it publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from av_perception import node_docs
from av_perception.nodes import NODES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
NODES_DOC = ROOT / 'docs' / 'nodes.md'


def test_node_reference_is_the_declared_parameters():
    assert node_docs.DOC == NODES_DOC
    section = node_docs.section(NODES_DOC.read_text())
    assert section is not None, 'docs/nodes.md lost its generated node reference'
    assert section == node_docs.render(), (
        'docs/nodes.md node reference is stale: run `python -m av_perception.node_docs --write`')


def test_readme_does_not_carry_the_generated_reference():
    assert node_docs.section(README.read_text()) is None


def test_every_node_is_documented_with_its_parameters():
    text = node_docs.render()
    for name, target in NODES.items():
        assert f'### `{name}`' in text
    params = {p.name for p in node_docs.params_of('av_perception.nodes.sound_direction')}
    assert {'method', 'array', 'window', 'hop', 'num_sources', 'min_confidence'} <= params
    window = next(p for p in node_docs.params_of('av_perception.nodes.sound_direction')
                  if p.name == 'window')
    assert window.default == '0.0' and window.limits == '0.0 – 2.0' and window.read_only


@pytest.mark.parametrize('page', [README, NODES_DOC], ids=['README.md', 'docs/nodes.md'])
def test_node_table_has_every_node_and_its_outputs(page):
    """The page's node table has a row per registered node naming every
    topic the node declares it publishes (PUBLISHES)."""
    from av_perception.nodes import published_topics
    rows = {}
    for line in page.read_text().splitlines():
        if line.startswith('| `') and line.split('`')[1] in NODES:
            rows.setdefault(line.split('`')[1], line)
    for name in NODES:
        assert name in rows, f'{page.name} node table lacks {name}'
        for topic in published_topics(name):
            assert f'`{topic}' in rows[name] or f'`/{topic}' in rows[name], (name, topic)
