"""Per quantization scheme: artifact size, latency and accuracy change against fp32, same candidate.

Trains one candidate once on the embedded data set, then exports the SAME trained weights with
every scheme and measures each artifact with the local backend and on the validation split.

    python bench/quant_schemes.py [--backbone mobilenetv3_small --width 1.0 --resolution 128 --epochs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from evaluators.contracts import LatencySettings
from evaluators.data import load_dataset
from evaluators.evaluate import evaluate_artifact
from evaluators.latency.local import LocalLatencyBackend
from evaluators.pipeline import TrialContext, calibration_batches, train_candidate, write_artifact
from evaluators.stages import StageClock
from spaces import QUANT_SCHEMES, Candidate, get_space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="mobilenetv3_small")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data", default="embedded:esfair")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(2)
    dataset = load_dataset(args.data, cache_root=args.out / "data")
    backend = LocalLatencyBackend()
    settings = LatencySettings(threads=args.threads, min_time_s=1.0, min_repeats=50)
    ctx = TrialContext(dataset=dataset, task=get_space("esfair").task, latency_backend=backend,
                       latency_settings=settings, latency_cache=None)
    candidate = Candidate(backbone=args.backbone, width=args.width, resolution=args.resolution,
                          epochs=args.epochs)
    clock = StageClock()
    model = train_candidate(candidate, ctx, clock)
    print(f"trained {candidate.describe()} in {clock.total():.0f} s; latency on {backend._device}, "
          f"{args.threads} thread(s)")
    calibration = calibration_batches(dataset, candidate.resolution, 64, 0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in QUANT_SCHEMES:
            cand = dataclasses.replace(candidate, quant=scheme)
            artifact = write_artifact(model, cand, Path(tmp) / scheme, calibration)
            latency = backend.measure(artifact, (1, 3, cand.resolution, cand.resolution), settings)
            figures = evaluate_artifact(artifact, dataset, "val", cand.resolution, minority_group=None)
            rows.append((scheme, artifact.stat().st_size / 1e6, latency.median_ms, latency.p90_ms,
                         figures.accuracy, figures.fairness.spd))
    base = rows[0]
    print(f"{'scheme':<13} {'MB':>6} {'size':>6} {'med_ms':>7} {'p90_ms':>7} {'speed':>6} {'val_acc':>7} "
          f"{'d_acc':>7} {'SPD':>6}")
    for scheme, mb, med, p90, acc, spd in rows:
        print(f"{scheme:<13} {mb:>6.2f} {mb / base[1]:>6.2f} {med:>7.3f} {p90:>7.3f} {base[2] / med:>6.2f} "
              f"{acc:>7.3f} {acc - base[4]:>+7.3f} {spd:>6.3f}")


if __name__ == "__main__":
    main()
