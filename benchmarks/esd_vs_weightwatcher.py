"""ESD metrics: studylib.metrics.esd against WeightWatcher 0.7.7 and powerlaw 1.5, side by side in one process.

Model: a randomly initialised BERT-base (transformers BertConfig(), 109.5M parameters), the issue's
reference shape. Prints the time ratios, the largest |alpha difference| per comparison, and the time of
the eigenvalue computation alone (the floor that analyze() cannot beat).

    .venv/bin/python benchmarks/esd_vs_weightwatcher.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch


def best_time(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-randomize", action="store_true")
    args = parser.parse_args()

    import powerlaw
    import weightwatcher
    from transformers import BertConfig, BertModel

    from studylib.metrics import esd
    from studylib.metrics.powerlaw import fit_power_law

    torch.manual_seed(0)
    model = BertModel(BertConfig()).eval()
    matched = dict(min_value=1e-5)  # WeightWatcher drops eigenvalues <= 1e-5 before fitting

    def ww_analyze(**kw):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return weightwatcher.WeightWatcher(model=model).analyze(**kw)

    esd.analyze(model)  # warm-up (thread pools, allocator)
    t_floor, esds32 = best_time(lambda: esd.eigenvalues(esd.layer_matrices(model), torch.float32), args.repeat)
    t_ours, ours = best_time(lambda: esd.analyze(model, **matched), args.repeat)
    t_floor64, esds = best_time(lambda: esd.eigenvalues(esd.layer_matrices(model), torch.float64), args.repeat)
    t_ours64, ours64 = best_time(lambda: esd.analyze(model, dtype=torch.float64, **matched), args.repeat)
    t_ww, theirs = best_time(ww_analyze, max(1, args.repeat - 1))

    ours_i, theirs_i = ours.set_index("name"), theirs.set_index("longname")
    common = theirs_i.index.intersection(ours_i.index)
    fitted = (theirs_i.loc[common, "alpha"] > 0) & (theirs_i.loc[common, "num_evals"] >= 20)
    d_alpha = (ours_i.loc[common, "alpha"] - theirs_i.loc[common, "alpha"])[fitted].abs()
    d_alpha64 = (ours64.set_index("name").loc[common, "alpha"] - theirs_i.loc[common, "alpha"])[fitted].abs()
    d_32 = (ours.alpha - ours64.alpha).abs().max()

    print(f"model: BERT-base, random init, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"{len(ours)} matrices ({len(common)} also analysed by WeightWatcher), torch threads {torch.get_num_threads()}")
    print(f"eigenvalues alone, float32 (floor) {t_floor:7.2f} s")
    print(f"studylib analyze (default float32) {t_ours:7.2f} s   {t_ours / t_floor:5.2f}x its floor; "
          f"max |alpha32 - alpha64| = {d_32:.2e}")
    print(f"eigenvalues alone, float64         {t_floor64:7.2f} s")
    print(f"studylib analyze (float64)         {t_ours64:7.2f} s   {t_ours64 / t_floor64:5.2f}x its floor")
    print(f"WeightWatcher analyze()            {t_ww:7.2f} s")
    print(f"  speed-up float32 {t_ww / t_ours:5.1f}x, max |delta alpha| vs WeightWatcher = {d_alpha.max():.2e} "
          f"over {int(fitted.sum())} fitted layers")
    print(f"  speed-up float64 {t_ww / t_ours64:5.1f}x, max |delta alpha| vs WeightWatcher = {d_alpha64.max():.2e}")

    if not args.skip_randomize:
        t_ours_r, ours_r = best_time(lambda: esd.analyze(model, randomize=True, **matched), 1)
        t_ww_r, theirs_r = best_time(lambda: ww_analyze(randomize=True), 1)
        print(f"randomize=True: studylib {t_ours_r:7.2f} s, WeightWatcher {t_ww_r:7.2f} s, "
              f"speed-up {t_ww_r / t_ours_r:5.1f}x")

    def powerlaw_fits():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return [powerlaw.Fit(e[e > 0]) for e in esds]
    t_fit_ours, fits = best_time(lambda: [fit_power_law(e) for e in esds], args.repeat)
    t_fit_pl, refs = best_time(powerlaw_fits, 1)
    d_fit = max(abs(f.alpha - r.alpha) for f, r in zip(fits, refs) if np.isfinite(f.alpha))
    same_xmin = sum(f.xmin == r.xmin for f, r in zip(fits, refs))
    print(f"fits on every layer: studylib {t_fit_ours:6.3f} s, powerlaw 1.5 {t_fit_pl:6.2f} s, "
          f"speed-up {t_fit_pl / t_fit_ours:5.1f}x, max |delta alpha| = {d_fit:.2e}, same xmin {same_xmin}/{len(fits)}")


if __name__ == "__main__":
    with torch.no_grad():
        main()
