"""Per fairness method: accuracy, minority accuracy, SPD and worst-group accuracy of one fixed model.

Trains one fixed architecture on the embedded data set with every ``fairness_method`` and several
seeds, with the search's own components wired as its pipeline wires them for an unpruned candidate
without KD (``iterate_batches`` with the method's sampler, ``train`` with its weighting, the same
seeds), exports each to an fp32 ONNX artifact and evaluates THE ARTIFACT with onnxruntime on the
validation and the test split. Each figure is the median over seeds with a 95 % group-stratified bootstrap interval (the
evaluation samples are resampled within each group, the same resamples for every model, and the
median over seeds is taken in every resample); the difference to ``none`` is paired by seed and by
resample. Nothing is tuned: the recipe is fixed before the run and the test split is only reported.

    python bench/fairness_methods.py [--epochs 8 --seeds 0 1 2 --threads 1]   # full: 4 methods x 3 seeds
    python bench/fairness_methods.py --quick                                  # CI size: tiny data, 1 seed, 1 epoch

Writes ``<out>/fairness_methods.{md,json}`` (``fairness_methods_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common import format_table
from evaluators.data import ImageDataset, iterate_batches, load_dataset
from evaluators.evaluate import predict_onnx
from evaluators.fairness import GroupDRO, fairness_training
from evaluators.intervals import group_figures, minority_index, percentile_interval, resample_group_correct
from evaluators.metrics import classification_figures
from evaluators.pipeline import write_artifact
from spaces import FAIRNESS_METHODS, Candidate

FIGURES = ("accuracy", "minority_accuracy", "spd", "worst_group_accuracy")
SPLITS = ("val", "test")
QUICK_COUNTS = {"train": 96, "val": 48, "test": 48}


@dataclass(frozen=True)
class Config:
    """The fixed recipe and the bench's size."""

    backbone: str = "mobilenetv3_small"
    width: float = 0.75
    resolution: int = 64
    epochs: int = 8
    lr: float = 3e-3
    batch_size: int = 32
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = FAIRNESS_METHODS
    n_resamples: int = 1000
    threads: int = 1
    quick: bool = False

    def candidate(self, method: str) -> Candidate:
        """The fixed architecture and recipe, trained with ``method``."""
        return Candidate(backbone=self.backbone, width=self.width, resolution=self.resolution, epochs=self.epochs,
                         lr=self.lr, batch_size=self.batch_size, quant="fp32", fairness_method=method)


@dataclass
class Run:
    """One trained model: its method, seed, training seconds, predictions per split, Group DRO's weights."""

    method: str
    seed: int
    train_s: float
    predictions: dict[str, np.ndarray]
    group_weights: list[float] | None = None


def train_and_predict(cfg: Config, method: str, seed: int, dataset: ImageDataset, work: Path) -> Run:
    """Train ``cfg``'s candidate with ``method`` and ``seed``; predictions of its ONNX artifact.

    Seeds as the search's pipeline uses them with ``--seed seed``: the initial weights, the
    shuffle or sampler of epoch ``e`` (``seed * 1000 + e``) and the training loop.
    """
    import torch

    from evaluators.models import build_model, features_and_logits
    from evaluators.training import train

    candidate = cfg.candidate(method)
    split = dataset.splits["train"]
    fair = fairness_training(method, split.labels, split.groups, num_groups=len(dataset.group_names),
                             num_classes=dataset.num_classes)

    def batches(epoch: int):  # type: ignore[no-untyped-def]
        return iterate_batches(split, cfg.resolution, cfg.batch_size, shuffle=True, augment=True,
                               seed=seed * 1000 + epoch, sampler=fair.sampler)

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(cfg.backbone, cfg.width, dataset.num_classes)
    result = train(model, batches, loss_mix=candidate.loss, epochs=cfg.epochs, lr=cfg.lr,
                   steps_per_epoch=math.ceil(len(split) / cfg.batch_size), features_and_logits=features_and_logits,
                   seed=seed, group_weighting=fair.weighting)
    train_s = time.perf_counter() - started
    artifact = write_artifact(result.model.cpu().eval(), candidate, work / f"{method}-seed{seed}", calibration=[])
    predictions = {name: predict_onnx(artifact, dataset.splits[name].arrays(cfg.resolution), threads=cfg.threads)
                   for name in SPLITS}
    weights = fair.weighting.weights.tolist() if isinstance(fair.weighting, GroupDRO) else None
    return Run(method, seed, train_s, predictions, weights)


