"""How accurate GenSeg's hypergradient estimators are on its own wiring: prints two tables.

1. Smooth wiring (the fixture of tests/mlo/test_real_wiring.py: smp UNet with SiLU/AvgPool,
   searchable generator, JSRT, 64 px), float64 and fp32: relative error of finite differences at
   several radii against the exact (second-order) hypergradient, whose own error against a
   central difference is printed first.
2. The real CPU-profile network (ReLU, 128 px, no pre-training), three JSRT batches: cosine of
   the bf16 second-order hypergradient, and of fp32 finite differences, with the fp32 exact one.
3. Per-sample weights (mlo.sample_weights) on that real network, fp32: cosine of the
   `difference` estimate with the `exact` one, whether both keep the same pairs, and the time of
   each per step.

    python scripts/hypergrad_accuracy.py                        # all three tables
    python scripts/hypergrad_accuracy.py --tables sample_weights
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test fixture builds the smooth wiring
os.environ.setdefault("GENSEG_DATA_DIR", str(REPO.parent / "shared" / "datasets"))

from method_setup import prepared_method, run_data  # noqa: E402
from tests.mlo.test_real_wiring import TestRealWiring  # noqa: E402

from genseg_cli.core.config import compose  # noqa: E402
from genseg_cli.core.runtime import Runtime, resolve_runtime, seed_everything  # noqa: E402
from genseg_cli.engine.step_batches import step_batches  # noqa: E402

RADII = (1e-2, 1e-3, 1e-4, 1e-5)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))


def smooth_wiring_table() -> None:
    tester = TestRealWiring()

    class TmpFactory:
        def mktemp(self, name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name))

    wiring = TestRealWiring.wiring.__wrapped__(tester, TmpFactory())
    numeric = tester.numerical(wiring)
    exact = tester.estimate(wiring, "second_order")
    print(
        "smooth wiring, float64: second_order vs central difference, relative error "
        f"{tester.relative_error(exact, numeric):.1e}"
    )
    print("| radius | float64 rel. error | fp32 rel. error |\n|---|---|---|")
    rows = {
        r: [tester.relative_error(tester.estimate(wiring, "finite_difference", r), numeric)]
        for r in RADII
    }
    method = wiring[0]
    for net in (method.segmenter, method.generator):
        net.float()
    method.val = tuple(t.float() for t in method.val)
    single = (method, *(t.float() for t in wiring[1:]))
    for r in RADII:
        estimate = tester.estimate(single, "finite_difference", r).double()
        rows[r].append(tester.relative_error(estimate, exact))
    for r, (f64, f32) in rows.items():
        print(f"| {r:g} | {f64:.1e} | {f32:.1e} |")


def real_method(extra: list[str] | None = None):
    """The CPU-profile genseg method on JSRT-9 (no pre-training), its data and config."""
    cfg = compose("train", ["method=genseg", "method.pretrain.steps=0", *(extra or [])])
    seed_everything(0)
    data = run_data(cfg)
    bf16 = resolve_runtime("cpu", "bf16", True)
    method, _ = prepared_method(cfg, data, bf16)
    return cfg, data, method, bf16


def real_network_table(batches: int = 3) -> None:
    cfg, data, method, bf16 = real_method()
    fp32 = Runtime(bf16.device, "fp32", bf16.channels_last)

    def hypergradient(batch: dict, mode: str, runtime: Runtime, upper: str) -> torch.Tensor:
        method.runtime, method.mlo.hypergrad, method.mlo.upper_precision = runtime, mode, upper
        images, masks = method.to_device(batch)
        torch.manual_seed(11)  # the same dropout draw for every estimate of one batch
        grads, _ = method.upper_hypergradient(images, masks, batch["new_mask"])
        return torch.cat([g.flatten() for group in grads.values() for g in group])

    print("\nreal network (ReLU, 128 px), cosine with the fp32 second-order hypergradient")
    print("| batch | bf16 second order | fp32 FD r=1e-2 | fp32 FD r=1e-3 |\n|---|---|---|---|")
    references = []
    for i, batch in enumerate(itertools.islice(step_batches(cfg, method, data, batches), batches)):
        reference = hypergradient(batch, "second_order", fp32, "fp32")
        references.append(reference)
        low = hypergradient(batch, "second_order", bf16, "auto")
        fds = []
        for r in (1e-2, 1e-3):
            method.mlo.fd_radius = r
            with contextlib.redirect_stderr(None):
                fds.append(hypergradient(batch, "finite_difference", fp32, "fp32"))
        print(
            f"| {i} | {cosine(low, reference):.3f} | {cosine(fds[0], reference):.3f} "
            f"| {cosine(fds[1], reference):.3f} |"
        )
    pairs = ", ".join(f"{cosine(a, b):.3f}" for a, b in itertools.pairwise(references))
    print(f"fp32 hypergradients of consecutive batches, cosine: {pairs}")


def sample_weights_table(batches: int = 3) -> None:
    from genseg_cli.mlo.hypergrad import LowerProblem
    from genseg_cli.mlo.sample_weights import normalised_weights, sample_hypergradient

    cfg, data, method, bf16 = real_method(["mlo.sample_weights=exact"])
    method.runtime = Runtime(bf16.device, "fp32", bf16.channels_last)
    print("\nper-sample weights, real network (ReLU, 128 px, fp32), difference against exact")
    print(
        "| batch | cosine r=1e-3 | cosine r=1e-2 | same pairs kept | exact (s) | difference (s) |"
    )
    print("|---|---|---|---|---|---|")
    for i, batch in enumerate(itertools.islice(step_batches(cfg, method, data, batches), batches)):
        images, masks = method.to_device(batch)
        with torch.no_grad():
            synthetic = method.recipe.synthesise(batch["new_mask"])
        problem = LowerProblem(
            method.segmenter, method.loss, (images, masks), batch["new_mask"], method.val, 1.0
        )
        method.segmenter.train()
        started = time.perf_counter()
        exact, _ = sample_hypergradient("exact", problem, synthetic, float(cfg.mlo.xi))
        exact_s = time.perf_counter() - started
        estimates, diff_s = [], 0.0
        for radius in (1e-3, 1e-2):
            started = time.perf_counter()
            estimate, _ = sample_hypergradient(
                "difference", problem, synthetic, float(cfg.mlo.xi), radius
            )
            diff_s = time.perf_counter() - started
            estimates.append(estimate)
        same = bool(
            torch.equal(normalised_weights(exact) > 0, normalised_weights(estimates[0]) > 0)
        )
        print(
            f"| {i} | {cosine(estimates[0], exact):.3f} | {cosine(estimates[1], exact):.3f} "
            f"| {same} | {exact_s:.2f} | {diff_s:.2f} |"
        )


TABLES = {
    "smooth": smooth_wiring_table,
    "real": real_network_table,
    "sample_weights": sample_weights_table,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    for name in parser.parse_args().tables:
        TABLES[name]()
