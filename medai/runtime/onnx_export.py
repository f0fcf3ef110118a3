"""Exporting a network (a TorchScript file or a torch module) to one self-contained ONNX file.

Exporter (torch 2.13): the TorchScript-based exporter, ``torch.onnx.export(..., dynamo=False)``. It is the only one
that takes a ``torch.jit.ScriptModule`` (``torch.export`` cannot trace scripted code, so the dynamo exporter fails
on deepbet's TorchScript nets), it exports plain MONAI nets (SegResNet, UNet, DenseNet121) with outputs equal to
torch within 4e-5, and it is about five times quicker than the dynamo exporter. For a plain ``nn.Module`` that it
cannot export, the dynamo exporter (``torch.export``) is tried next. Either way the weights are stored inside the
one ``.onnx`` file (no external-data side file) and the file appears at its name complete or not at all.

Instance normalisation is written as plain reductions (:func:`stable_instance_norm`): ONNX Runtime's and OpenVINO's
own kernels sum a whole channel (128^3 = 2 million voxels) in one float32 pass, which left deepbet's localiser
6.8e-4 (ONNX Runtime) and 3.1e-3 (OpenVINO) from torch on Colin27; averaged one axis at a time, both are within
1.4e-5 of torch (torch itself is 1.3e-5 from a float64 run).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

from medai.errors import MedAIError, PathLike

#: ONNX opset written by default: supported by onnxruntime >= 1.14 and OpenVINO >= 2023.
DEFAULT_OPSET = 18

INPUT_NAME, OUTPUT_NAME = "input", "output"


def _load_module(network):
    """A module in eval mode from a TorchScript path or a module."""
    import torch

    if isinstance(network, torch.nn.Module):
        return network.eval()
    path = Path(network)
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError) as error:
        raise MedAIError(f"not a loadable TorchScript model ({str(error).splitlines()[0]})", path) from None


def _dynamic_axes(rank: int, dynamic_spatial: bool) -> dict[str, dict[int, str]]:
    axes = {0: "batch"}
    if dynamic_spatial:
        axes.update({axis: f"spatial{axis - 2}" for axis in range(2, rank)})
    return {INPUT_NAME: axes, OUTPUT_NAME: axes}


def _export_torchscript_based(module, example, target: Path, dynamic_spatial: bool, opset: int) -> None:
    import torch

    with warnings.catch_warnings():
        # deprecation notice of this exporter and instance-norm "training mode" notes (the module is in eval)
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(target), dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_axes=_dynamic_axes(example.dim(), dynamic_spatial))


def _export_dynamo(module, example, target: Path, dynamic_spatial: bool, opset: int) -> None:
    import torch

    dims = {0: torch.export.Dim("batch")}
    if dynamic_spatial:
        dims.update({axis: torch.export.Dim(f"spatial{axis - 2}") for axis in range(2, example.dim())})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=opset, dynamic_shapes=({**dims},),
                                    verbose=False)
        program.save(str(target), external_data=False)


def export_onnx(network: Union[PathLike, "torch.nn.Module"], onnx_path: PathLike, example_shape: Sequence[int],
                dynamic_spatial: bool = True, opset: Optional[int] = None) -> Path:
    """Write ``network`` as ONNX to ``onnx_path`` and return the path.

    ``network``: a TorchScript file or a ``torch.nn.Module``; ``example_shape``: a full (N, C, ...) input shape
    used to trace it. The input is named ``input``, the output ``output``; the batch axis is dynamic, and so are
    the spatial axes when ``dynamic_spatial`` (needed for the sliding window's border patches and for
    whole-image modes on any size). Bad input raises :class:`MedAIError`.
    """
    import torch

    from medai.io.atomic import write_atomically

    module = _load_module(network)
    shape = tuple(int(s) for s in example_shape)
    if len(shape) < 3 or min(shape) < 1:
        raise MedAIError(f"example shape {list(shape)} is not a (N, C, spatial...) shape", onnx_path)
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    opset = opset or DEFAULT_OPSET
    scripted = isinstance(module, torch.jit.ScriptModule)

    def write(target: Path) -> None:
        try:
            _export_torchscript_based(module, example, target, dynamic_spatial, opset)
        except Exception as error:  # the exporter raises many types; report or fall back, never a traceback
            if scripted:
                raise MedAIError(f"could not export to ONNX ({str(error).splitlines()[0]})",
                                 network if not isinstance(network, torch.nn.Module) else onnx_path) from None
            try:
                _export_dynamo(module, example, target, dynamic_spatial, opset)
            except Exception as second:
                raise MedAIError(f"could not export to ONNX ({str(second).splitlines()[0]})", onnx_path) from None

    def write_stable(target: Path) -> None:
        import onnx

        write(target)
        onnx.save(stable_instance_norm(onnx.load(str(target))), str(target))

    return write_atomically(onnx_path, write_stable)


def stable_instance_norm(model):
    """``model`` (an onnx ModelProto, changed in place and returned) with every InstanceNormalization on a tensor
    with two or more spatial axes replaced by its definition: mean and variance (two passes) computed as means
    over one spatial axis at a time, innermost first. Means of equal-sized rows are exact, so the float32
    rounding of each pass stays that of a short row. Consecutive reductions alternate ``keepdims`` because
    OpenVINO merges consecutive reductions that agree on it back into one long one.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in (*inferred.graph.value_info, *inferred.graph.input) if v.type.tensor_type.HasField("shape")}
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph, nodes, constants = model.graph, [], {}

    def constant(name: str, value) -> str:
        if name not in constants:
            graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
            constants[name] = name
        return name

    def reduce_mean(source: str, axis: int, keep: int, out: str) -> None:
        if opset >= 18:
            nodes.append(helper.make_node("ReduceMean", [source, constant(f"medai_axis{axis}", np.array([axis]))],
                                          [out], keepdims=keep))
        else:
            nodes.append(helper.make_node("ReduceMean", [source], [out], axes=[axis], keepdims=keep))

    def channel_mean(source: str, rank: int, prefix: str) -> str:
        """(N, C, 1, ..., 1) mean of ``source`` over its spatial axes, one axis at a time."""
        current, keep = source, 1
        for axis in reversed(range(2, rank)):
            reduce_mean(current, axis, keep, f"{prefix}_over{axis}")
            current, keep = f"{prefix}_over{axis}", 1 - keep
        shape = constant(f"medai_channel_shape{rank}", np.array([0, -1] + [1] * (rank - 2), dtype=np.int64))
        nodes.append(helper.make_node("Reshape", [current, shape], [f"{prefix}_mean"]))
        return f"{prefix}_mean"

    for index, node in enumerate(graph.node):
        rank = ranks.get(node.input[0], 0) if node.input else 0
        if node.op_type != "InstanceNormalization" or rank < 4:
            nodes.append(node)
            continue
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        x, scale, bias = node.input
        p = f"medai_in{index}"
        shape = constant(f"medai_affine_shape{rank}", np.array([1, -1] + [1] * (rank - 2), dtype=np.int64))
        mean = channel_mean(x, rank, f"{p}_x")
        nodes += [helper.make_node("Sub", [x, mean], [f"{p}_d"]),
                  helper.make_node("Mul", [f"{p}_d", f"{p}_d"], [f"{p}_d2"])]
        variance = channel_mean(f"{p}_d2", rank, f"{p}_d2")
        nodes += [helper.make_node("Add", [variance, constant(f"{p}_eps", np.array(epsilon, np.float32))], [f"{p}_ve"]),
                  helper.make_node("Sqrt", [f"{p}_ve"], [f"{p}_sd"]),
                  helper.make_node("Div", [f"{p}_d", f"{p}_sd"], [f"{p}_n"]),
                  helper.make_node("Reshape", [scale, shape], [f"{p}_scale"]),
                  helper.make_node("Reshape", [bias, shape], [f"{p}_bias"]),
                  helper.make_node("Mul", [f"{p}_n", f"{p}_scale"], [f"{p}_ns"]),
                  helper.make_node("Add", [f"{p}_ns", f"{p}_bias"], list(node.output))]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model
