"""sktvae against the library users would pick instead (pythae), and the paper's TVAE
against a loop written as the authors' reference code writes it.

1. The same MLP VAE (784-512-512-64, binary cross-entropy, Adam 1e-3, batch 128) on
   ``--train`` MNIST digits for ``--epochs`` epochs, in sktvae (float32 and
   ``precision="bfloat16"``) and in pythae (float32): training images/s, the
   importance-sampled likelihood's images/s (K = 10: sktvae's ``score_samples``,
   pythae's ``get_nll``) and the held-out log-likelihood each reaches (nats per image).
   pythae is an optional install for this benchmark alone (``pip install pythae``);
   without it its rows are skipped with a message.
2. The paper's TVAE (18 x 18 capsules, S = 18, 3 x 28 x 28 frames, hidden (972, 648))
   trained by ``fit`` on precomputed sequences against the reference code's way: its
   linear layers written as 28 x 28-kernel convolutions over ``(N, 3, 28, 28)``
   frames, and each batch's sequences built per image in Python (rotations by
   ``torch.nn.functional.affine_grid``, colour by a per-frame product), the same
   topographic latent and ELBO: frames/s of each, and the ratio.

Ratios are measured in one run; run it on a quiet machine.

Run: ``python benchmarks/bench_peers.py`` (about five minutes on 2 cores).
"""

import argparse
import math
import os
import shutil
import tempfile
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's progress bars

from _common import MNIST, report  # noqa: E402
from sktvae import VAE, SequenceTransformer, TopographicVAE  # noqa: E402
from sktvae._model import gaussian_kl  # noqa: E402
from sktvae._runtime import bfloat16_is_native  # noqa: E402
from sktvae._topography import Topography  # noqa: E402


def mnist(n_train, n_test):
    with np.load(MNIST) as data:
        x_train = data["x_train"][:n_train].reshape(-1, 784).astype(np.float32) / 255
        x_test = data["x_test"][:n_test].reshape(-1, 784).astype(np.float32) / 255
    return x_train, x_test


# --- 1. sktvae against pythae -----------------------------------------------------------
def sktvae_vae(precision, args):
    return VAE(n_components=64, hidden_layer_sizes=(512, 512), batch_size=128,
               max_epochs=args.epochs, lr=1e-3, precision=precision,
               n_importance_samples=10, random_state=0)


def run_sktvae(precision, x_train, x_test, args):
    sktvae_vae(precision, args).set_params(max_epochs=1).fit(x_train[:256])  # warm-up
    est = sktvae_vae(precision, args)
    start = time.perf_counter()
    est.fit(x_train)
    train = args.epochs * len(x_train) / (time.perf_counter() - start)
    start = time.perf_counter()
    ll = float(np.mean(est.score_samples(x_test)))
    score = len(x_test) / (time.perf_counter() - start)
    return {"train images/s": train, "likelihood images/s": score, "log p(x)": ll}


def run_pythae(x_train, x_test, args):
    from pythae.models import VAE as PythaeVAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                                     nn.ReLU(), nn.Linear(512, 128))

        def forward(self, x):
            mean, logvar = self.net(x.reshape(len(x), -1)).chunk(2, -1)
            return ModelOutput(embedding=mean, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512),
                                     nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(len(z), 1, 28, 28))

    torch.manual_seed(0)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=64, reconstruction_loss="bce")
    model = PythaeVAE(config, encoder=Encoder(), decoder=Decoder())
    out = tempfile.mkdtemp()
    try:
        training = BaseTrainerConfig(output_dir=out, num_epochs=args.epochs,
                                     per_device_train_batch_size=128, learning_rate=1e-3,
                                     optimizer_cls="Adam", no_cuda=True, seed=0,
                                     steps_saving=None)
        pipeline = TrainingPipeline(model=model, training_config=training)
        start = time.perf_counter()
        pipeline(train_data=x_train.reshape(-1, 1, 28, 28),
                 eval_data=x_test[:128].reshape(-1, 1, 28, 28))
        train = args.epochs * len(x_train) / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    model.eval()
    data = torch.from_numpy(x_test.reshape(-1, 1, 28, 28))
    start = time.perf_counter()
    log_px = model.get_nll(data, n_samples=10, batch_size=100)  # despite its name, log p(x)
    score = len(x_test) / (time.perf_counter() - start)
    return {"train images/s": train, "likelihood images/s": score, "log p(x)": float(log_px)}


# --- 2. fit against the reference code's loop -------------------------------------------
S, C, D = 18, 18, 18