def figures_by_model(correct_counts: np.ndarray, group_sizes: np.ndarray, minority: int) -> dict[str, np.ndarray]:
    """The bench's four figures for every model of ``correct_counts`` (``(..., K, G)`` -> ``(..., K)``)."""
    figures = group_figures(correct_counts, group_sizes, minority)
    present = list(np.flatnonzero(group_sizes))
    return {
        "accuracy": figures["accuracy"],
        "minority_accuracy": figures["per_group_accuracy"][..., present.index(minority)],
        "spd": figures["spd"],
        "worst_group_accuracy": figures["worst_group_accuracy"],
    }


def summarise_split(
    runs: Sequence[Run], cfg: Config, dataset: ImageDataset, split: str, minority_name: str,
) -> dict[str, dict[str, Any]]:
    """Per method and figure: median over seeds with its interval, per-seed values, paired difference to none."""
    data = dataset.splits[split]
    by_key = {(r.method, r.seed): r for r in runs}
    models = [(m, s) for m in cfg.methods for s in cfg.seeds]
    correct = np.stack([by_key[key].predictions[split] == data.labels for key in models])
    resamples = resample_group_correct(correct, data.groups, num_groups=len(dataset.group_names),
                                       n_resamples=cfg.n_resamples, seed=0)
    minority = minority_index(resamples.group_sizes, dataset.group_names.index(minority_name))
    shape = (len(cfg.methods), len(cfg.seeds))
    point = {k: v.reshape(shape) for k, v in figures_by_model(resamples.point, resamples.group_sizes, minority).items()}
    samples = {k: v.reshape((cfg.n_resamples, *shape))
               for k, v in figures_by_model(resamples.resampled, resamples.group_sizes, minority).items()}
    base = cfg.methods.index("none") if "none" in cfg.methods else None
    out: dict[str, dict[str, Any]] = {}
    for i, method in enumerate(cfg.methods):
        row: dict[str, Any] = {}
        for name in FIGURES:
            row[name] = percentile_interval(float(np.median(point[name][i])),
                                            np.median(samples[name][:, i], axis=1)).to_dict()
            row[name]["seeds"] = [float(v) for v in point[name][i]]
            if base is not None and i != base:
                diff_point = np.median(point[name][i] - point[name][base])
                diff_samples = np.median(samples[name][:, i] - samples[name][:, base], axis=1)
                row[f"{name}_vs_none"] = percentile_interval(float(diff_point), diff_samples).to_dict()
        out[method] = row
    return out


def cell(figure: dict[str, float], signed: bool = False) -> str:
    """``0.812 [0.780, 0.841]``, signed for differences."""
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(figure['point'])} [{fmt.format(figure['low'])}, {fmt.format(figure['high'])}]"


