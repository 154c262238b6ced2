"""Graph fingerprints: equal for the same candidate whatever its weights, different otherwise."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from evaluators.export import export_onnx
from evaluators.fingerprint import fingerprint_model, graph_fingerprint
from evaluators.models import build_model
from evaluators.pruning import prune_uniform
from evaluators.quantization import quantize
from spaces.candidate import QUANT_SCHEMES

torch.set_num_threads(1)

CLASSES = 3


def _candidate(
    out_dir: Path, *, backbone: str = "mobilenetv3_small", width: float = 0.5, resolution: int = 32,
    ratio: float = 0.3, seed: int = 0, weights: str = "fresh",
) -> Path:
    """Export one candidate; ``weights`` is how its weights came about.

    ``fresh``: untrained, BatchNorm never updated (so every folded conv bias is zero, as in the
    screening step of a trial); ``settled``: a few train-mode passes; ``trained``: a few
    optimizer steps before pruning and after (as in a real trial).
    """
    torch.manual_seed(seed)
    model = build_model(backbone, width, CLASSES)
    example = torch.zeros(1, 3, resolution, resolution)
    if weights == "settled":
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(8, 3, resolution, resolution))
    if weights == "trained":
        model = _train(model, resolution)
    model = prune_uniform(model, ratio, example)
    if weights == "trained":
        model = _train(model, resolution)
    name = f"{backbone}-{width}-{resolution}-{ratio}-{seed}-{weights}.onnx"
    return export_onnx(model.eval(), out_dir / name, resolution)


def _train(model: torch.nn.Module, resolution: int) -> torch.nn.Module:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        images = torch.randn(8, 3, resolution, resolution)
        loss = torch.nn.functional.cross_entropy(model(images), torch.randint(0, CLASSES, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def _calibration(resolution: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((4, 3, resolution, resolution)) * (1 + seed)).astype(np.float32)
            for _ in range(2)]


def _quantized(src: Path, scheme: str, seed: int = 0) -> Path:
    dst = src.with_name(f"{src.stem}.{scheme}.{seed}.onnx")
    resolution = onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim[2].dim_value
    return quantize(src, dst, scheme, _calibration(resolution, seed))


def _fingerprint(src: Path, scheme: str, seed: int = 0) -> str:
    return graph_fingerprint(_quantized(src, scheme, seed))


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three copies of one candidate: fresh, settled with other seeds, trained."""
    out = tmp_path_factory.mktemp("copies")
    return [
        _candidate(out, seed=0, weights="fresh"),
        _candidate(out, seed=1, weights="settled"),
        _candidate(out, seed=2, weights="trained"),
    ]


@pytest.fixture(scope="module")
def artifacts(copies: list[Path]) -> dict[str, list[Path]]:
    """Each copy under each scheme (int8_static calibrated on other data for each copy)."""
    return {
        scheme: [_quantized(src, scheme, seed) for seed, src in enumerate(copies)]
        for scheme in QUANT_SCHEMES
    }


@pytest.fixture(scope="module")
def per_scheme(artifacts: dict[str, list[Path]]) -> dict[str, list[str]]:
    return {scheme: [graph_fingerprint(p) for p in paths] for scheme, paths in artifacts.items()}


@pytest.mark.parametrize("scheme", QUANT_SCHEMES)
def test_same_candidate_with_other_weights_has_one_fingerprint(per_scheme, scheme) -> None:
    assert len(set(per_scheme[scheme])) == 1


@pytest.mark.parametrize("scheme", QUANT_SCHEMES)
def test_weight_independence_holds_in_the_files_themselves(artifacts, scheme) -> None:
    """Same node and initializer counts too: the files match, not only their canonical forms
    (an untrained model's equal zero biases once got merged by the exporter and optimizer)."""
    graphs = [onnx.load(str(p)).graph for p in artifacts[scheme]]
    assert len({len(g.node) for g in graphs}) == 1
    assert len({len(g.initializer) for g in graphs}) == 1


def test_schemes_have_distinct_fingerprints(per_scheme) -> None:
    assert len({values[0] for values in per_scheme.values()}) == len(QUANT_SCHEMES)


def test_fingerprint_is_a_sha256_hex_digest(per_scheme) -> None:
    value = per_scheme["fp32"][0]
    assert len(value) == 64 and int(value, 16) >= 0


