"""The README's node reference is what the code declares (it is generated
from the nodes' source and cannot drift)."""

from __future__ import annotations

from pathlib import Path

from av_perception import node_docs
from av_perception.nodes import NODES

README = Path(__file__).resolve().parent.parent / 'README.md'


def test_readme_parameters_are_the_declared_ones():
    section = node_docs.readme_section(README.read_text())
    assert section is not None, 'README.md lost its generated node reference'
    assert section == node_docs.render(), (
        'README.md node reference is stale: run `python -m av_perception.node_docs --write`')


def test_every_node_is_documented_with_its_parameters():
    text = node_docs.render()
    for name, target in NODES.items():
        assert f'#### `{name}`' in text
    params = {p.name for p in node_docs.params_of('av_perception.nodes.sound_direction')}
    assert {'method', 'array', 'window', 'hop', 'num_sources', 'min_confidence'} <= params
    window = next(p for p in node_docs.params_of('av_perception.nodes.sound_direction')
                  if p.name == 'window')
    assert window.default == '0.0' and window.limits == '0.0 – 2.0' and window.read_only


def test_readme_topic_table_has_every_node_and_its_outputs():
    """The README's node table has a row per registered node naming every
    topic the node declares it publishes (PUBLISHES)."""
    from av_perception.nodes import published_topics
    rows = {}
    for line in README.read_text().splitlines():
        if line.startswith('| `'):
            rows[line.split('`')[1]] = line
    for name in NODES:
        assert name in rows, f'README node table lacks {name}'
        for topic in published_topics(name):
            assert f'`{topic}' in rows[name] or f'`/{topic}' in rows[name], (name, topic)