class ReferenceStyleTVAE(nn.Module):
    """The paper's TVAE as the reference code writes it: each linear layer a
    convolution whose kernel covers the whole 28 x 28 frame, frames as images."""

    def __init__(self):
        super().__init__()

        def encoder():
            return nn.Sequential(nn.Conv2d(3, 972, 28), nn.ReLU(), nn.Conv2d(972, 648, 1),
                                 nn.ReLU(), nn.Conv2d(648, 2 * C * D, 1))

        self.enc_z, self.enc_u = encoder(), encoder()
        self.dec = nn.Sequential(nn.ConvTranspose2d(C * D, 648, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(648, 972, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(972, 3, 28))
        self.topography = Topography(C, (D,), S, S // 2, (3,), shifting=True, mu_init=30.0)

    def forward(self, x):  # x: (B, S, 3, 28, 28)
        B = len(x)
        frames = x.reshape(B * S, 3, 28, 28)
        z_mean, z_logvar = self.enc_z(frames).flatten(1).chunk(2, -1)
        u_mean, u_logvar = self.enc_u(frames).flatten(1).chunk(2, -1)
        z = z_mean + torch.randn_like(z_mean) * (0.5 * z_logvar).exp()
        u = u_mean + torch.randn_like(u_mean) * (0.5 * u_logvar).exp()
        t = self.topography(z.view(B, S, -1), u.view(B, S, -1))  # (B, S, C * D)
        logits = self.dec(t.reshape(B * S, -1, 1, 1))
        rec = F.binary_cross_entropy_with_logits(logits, frames, reduction="sum")
        kl = gaussian_kl(z_mean, z_logvar).sum() + gaussian_kl(u_mean, u_logvar).sum()
        return (rec + kl) / B


def reference_batch(images, rng):
    """One batch of rotation-and-colour sequences, built image by image as the
    reference code's data loader does: ``(B, S, 3, 28, 28)``."""
    out = []
    for image in images:  # (28, 28)
        phase = rng.random()
        angles = torch.tensor([(phase + l / S) * 2 * math.pi for l in range(S)])
        cos, sin = angles.cos(), angles.sin()
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros(S)], 1),
                             torch.stack([sin, cos, torch.zeros(S)], 1)], 1)
        grid = F.affine_grid(theta, (S, 1, 28, 28), align_corners=False)
        frames = F.grid_sample(image.expand(S, 1, 28, 28), grid, align_corners=False)
        hue = torch.stack([(angles + k * 2 * math.pi / 3).cos() * 0.5 + 0.5
                           for k in range(3)], 1)  # (S, 3): a colour per frame
        out.append(frames * hue[:, :, None, None])
    return torch.stack(out)


def run_reference(images, batches, batch_size):
    torch.manual_seed(0)
    model = ReferenceStyleTVAE()  # a warm-up step
    model(reference_batch(torch.from_numpy(images[:2].reshape(-1, 28, 28)),
                          np.random.default_rng(0))).backward()
    model = ReferenceStyleTVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    data = torch.from_numpy(images.reshape(-1, 28, 28))
    start = time.perf_counter()
    for b in range(batches):
        rows = rng.integers(len(data), size=batch_size)
        loss = model(reference_batch(data[rows], rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batches * batch_size * S / (time.perf_counter() - start)


def run_fit(images, batches, batch_size):
    seq = SequenceTransformer(["rotation", "hue"], sequence_length=S, color="red",
                              random_state=0)
    X = seq.fit_transform(images[:batches * batch_size].reshape(-1, 784))
    est = TopographicVAE(C, D, hidden_layer_sizes=(972, 648), batch_size=batch_size,
                         max_epochs=1, random_state=0)
    start = time.perf_counter()
    est.fit(X)
    return batches * batch_size * S / (time.perf_counter() - start)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=30,
                        help="training batches of the paper's TVAE, both ways")
    parser.add_argument("--skip", default="", help="comma-separated: peers, reference")
    return parser.parse_args(argv)


def run(args, data=None):
    """``data``: ``(x_train, x_test)`` rows of 784 values in [0, 1] (default MNIST)."""
    skip = set(filter(None, args.skip.split(",")))
    x_train, x_test = data if data is not None else mnist(args.train, args.test)
    results = {}
    if "peers" not in skip:
        results["sktvae float32"] = run_sktvae("float32", x_train, x_test, args)
        bf16 = "bfloat16" if bfloat16_is_native() else None
        if bf16:
            results["sktvae bfloat16"] = run_sktvae(bf16, x_train, x_test, args)
        try:
            results["pythae float32"] = run_pythae(x_train, x_test, args)
        except ImportError:
            print("pythae is not installed (pip install pythae): its rows are skipped.")
        rows = [(f"{name}: {key}", value, "") for name, r in results.items()
                for key, value in r.items()]
        if "pythae float32" in results:
            p, s = results["pythae float32"], results["sktvae float32"]
            rows += [("training, sktvae float32 / pythae", s["train images/s"]
                      / p["train images/s"], "> 1"),
                     ("likelihood (K = 10), sktvae / pythae", s["likelihood images/s"]
                      / p["likelihood images/s"], "> 1")]
            if bf16:
                rows.append(("training, sktvae bfloat16 / pythae",
                             results["sktvae bfloat16"]["train images/s"]
                             / p["train images/s"], "> 1"))
        report(f"sktvae against pythae: MLP VAE, {args.train} digits, {args.epochs} "
               "epochs, batch 128", rows)
    if "reference" not in skip:
        batch = 32
        reference = run_reference(x_train, args.batches, batch)
        fitted = run_fit(x_train, args.batches, batch)
        results["reference"] = {"reference-style frames/s": reference,
                                "fit frames/s": fitted}
        report("the paper's TVAE: fit against the reference code's loop (float32, "
               "batch 32)", [("reference-style loop frames/s", reference, ""),
                             ("fit frames/s (sequences precomputed)", fitted, ""),
                             ("fit / reference-style", fitted / reference, "> 1")])
    return results


if __name__ == "__main__":
    run(parse_args())