@pytest.mark.parametrize(
    "change", [{"ratio": 0.5}, {"width": 0.75}, {"resolution": 40}, {"backbone": "lcnet"}]
)
def test_other_architecture_resolution_or_ratio_changes_the_fingerprint(per_scheme, tmp_path, change) -> None:
    other = _candidate(tmp_path, **change)
    for scheme in ("fp32", "int8_static"):
        assert _fingerprint(other, scheme) != per_scheme[scheme][0]


@pytest.mark.parametrize("backbone", ["mobileone_s0", "mobilenetv2"])
def test_fresh_and_trained_match_on_other_backbones(tmp_path, backbone) -> None:
    fresh = _candidate(tmp_path, backbone=backbone, width=0.35, seed=0, weights="fresh")
    trained = _candidate(tmp_path, backbone=backbone, width=0.35, seed=1, weights="trained")
    for scheme in ("fp32", "int8_static"):
        assert _fingerprint(fresh, scheme, 0) == _fingerprint(trained, scheme, 1)


# Canonical-form rules, on hand-made graphs.

def _graph(
    *, names: str = "", weight: np.ndarray | None = None, stride: int = 1, shared_bias: bool = False,
    identity: bool = False, shape: tuple[int, ...] = (2, 4),
) -> onnx.ModelProto:
    """Two convolutions of one input, added and reshaped; the keywords vary one aspect each."""
    weight = np.ones((4, 3, 1, 1), np.float32) if weight is None else weight
    reshape_target = numpy_helper.from_array(np.array(shape, np.int64), names + "shape")
    initializers = [numpy_helper.from_array(weight, names + "w"), reshape_target,
                    numpy_helper.from_array(np.zeros(4, np.float32), names + "b1")]
    second_bias = names + "b1"
    if not shared_bias:
        initializers.append(numpy_helper.from_array(np.zeros(4, np.float32), names + "b2"))
        second_bias = names + "b2"
    nodes = []
    first_bias = names + "b1"
    if identity:
        nodes.append(helper.make_node("Identity", [names + "b1"], [names + "alias"]))
        first_bias = names + "alias"
    nodes += [
        helper.make_node(
            "Conv", [names + "x", names + "w", first_bias], [names + "h"], strides=[stride, stride]
        ),
        helper.make_node("Conv", [names + "x", names + "w", second_bias], [names + "k"]),
        helper.make_node("Add", [names + "h", names + "k"], [names + "s"]),
        helper.make_node("Reshape", [names + "s", names + "shape"], [names + "y"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(names + "x", TensorProto.FLOAT, ["n", 3, 1, 2])],
        [helper.make_tensor_value_info(names + "y", TensorProto.FLOAT, ["n", 4])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_names_and_weight_values_do_not_count() -> None:
    base = fingerprint_model(_graph())
    assert fingerprint_model(_graph(names="other_")) == base
    assert fingerprint_model(_graph(weight=np.full((4, 3, 1, 1), 7.0, np.float32))) == base


def test_sharing_an_initializer_or_aliasing_it_does_not_count() -> None:
    base = fingerprint_model(_graph())
    assert fingerprint_model(_graph(shared_bias=True)) == base
    assert fingerprint_model(_graph(identity=True)) == base


@pytest.mark.parametrize(
    "variant",
    [
        {"weight": np.ones((4, 3, 3, 3), np.float32)},
        {"weight": np.ones((4, 3, 1, 1), np.float16)},
        {"stride": 2},
        {"shape": (4, 2)},
    ],
    ids=["weight-shape", "weight-dtype", "attribute", "int64-constant"],
)
def test_shapes_dtypes_attributes_and_int64_constants_count(variant) -> None:
    assert fingerprint_model(_graph(**variant)) != fingerprint_model(_graph())


def test_opset_counts() -> None:
    model = _graph()
    other = _graph()
    other.opset_import[0].version = 18
    assert fingerprint_model(model) != fingerprint_model(other)


def test_every_pair_of_distinct_hand_made_graphs_differs() -> None:
    variants = [
        _graph(), _graph(stride=2), _graph(shape=(4, 2)), _graph(weight=np.ones((4, 3, 3, 3), np.float32)),
    ]
    for first, second in itertools.combinations(variants, 2):
        assert fingerprint_model(first) != fingerprint_model(second)
