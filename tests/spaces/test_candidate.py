"""Candidate and space contracts: round-trips, validation, registry behaviour."""

from __future__ import annotations

import optuna
import pytest

from spaces import FAIRNESS_METHODS, Candidate, CandidateError, LossMix, UnknownSpaceError, get_space, list_spaces
from spaces.esfair import BACKBONES, RESOLUTIONS


def test_candidate_round_trips_through_params() -> None:
    cand = Candidate(backbone="mobileone_s0", width=0.75, resolution=128,
                     loss=LossMix(ce=1.0, arcface=0.5, triplet=0.5, kd=1.0, label_smoothing=0.1),
                     prune_ratio=0.3, quant="int8_static", ema=True, pretrained="/tmp/w.pth")
    assert Candidate.from_params(cand.to_params()) == cand


def test_every_sampled_esfair_candidate_round_trips_through_optuna_params() -> None:
    space = get_space("esfair")
    study = optuna.create_study(directions=space.task.directions, sampler=optuna.samplers.RandomSampler(seed=1))
    seen_backbones, seen_methods = set(), set()
    for _ in range(60):
        trial = study.ask()
        cand = space.sample(trial)
        assert Candidate.from_params(trial.params) == cand
        assert cand.resolution in RESOLUTIONS and 0 <= cand.prune_ratio <= 0.7
        seen_backbones.add(cand.backbone)
        seen_methods.add(cand.fairness_method)
        study.tell(trial, [0.5, 0.1, 1.0])
    assert seen_backbones == set(BACKBONES)
    assert seen_methods == set(FAIRNESS_METHODS)


@pytest.mark.parametrize("kwargs, problem", [
    ({"width": 0}, "width"),
    ({"resolution": 30}, "resolution"),
    ({"prune_ratio": 1.0}, "prune_ratio"),
    ({"quant": ""}, "quant"),
])
def test_invalid_candidates_name_the_field(kwargs: dict, problem: str) -> None:
    base = {"backbone": "lcnet", "width": 1.0, "resolution": 64}
    with pytest.raises(CandidateError, match=problem):
        Candidate(**{**base, **kwargs})


def test_loss_mix_needs_a_classification_signal() -> None:
    with pytest.raises(CandidateError, match="ce > 0 or arcface > 0"):
        LossMix(ce=0.0, arcface=0.0, kd=1.0)


def test_from_params_rejects_unknown_keys() -> None:
    with pytest.raises(CandidateError, match="colour"):
        Candidate.from_params({"backbone": "lcnet", "width": 1.0, "resolution": 64, "colour": "red"})


def test_unknown_quantization_scheme_fails_fast_listing_the_known_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from evaluators.quantization import quantize
    from spaces import UnknownNameError

    with pytest.raises(UnknownNameError, match="int4.*known quantization schemes: fp16, fp32"):
        quantize(tmp_path / "missing.onnx", tmp_path / "out.onnx", "int4")


def test_unknown_space_lists_known_ones() -> None:
    with pytest.raises(UnknownSpaceError) as info:
        get_space("nope")
    assert "esfair" in str(info.value) and "nope" in str(info.value)
    assert "esfair" in list_spaces()


def test_baselines_are_valid_esfair_candidates() -> None:
    baselines = get_space("esfair").baselines()
    assert {"esfair-sample-mobilenetv2", "esfair-winner-mobileone-s0", "mobilenetv3-small-fp32"} <= set(baselines)
    winner = baselines["esfair-winner-mobileone-s0"]
    assert winner.resolution == 128 and winner.ema and winner.loss.arcface > 0 and winner.loss.triplet > 0
    assert winner.loss.kd > 0


def test_warm_start_is_a_dimension_only_where_weights_exist() -> None:
    from spaces import SampleContext

    space = get_space("esfair")
    context = SampleContext(warm_starts=frozenset({("mobilenetv3_small", 0.75)}))
    study = optuna.create_study(directions=space.task.directions, sampler=optuna.samplers.RandomSampler(seed=3))
    offered = set()
    for _ in range(120):
        trial = study.ask()
        candidate = space.sample(trial, context)
        has = (candidate.backbone, candidate.width) == ("mobilenetv3_small", 0.75)
        assert ("warm_start" in trial.params) == has
        if has:
            offered.add(candidate.warm_start)
        else:
            assert not candidate.warm_start
        assert Candidate.from_params(trial.params) == candidate
        study.tell(trial, [0.5, 0.1, 1.0])
    assert offered == {False, True}
