"""Data throughput: images/s of the training loop on the pixel cache, cold and warm, and the one-off
decode cost per split and resolution.

    python bench/data_throughput.py [--resolutions 64,128 --backbones mobilenetv3_small,mobilenetv2] [--quick]

Data: the embedded default (1200/400/400 images at 224 px), generated once under the output folder.

* **Decode**: for every split and resolution, a fresh ``Split`` with an empty cache folder runs
  ``pixels(R)`` (every image decoded and resized by THE preprocessing, then written to the host's
  ``.npy`` cache); then another fresh ``Split`` on the same folder maps the cache (what a later run,
  another process or a Ray worker pays).
* **Training loop**: the search's own ``train`` (AdamW, cosine, CE, batch 32, the pipeline's flips)
  fed by ``iterate_batches`` from a fresh training split (empty pixel cache), for each backbone
  (width 1.0) and resolution, 3 epochs with torch's threads set as the launcher sets them
  (``--jobs 1``: all CPUs). Cold = the first epoch (decoding the split included, and the loop's
  set-up); warm = the median of the next two (pixels in memory). images/s = training images / epoch seconds.
  Each configuration runs twice, back to back: in the contiguous memory format and in channels-last
  (what ``train`` uses by default); the table gives the warm speed-up of channels-last.

``--quick``: 48/24/24 images at 64 px, one backbone. Writes ``<out>/data_throughput[_quick].{md,json}``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import bench_parser, embedded_data, format_table, outputs, write_outputs

EPOCHS = 3
BATCH = 32
QUICK_COUNTS = {"train": 48, "val": 24, "test": 24}


def fresh_split(split: Any, cache_dir: Path) -> Any:
    """A copy of ``split`` with no pixels in memory, caching under ``cache_dir``."""
    from evaluators.data import Split

    return Split(split.name, split.paths, split.labels, split.groups, cache_dir=cache_dir)


def decode_costs(dataset: Any, resolutions: Sequence[int], work: Path) -> list[dict[str, Any]]:
    """Seconds to decode each split at each resolution into an empty cache, then to map that cache."""
    rows = []
    for resolution in resolutions:
        for name, split in dataset.splits.items():
            folder = work / "decode" / f"{name}-{resolution}"
            shutil.rmtree(folder, ignore_errors=True)
            start = time.perf_counter()
            fresh_split(split, folder).pixels(resolution)
            decode = time.perf_counter() - start
            start = time.perf_counter()
            fresh_split(split, folder).pixels(resolution)
            mapped = time.perf_counter() - start
            size = sum(f.stat().st_size for f in folder.glob("*.npy"))
            rows.append({"split": name, "resolution": resolution, "images": len(split), "decode_s": decode,
                         "images_per_s": len(split) / decode, "cache_mb": size / 1e6, "mapped_s": mapped})
            print(f"  decode {name:<5} @{resolution:<3}: {decode:6.2f} s ({len(split) / decode:5.0f} images/s), "
                  f"cache {size / 1e6:.1f} MB mapped again in {mapped * 1e3:.0f} ms", flush=True)
    return rows


def epoch_seconds(backbone: str, resolution: int, dataset: Any, work: Path, channels_last: bool) -> list[float]:
    """Seconds of each of :data:`EPOCHS` epochs of the search's training loop from a cold pixel cache."""
    import torch

    from evaluators.data import iterate_batches
    from evaluators.models import build_model
    from evaluators.training import train
    from spaces.candidate import LossMix

    folder = work / "train" / f"{backbone}-{resolution}"
    shutil.rmtree(folder, ignore_errors=True)
    split = fresh_split(dataset.splits["train"], folder)
    torch.manual_seed(0)
    model = build_model(backbone, 1.0, dataset.num_classes)
    marks = [time.perf_counter()]
    train(model, lambda epoch: iterate_batches(split, resolution, BATCH, shuffle=True, augment=True, seed=epoch),
          loss_mix=LossMix(), epochs=EPOCHS, lr=3e-3, steps_per_epoch=-(-len(split) // BATCH), seed=0,
          progress=lambda epoch, parts: marks.append(time.perf_counter()), channels_last=channels_last)
    return [b - a for a, b in zip(marks, marks[1:])]


def loop_rows(dataset: Any, backbones: Sequence[str], resolutions: Sequence[int], work: Path) -> list[dict[str, Any]]:
    """Cold and warm images/s of every backbone and resolution."""
    images = len(dataset.splits["train"])
    rows = []
    for backbone in backbones:
        for resolution in resolutions:
            for channels_last in (False, True):
                seconds = epoch_seconds(backbone, resolution, dataset, work, channels_last)
                warm = statistics.median(seconds[1:])
                layout = "channels_last" if channels_last else "contiguous"
                rows.append({"backbone": backbone, "resolution": resolution, "layout": layout, "images": images,
                             "epoch_s": seconds, "cold_images_per_s": images / seconds[0],
                             "warm_images_per_s": images / warm})
                print(f"  train {backbone} @{resolution} {layout}: epochs {', '.join(f'{s:.1f}' for s in seconds)} s "
                      f"-> cold {images / seconds[0]:.0f}, warm {images / warm:.0f} images/s", flush=True)
            rows[-1]["speedup"] = rows[-1]["warm_images_per_s"] / rows[-2]["warm_images_per_s"]
    return rows


def report(decode: Sequence[dict[str, Any]], loop: Sequence[dict[str, Any]], threads: int) -> str:
    """The two tables."""
    decode_table = format_table(
        ["split", "px", "images", "decode s", "images/s", "cache MB", "mapped again, ms"],
        [[r["split"], r["resolution"], r["images"], f"{r['decode_s']:.2f}", f"{r['images_per_s']:.0f}",
          f"{r['cache_mb']:.1f}", f"{r['mapped_s'] * 1e3:.0f}"] for r in decode])
    loop_table = format_table(
        ["backbone", "px", "layout", "train images", "epoch s (1st, 2nd, 3rd)", "cold images/s", "warm images/s",
         "warm / cold", "channels_last speed-up (warm)"],
        [[r["backbone"], r["resolution"], r["layout"], r["images"], ", ".join(f"{s:.1f}" for s in r["epoch_s"]),
          f"{r['cold_images_per_s']:.0f}", f"{r['warm_images_per_s']:.0f}",
          f"{r['warm_images_per_s'] / r['cold_images_per_s']:.2f}",
          f"{r['speedup']:.2f}x" if "speedup" in r else ""] for r in loop])
    return (f"## One-off decode per split and resolution (into an empty .npy cache; then mapped by a fresh split)\n\n"
            f"{decode_table}\n\n## Training loop (train + iterate_batches on the pixel cache, CE, batch {BATCH}, "
            f"{threads} torch thread(s)); cold = 1st epoch incl. decoding the training split\n\n{loop_table}")


def main(argv: Sequence[str] | None = None) -> int:
    """Generate or reuse the data, measure, print and write the figures."""
    p = bench_parser(__doc__, "48/24/24 images at 64 px, one backbone")
    p.add_argument("--resolutions", default="64,128", help="comma-separated input sides (default 64,128)")
    p.add_argument("--backbones", default="mobilenetv3_small,mobilenetv2",
                   help="comma-separated backbones at width 1.0 (default mobilenetv3_small,mobilenetv2)")
    args = p.parse_args(argv)
    import torch

    from evaluators.data import load_dataset

    resolutions = [int(r) for r in args.resolutions.split(",") if r]
    backbones = [b for b in args.backbones.split(",") if b][: 1 if args.quick else None]
    name, out, work = dataclasses.astuple(outputs("data_throughput", args))
    started = time.perf_counter()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    data = embedded_data(out, size=64 if args.quick else None, counts=QUICK_COUNTS if args.quick else None)
    dataset = load_dataset(str(data), cache_root=work / "data", seed=0)
    print(f"data throughput: {data} ({', '.join(f'{k} {len(s)}' for k, s in dataset.splits.items())}), "
          f"{threads} torch thread(s)", flush=True)
    decode = decode_costs(dataset, resolutions, work)
    loop = loop_rows(dataset, backbones, resolutions, work)
    text = report(decode, loop, threads)
    print(f"\n{text}\n")
    write_outputs(out, name, text, {"data": str(data), "threads": threads, "decode": decode, "loop": loop,
                                    "wall_s": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
