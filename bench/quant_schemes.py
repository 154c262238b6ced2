"""Per quantization scheme: artifact size, latency and accuracy change against fp32, same trained weights.

    python bench/quant_schemes.py [--backbone mobilenetv3_small --width 1.0 --resolution 128 --epochs 3] [--quick]

Trains one candidate once through the search's pipeline (``evaluators.pipeline.run_rung``: CE,
fp32, no pruning, on the embedded data set), loads its rung checkpoint, and exports THE SAME
trained weights with every scheme (``write_artifact``: static int8 calibrated on 64 training
images). Each artifact is measured as the search measures latency (local backend, ``--threads``
onnxruntime threads, rounds until the median's 95 % CI is within +-5 %) and evaluated as the
search evaluates it (``evaluate_artifact`` on the validation split at batch 1). Speed and size are
ratios to fp32 taken side by side in this run.

``--quick``: 48/24/24 images at 64 px, 64 px input, 1 epoch. Writes ``<out>/quant_schemes[_quick].{md,json}``.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import bench_parser, embedded_data, format_table, outputs, pipeline_context, write_outputs

QUICK_COUNTS = {"train": 48, "val": 24, "test": 24}


def trained_model(candidate: Any, ctx: Any, work: Path) -> Any:
    """Train ``candidate`` in one rung of the pipeline and return the model of its checkpoint."""
    import torch

    from evaluators.models import build_model
    from evaluators.pipeline import RungJob, run_rung

    outcome = run_rung(candidate, ctx, work / "trained",
                       RungJob(rung=0, epochs=candidate.epochs, final=True, screen=False))
    model = build_model(candidate.backbone, candidate.width, ctx.num_classes)
    model.load_state_dict(torch.load(outcome.checkpoint.path, map_location="cpu", weights_only=True)["model"])
    print(f"trained {candidate.describe()} in {sum(outcome.stage_seconds.values()):.0f} s", flush=True)
    return model.eval()


def scheme_rows(model: Any, candidate: Any, ctx: Any, work: Path) -> list[dict[str, Any]]:
    """Size, latency and validation figures of the model exported with every scheme."""
    from evaluators.evaluate import evaluate_artifact
    from evaluators.pipeline import calibration_batches, input_shape, write_artifact
    from spaces import QUANT_SCHEMES

    calibration = calibration_batches(ctx.dataset, candidate.resolution, 64, 0)
    rows = []
    for scheme in QUANT_SCHEMES:
        cand = dataclasses.replace(candidate, quant=scheme)
        artifact = write_artifact(model, cand, work / scheme, calibration)
        latency = ctx.latency_backend.measure(artifact, input_shape(cand), ctx.latency_settings)
        figures = evaluate_artifact(artifact, ctx.dataset, "val", cand.resolution, minority_group=None).figures
        rows.append({"scheme": scheme, "mb": artifact.stat().st_size / 1e6, "median_ms": latency.median_ms,
                     "p90_ms": latency.p90_ms, "ci_half_width": latency.ci_half_width, "rounds": latency.rounds,
                     "accuracy": figures.accuracy, "spd": figures.fairness.spd if figures.fairness else None})
        print(f"  {scheme:<13} {rows[-1]['mb']:.2f} MB, {latency.median_ms:.3f} ms, acc {figures.accuracy:.3f}",
              flush=True)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The schemes against fp32 (the first row)."""
    base = rows[0]
    return format_table(
        ["scheme", "MB", "size vs fp32", "median ms", "CI +-", "p90 ms", "speed vs fp32", "val acc", "d acc", "SPD"],
        [[r["scheme"], f"{r['mb']:.2f}", f"{r['mb'] / base['mb']:.2f}", f"{r['median_ms']:.3f}",
          f"{(r['ci_half_width'] or 0):.1%}", f"{r['p90_ms']:.3f}", f"{base['median_ms'] / r['median_ms']:.2f}",
          f"{r['accuracy']:.3f}", f"{r['accuracy'] - base['accuracy']:+.3f}",
          "-" if r["spd"] is None else f"{r['spd']:.3f}"] for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Train once, export with every scheme, print and write the table."""
    from evaluators.data import load_dataset
    from evaluators.latency.benchmark import describe_cpu
    from spaces import Candidate

    p = bench_parser(__doc__, "tiny data, 64 px, 1 epoch")
    p.add_argument("--backbone", default="mobilenetv3_small")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads when measuring latency (default 1)")
    args = p.parse_args(argv)
    name, out, work = dataclasses.astuple(outputs("quant_schemes", args))
    started = time.perf_counter()
    data = embedded_data(out, size=64 if args.quick else None, counts=QUICK_COUNTS if args.quick else None)
    shutil.rmtree(work, ignore_errors=True)
    ctx = pipeline_context(load_dataset(str(data), cache_root=work / "data", seed=0), work,
                           latency_threads=args.threads)
    resolution, epochs = (64, 1) if args.quick else (args.resolution, args.epochs)
    candidate = Candidate(backbone=args.backbone, width=args.width, resolution=resolution, epochs=epochs, quant="fp32")
    rows = scheme_rows(trained_model(candidate, ctx, work), candidate, ctx, work)
    text = (f"{candidate.describe()} trained {epochs} epoch(s) once, the same weights exported with every scheme; "
            f"latency on {describe_cpu()}, {args.threads} onnxruntime thread(s); "
            f"accuracy on the validation split\n\n{table(rows)}")
    print(f"\n{text}\n")
    write_outputs(out, name, text, {"candidate": candidate.to_params(), "threads": args.threads, "schemes": rows,
                                    "wall_s": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
