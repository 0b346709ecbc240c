"""Per-group Fisher IIW: the batched estimator against the per-example gradient loop and one training epoch.

Same process, same MiniLM-L6 (pre-trained, then moved by one epoch of fine-tuning so that delta != 0),
same 64 Rotten Tomatoes examples at sequence length 32. Prints the times, the ratios and the largest
relative difference between the two estimators over all groups.

    .venv/bin/python benchmarks/iiw_fisher_speed.py [--examples 64] [--max-len 32]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from studylib import core, data, nets
    from studylib.metrics import iiw
    from studylib.runs import finetune

    ds = data.load("rotten_tomatoes", seed=0, n_train=args.examples, n_test=10)
    enc = finetune.encode(nets.tokenizer(), ds.x_train, args.max_len)
    model = nets.minilm_l6(num_labels=2, seed=0)
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=4e-5)
    train_batches = finetune.batches(enc, ds.y_train, args.batch_size)

    def one_epoch():
        model.train()
        for b in train_batches:
            opt.zero_grad()
            nn.functional.cross_entropy(core.logits(model, b), b["labels"]).backward()
            opt.step()

    one_epoch()  # warm-up, and moves the weights away from theta0
    start = time.perf_counter()
    one_epoch()
    t_epoch = time.perf_counter() - start
    model.eval()

    start = time.perf_counter()
    fast = iiw.iiw(model, theta0, train_batches, "fisher")
    t_fast = time.perf_counter() - start

    groups = iiw.weight_groups(model)
    params = dict(model.named_parameters())
    start = time.perf_counter()
    slow = {g: 0.0 for g in groups}
    for b in train_batches:
        for i in range(len(b["labels"])):
            one = {k: v[i:i + 1] for k, v in b.items()}
            model.zero_grad()
            nn.functional.cross_entropy(core.logits(model, one), one["labels"]).backward()
            for g, names in groups.items():
                dot = sum(float((params[n].grad.double() * (params[n].detach() - theta0[n]).double()).sum())
                          for n in names)
                slow[g] += dot ** 2
    t_loop = time.perf_counter() - start

    rel = max(abs(fast[g] - slow[g]) / abs(slow[g]) for g in groups if slow[g] != 0)
    print(f"MiniLM-L6, {args.examples} examples, sequence length {args.max_len}, {len(groups)} groups, "
          f"torch threads {torch.get_num_threads()}")
    print(f"one training epoch (batch {args.batch_size})   {t_epoch:6.2f} s")
    print(f"per-example gradient loop           {t_loop:6.2f} s")
    print(f"batched Fisher IIW (all groups)     {t_fast:6.2f} s   {t_loop / t_fast:5.1f}x faster than the loop, "
          f"{t_fast / t_epoch:4.2f}x the epoch")
    print(f"largest relative difference over groups: {rel:.1e}")


if __name__ == "__main__":
    main()
