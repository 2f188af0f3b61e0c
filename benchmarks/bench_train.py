"""Bench 1: training throughput of TopographicVAE.fit against the matmul roofline.

The paper's MNIST model (18 x 18 capsules, S = 18, 3x28x28 frames, 2352-972-648-648 MLPs)
is fitted on random data in [0, 1]. Figures, all measured in this one run:

* fit frames/s and its share of the roofline: FLOPs per frame (from the layer sizes) x
  frames/s / the float32 GEMM rate torch reaches here on the same GEMM shapes;
* a bare torch loop over the same module (no skorch), and over the MLPs alone;
* the same MLPs written as 28x28-kernel convolutions, as the reference code builds them;
* the share of the topographic part (W * u^2, mu, KL) in one training step;
* with ``--bf16``, fit frames/s with ``precision="bfloat16"`` (what
  ``paper_table.py --precision bf16`` trains with), as a ratio to float32: above 1 only
  where the hardware has bfloat16 units (AMX, AVX-512 BF16, recent GPUs).

Run: ``python benchmarks/bench_train.py [--device cuda] [--sequences 256] [--bf16]``.
"""

import argparse

import numpy as np
import torch
from torch import nn

from _common import C, D, HIDDEN, N_FEATURES, S, flops_per_frame, layer_shapes, \
    matmul_flops_per_second, report, sync, timeit
from sktvae import TopographicVAE
from sktvae._model import gaussian_kl


def conv_mlp(sizes, first_kernel, last_kernel=None):
    """The reference code's layout: dense layers as convolutions on (B, C, 28, 28)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        if i == 0 and first_kernel:
            layers.append(nn.Conv2d(n_in, n_out, first_kernel))
        elif i == len(sizes) - 2 and last_kernel:
            layers.append(nn.ConvTranspose2d(n_in, n_out, last_kernel))
        else:
            layers.append(nn.Conv2d(n_in, n_out, 1))
    return nn.Sequential(*layers)


def mlp_step_time(kind, n_rows, device):
    """Seconds of forward + backward + Adam for the two encoders and the decoder."""
    n_latent = C * D
    if kind == "linear":
        from sktvae._model import layer_sizes, mlp
        encoder, decoder = layer_sizes(N_FEATURES, n_latent, HIDDEN)
        parts = [mlp(encoder), mlp(encoder), mlp(decoder)]
        x, t = torch.rand(n_rows, N_FEATURES), torch.randn(n_rows, n_latent)
    else:
        parts = [conv_mlp([3, *HIDDEN, 2 * n_latent], 28) for _ in range(2)]
        parts.append(conv_mlp([n_latent, *HIDDEN[::-1], 3], None, 28))
        x, t = torch.rand(n_rows, 3, 28, 28), torch.randn(n_rows, n_latent, 1, 1)
    model = nn.ModuleList(parts).to(device)
    x, t = x.to(device), t.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def step():
        opt.zero_grad()
        loss = model[0](x).sum() + model[1](x).sum() + model[2](t).sum()
        loss.backward()
        opt.step()
        sync(device)
    return timeit(step)


def fit_frames_per_second(est, X):
    """Fit ``est`` on ``X``; frames/s from skorch's epoch durations (the median after
    the first epoch, which includes warm-up)."""
    dur = est.fit(X).history_[:, "dur"]
    return len(X) * S / (np.median(dur[1:]) if len(dur) > 1 else dur[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true",
                        help="also fit with precision='bfloat16'")
    args = parser.parse_args()
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((args.sequences, S * N_FEATURES), np.float32)
    params = dict(hidden_layer_sizes=HIDDEN, max_epochs=args.epochs, device=args.device,
                  random_state=0)
    if args.batch_size:
        params["batch_size"] = args.batch_size
    est = TopographicVAE(C, D, S, **params)
    bs = est.batch_size
    n_rows = bs * S
    shapes = layer_shapes()
    flops = flops_per_frame(shapes)

    fit_fps = fit_frames_per_second(est, X)

    module = est.net_.module_
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)
    xb = torch.from_numpy(X[:bs]).view(bs, S, -1).to(args.device)

    def bare_step():
        opt.zero_grad()
        log_px, kl = module(xb)
        (kl - log_px).mean().backward()
        opt.step()
        sync(args.device)
    bare_fps = n_rows / timeit(bare_step)
    mlp_seconds = mlp_step_time("linear", n_rows, args.device)
    conv_seconds = mlp_step_time("conv", n_rows, args.device)

    topo = module.topography
    z = torch.randn(bs, S, C * D, device=args.device, requires_grad=True)
    u = torch.randn(bs, S, C * D, device=args.device, requires_grad=True)
    logvar = torch.zeros_like(z, requires_grad=True)

    def topo_step():
        t = topo(z, u)
        (t.sum() + gaussian_kl(z, logvar).sum() + gaussian_kl(u, logvar).sum()).backward()
        sync(args.device)
    topo_share = timeit(topo_step) / (n_rows / bare_fps)

    rate = matmul_flops_per_second(shapes, n_rows) if args.device == "cpu" else None
    upper = (matmul_flops_per_second(shapes, n_rows, preallocated=True)
             if args.device == "cpu" else None)
    rows = [
        ("batch size (sequences x frames)", f"{bs} x {S}", ""),
        ("model FLOPs per frame, fwd + bwd, all 3 GEMMs per layer (MFLOP)",
         flops_per_frame(shapes, executed=False) / 1e6, "~59"),
        ("  of which executed (no input gradient for the data) (MFLOP)", flops / 1e6, ""),
        ("TopographicVAE.fit frames/s", fit_fps, ""),
        ("bare torch loop over the same module, frames/s", bare_fps, ""),
        ("bare torch loop over the MLPs alone, frames/s", n_rows / mlp_seconds, ""),
    ]
    if rate:
        roof = rate / flops
        rows += [
            ("float32 GEMM rate on these shapes, a @ b (GFLOP/s)", rate / 1e9, ""),
            ("roofline frames/s", roof, ""),
            ("fit / roofline", fit_fps / roof, ">= 0.80"),
            ("bare module loop / roofline", bare_fps / roof, ""),
            ("MLPs alone / roofline", n_rows / mlp_seconds / roof, "~0.95"),
            ("GEMM rate with preallocated outputs, mm(out=) (GFLOP/s)", upper / 1e9, ""),
            ("fit / that upper bound", fit_fps * flops / upper, ""),
        ]
    rows += [
        ("Linear MLPs vs 28x28-kernel convolutions (speed-up)", conv_seconds / mlp_seconds,
         ">= 1.8"),
        ("topographic part (W*u^2, mu, KL) share of a step", topo_share, "<= 0.10"),
    ]
    if args.bf16:
        from sklearn.base import clone
        bf16_fps = fit_frames_per_second(clone(est).set_params(precision="bfloat16"), X)
        rows += [("fit frames/s with precision='bfloat16'", bf16_fps, ""),
                 ("  bfloat16 / float32 fit speed", bf16_fps / fit_fps, "")]
    report("bench_train: training throughput", rows)


if __name__ == "__main__":
    main()
