"""ONNX export of every trained model, one way (opset 17, TorchScript
exporter, a dynamic batch axis on every input and output) with the model's
input contract and provenance in the file's metadata, where the package's
ONNX Runtime wrapper (``av_perception.inference``) reads them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OPSET = 17


def add_metadata(path: Path, meta: dict) -> None:
    """Append ``meta`` (values as strings) to an ONNX file's metadata_props."""
    import onnx
    m = onnx.load(str(path))
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.save(m, str(path))


def export_onnx(module: torch.nn.Module, args: tuple, path: str | Path, inputs: list[str],
                outputs: list[str], meta: dict) -> Path:
    """Export ``module`` (in eval mode) traced on the example ``args`` to
    ``path`` (its folder created) with ``meta`` in its metadata; every
    input and output has a dynamic batch axis (dimension 0). Returns the path."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                      dynamic_axes={n: {0: 'batch'} for n in [*inputs, *outputs]},
                      opset_version=OPSET, dynamo=False)
    add_metadata(path, meta)
    return path
