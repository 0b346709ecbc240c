"""Prequential coding: warm start (each block continues from the previous block's model) against from scratch.

Same process, same data (MNIST-1D, a seeded random sample of N training signals), same MLP and training settings. Prints both
times, their ratio, both codelengths, and the difference in bits and percent.

    .venv/bin/python benchmarks/mdl_warm_start.py [--examples 3000] [--width 128]
"""
from __future__ import annotations

import argparse
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from studylib import data, nets
    from studylib.metrics import mdl

    ds = data.load("mnist1d", seed=args.seed, n_train=args.examples, n_test=10)
    factory = lambda: nets.mlp(ds.x_train.shape[1], [args.width, args.width], ds.num_classes)
    spec = mdl.TrainSpec(max_epochs=40, patience=4)
    results = {}
    for warm in (False, True):
        start = time.perf_counter()
        code = mdl.prequential_codelength(factory, ds.x_train, ds.y_train, ds.num_classes, warm_start=warm,
                                          spec=spec, seed=args.seed, desc="warm start" if warm else "from scratch")
        results[warm] = (time.perf_counter() - start, code.total_bits, code.uniform_bits)
    (t_cold, bits_cold, uniform), (t_warm, bits_warm, _) = results[False], results[True]
    print(f"MNIST-1D, {args.examples} examples, MLP [{args.width}, {args.width}], uniform code {uniform:.0f} bits")
    print(f"from scratch   {t_cold:6.1f} s   {bits_cold:8.0f} bits")
    print(f"warm start     {t_warm:6.1f} s   {bits_warm:8.0f} bits")
    print(f"warm start is {t_cold / t_warm:.2f}x faster; its code is {bits_warm - bits_cold:+.0f} bits "
          f"({(bits_warm - bits_cold) / bits_cold:+.1%}) against from scratch")


if __name__ == "__main__":
    main()