def markdown(summary: dict[str, dict[str, dict[str, Any]]], cfg: Config) -> str:
    """One table per split: figures, then paired differences to ``none``."""
    labels = {"accuracy": "acc", "minority_accuracy": "minority acc", "spd": "SPD",
              "worst_group_accuracy": "worst-group acc"}
    sections = []
    for split, rows in summary.items():
        header = ["method", *labels.values()]
        table = [[m, *(cell(rows[m][f]) for f in FIGURES)] for m in cfg.methods]
        diffs = [[m, *(cell(rows[m][f"{f}_vs_none"], signed=True) for f in FIGURES)]
                 for m in cfg.methods if f"{FIGURES[0]}_vs_none" in rows[m]]
        text = (f"### {split} split: median over {len(cfg.seeds)} seed(s) [95 % group-stratified bootstrap]\n\n"
                + format_table(header, table))
        if diffs:
            text += ("\n\nPaired difference to `none` (same seed, same resamples; SPD: lower is fairer)\n\n"
                     + format_table(["method", *(f"Δ {v}" for v in labels.values())], diffs))
        sections.append(text)
    return "\n\n".join(sections)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default=Config.backbone)
    p.add_argument("--width", type=float, default=Config.width)
    p.add_argument("--resolution", type=int, default=Config.resolution)
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--lr", type=float, default=Config.lr)
    p.add_argument("--batch-size", type=int, default=Config.batch_size)
    p.add_argument("--seeds", type=int, nargs="+", default=list(Config.seeds))
    p.add_argument("--methods", nargs="+", default=list(FAIRNESS_METHODS), choices=FAIRNESS_METHODS)
    p.add_argument("--resamples", type=int, default=Config.n_resamples, help="bootstrap resamples (default 1000)")
    p.add_argument("--threads", type=int, default=Config.threads, help="torch and onnxruntime threads (default 1)")
    p.add_argument("--data-cache", type=Path, default=Path("runs/data"), help="embedded data cache (default runs/data)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default runs/bench)")
    p.add_argument("--quick", action="store_true", help="CI size: 192 tiny images, 1 seed, 1 epoch")
    args = p.parse_args(argv)
    cfg = Config(backbone=args.backbone, width=args.width, resolution=args.resolution, epochs=args.epochs, lr=args.lr,
                 batch_size=args.batch_size, seeds=tuple(args.seeds), methods=tuple(args.methods),
                 n_resamples=args.resamples, threads=args.threads, quick=args.quick)
    if args.quick:
        cfg = Config(backbone=cfg.backbone, width=0.35, resolution=32, epochs=1, batch_size=16, seeds=(0,),
                     methods=cfg.methods, n_resamples=200, threads=cfg.threads, quick=True)
    return cfg, args


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    import torch

    torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    if cfg.quick:
        dataset = load_dataset("embedded:esfair", cache_root=args.data_cache, embedded_counts=QUICK_COUNTS,
                               embedded_size=64)
    else:
        dataset = load_dataset("embedded:esfair", cache_root=args.data_cache)
    minority = dataset.smallest_group("train")
    print(f"{cfg.candidate('none').describe()}, {cfg.epochs} epoch(s), lr {cfg.lr:g}, batch {cfg.batch_size}; "
          f"methods {', '.join(cfg.methods)}; seeds {', '.join(map(str, cfg.seeds))}; {cfg.threads} thread(s)\n"
          f"{dataset.describe()}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in cfg.seeds:
            for method in cfg.methods:
                run = train_and_predict(cfg, method, seed, dataset, Path(tmp))
                runs.append(run)
                val = classification_figures(dataset.splits["val"].labels, run.predictions["val"],
                                             dataset.splits["val"].groups, class_names=dataset.class_names,
                                             group_names=dataset.group_names, minority_group=minority)
                print(f"  {method:<16} seed {seed}: trained in {run.train_s:5.1f} s; val acc {val.accuracy:.3f}, "
                      f"{minority} {val.per_group_accuracy[minority]:.3f}, SPD {val.fairness.spd:.3f}", flush=True)
    summary = {split: summarise_split(runs, cfg, dataset, split, minority) for split in SPLITS}
    wall = time.perf_counter() - started
    text = (f"{cfg.candidate('none').describe()}, {cfg.epochs} epoch(s), seeds {', '.join(map(str, cfg.seeds))}; "
            f"minority group `{minority}`; ONNX artifacts evaluated with onnxruntime; {wall:.0f} s wall-clock\n\n"
            + markdown(summary, cfg))
    print(f"\n{text}\n")
    name = "fairness_methods_quick" if cfg.quick else "fairness_methods"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.md").write_text(text + "\n")
    (args.out / f"{name}.json").write_text(json.dumps({
        "config": asdict(cfg), "minority_group": minority, "wall_s": wall, "python": platform.python_version(),
        "train_s": {f"{r.method}/seed{r.seed}": r.train_s for r in runs},
        "median_train_s": statistics.median(r.train_s for r in runs), "summary": summary,
        "groupdro_final_weights": {f"seed{r.seed}": dict(zip(dataset.group_names, r.group_weights))
                                   for r in runs if r.group_weights is not None},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
