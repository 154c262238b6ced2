"""Python steps of the arm64 rehearsal (``scripts/pi_rehearsal.sh`` runs them in order).

* ``prepare`` (host, search stack): a small MobileNetV3 trained briefly on the embedded data set,
  exported and quantized three ways (fp32, fp16, int8 static), 200 test images, and the logits x86
  onnxruntime gives for them.
* ``measure`` (host): each artifact measured through the coordinator by the emulated agent; the
  figures are printed with their label and must say ``emulated`` everywhere.
* ``infer`` (inside the arm64 root, agent venv: numpy and onnxruntime only): the logits ARM
  onnxruntime gives for the same images.
* ``compare`` (host): max |delta logit| and argmax agreement per scheme; fails below the floors.

Emulated timings say nothing about a Raspberry Pi's speed; outputs are what the rehearsal checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SCHEMES = ("fp32", "fp16", "int8_static")
RESOLUTION = 64
IMAGES = 200
AGREEMENT_FLOOR = {"fp32": 1.0, "fp16": 0.97, "int8_static": 0.95}
"""Least share of the 200 images whose ARM argmax must equal the x86 one, per scheme. fp16 gets
slack: ARM onnxruntime runs fp16 kernels natively where x86 computes in float32, so images whose two
best logits nearly tie can flip (198/200 measured); fp32 must agree on every image."""


def _logits(model: Path, images: np.ndarray) -> np.ndarray:
    """Logits of ``images`` one at a time (batch 1, as deployed), single-threaded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in images])


def prepare(out: Path) -> None:
    """Train, export and quantize the rehearsal model; write the images and the x86 logits."""
    import torch

    from evaluators.data import load_dataset
    from evaluators.data.batches import iterate_batches
    from evaluators.export import export_onnx
    from evaluators.models import build_model
    from evaluators.quantization import quantize

    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = load_dataset("embedded:esfair", cache_root=out / "data", embedded_size=RESOLUTION,
                        embedded_counts={"train": 480, "val": 48, "test": IMAGES})
    model = build_model("mobilenetv3_small", 0.5, data.num_classes)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(4):
        for x, y, _ in iterate_batches(data.splits["train"], RESOLUTION, 32, shuffle=True, augment=True,
                                       seed=epoch, drop_last=True):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimiser.step()
    model.eval()
    fp32 = export_onnx(model, out / "fp32.onnx", RESOLUTION)
    calibration = [x.numpy() for x, _, _ in iterate_batches(data.splits["train"], RESOLUTION, 16, shuffle=False,
                                                            augment=False, seed=0)][:8]
    quantize(fp32, out / "fp16.onnx", "fp16")
    quantize(fp32, out / "int8_static.onnx", "int8_static", calibration)
    images = np.concatenate([x.numpy() for x, _, _ in iterate_batches(
        data.splits["test"], RESOLUTION, 50, shuffle=False, augment=False, seed=0)])[:IMAGES]
    labels = data.splits["test"].labels[:IMAGES]
    np.save(out / "images.npy", images.astype(np.float32))
    for scheme in SCHEMES:
        logits = _logits(out / f"{scheme}.onnx", images)
        np.save(out / f"x86_{scheme}.npy", logits)
        accuracy = float((logits.argmax(1) == labels).mean())
        print(f"  {scheme}: {(out / f'{scheme}.onnx').stat().st_size / 1e6:.2f} MB, x86 test accuracy "
              f"{accuracy:.3f} on {IMAGES} images", flush=True)


def measure(out: Path, fleet: str, token: str, ca: Path, device_tag: str) -> None:
    """Measure each artifact on the emulated agent; every figure must be labelled emulated."""
    from evaluators.contracts import LatencySettings
    from evaluators.fleet.client import FleetClient
    from evaluators.latency.remote import RemoteLatencyBackend

    settings = LatencySettings(threads=1, warmup=2, min_repeats=10, max_repeats=10, min_time_s=0.0)
    figures = {}
    with RemoteLatencyBackend(fleet, token, device_tag, timeout_s=1800, ca=ca) as backend:
        for scheme in SCHEMES:
            started = time.monotonic()
            result = backend.measure(out / f"{scheme}.onnx", (1, 3, RESOLUTION, RESOLUTION), settings)
            if result.source != "emulated" or not result.device.startswith("EMULATED"):
                raise SystemExit(f"error: the {scheme} figure is not labelled emulated: {result.label()}")
            figures[scheme] = result.to_dict()
            print(f"  {scheme}: median {result.median_ms:.2f} ms over {result.n} runs "
                  f"({time.monotonic() - started:.0f} s) -- {result.label()}", flush=True)
    with FleetClient(fleet, token, ca=ca) as client:
        devices = {agent["id"]: agent["device"] for agent in client.agents()}
    print(f"  device record(s): {json.dumps(devices)}", flush=True)
    if not all(device.startswith("EMULATED") for device in devices.values()):
        raise SystemExit("error: an agent's device record does not say EMULATED")
    (out / "latency.json").write_text(json.dumps(figures, indent=1))


def infer(out: Path) -> None:
    """Write ``arm_<scheme>.npy``: the logits this machine's onnxruntime gives (run in the root)."""
    import platform

    import onnxruntime as ort

    images = np.load(out / "images.npy")
    print(f"  onnxruntime {ort.__version__} on {platform.machine()}", flush=True)
    for scheme in SCHEMES:
        started = time.monotonic()
        np.save(out / f"arm_{scheme}.npy", _logits(out / f"{scheme}.onnx", images))
        print(f"  {scheme}: {len(images)} images in {time.monotonic() - started:.0f} s", flush=True)


def compare(out: Path) -> None:
    """Print max |delta logit| and argmax agreement per scheme; exit 1 below a floor."""
    failed = []
    for scheme in SCHEMES:
        x86, arm = np.load(out / f"x86_{scheme}.npy"), np.load(out / f"arm_{scheme}.npy")
        agree = float((x86.argmax(1) == arm.argmax(1)).mean())
        delta = float(np.abs(x86 - arm).max())
        spread = float(np.abs(x86).max())
        verdict = "ok" if agree >= AGREEMENT_FLOOR[scheme] else f"BELOW the floor of {AGREEMENT_FLOOR[scheme]:.0%}"
        print(f"  {scheme}: argmax agreement ARM vs x86 {agree * len(x86):.0f}/{len(x86)} ({agree:.1%}), "
              f"max |delta logit| {delta:.2e} (largest |logit| {spread:.2f}) -- {verdict}", flush=True)
        if agree < AGREEMENT_FLOOR[scheme]:
            failed.append(scheme)
    if failed:
        raise SystemExit(f"error: ARM and x86 outputs disagree for {', '.join(failed)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "measure", "infer", "compare"])
    parser.add_argument("--out", type=Path, required=True, help="the rehearsal's working folder")
    parser.add_argument("--fleet", help="coordinator URL (measure)")
    parser.add_argument("--token", help="fleet token (measure)")
    parser.add_argument("--ca", type=Path, help="CA of the coordinator (measure)")
    parser.add_argument("--device", default="rpi4b", help="device tag (measure)")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.out)
    elif args.step == "measure":
        measure(args.out, args.fleet, args.token, args.ca, args.device)
    elif args.step == "infer":
        infer(args.out)
    else:
        compare(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
