"""Convolutional and custom encoders and decoders, and frame shapes."""

import pickle

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

from conftest import tiny_tvae, tiny_vae
from sktvae import SequenceTransformer
from sktvae._model import ConvDecoder, ConvEncoder
from sktvae.metrics import equivariance_error, forecast_error, roll_prediction_accuracy
from sktvae.plotting import plot_capsule_roll, plot_forecast


def images(n=24, side=8, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, channels * side * side)).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 9, 7), (2, 5, 12)])
def test_conv_decoder_mirrors_the_encoder_on_odd_sizes(shape):
    encoder = ConvEncoder(int(np.prod(shape)), 10, shape, channels=(4, 6))
    decoder = ConvDecoder(5, int(np.prod(shape)), shape, channels=(4, 6))
    x = torch.rand(3, int(np.prod(shape)))
    assert encoder(x).shape == (3, 10) and decoder(torch.rand(3, 5)).shape == x.shape
    # more convolutions than halvings: axes down to one value are kept, not lost
    deep = ConvEncoder(int(np.prod(shape)), 10, shape, channels=(4, 4, 4, 4))
    deep_decoder = ConvDecoder(5, int(np.prod(shape)), shape, channels=(4, 4, 4, 4))
    assert deep(x).shape == (3, 10) and deep_decoder(torch.rand(3, 5)).shape == x.shape


@pytest.mark.parametrize("width", [1, 2, 7, 64])
def test_a_1d_signal_is_convolved_along_its_values(width):
    encoder = ConvEncoder(width, 6, (1, 1, width), channels=(4, 8))
    decoder = ConvDecoder(3, width, (1, 1, width), channels=(4, 8))
    first = encoder.conv[0]
    assert first.kernel_size == ((1, 4) if width >= 2 else (1, 1))
    assert encoder(torch.rand(2, width)).shape == (2, 6)
    assert decoder(torch.rand(2, 3)).shape == (2, width)


def test_frame_shape_infers_one_minus_one_entry():
    X = images(n=8, side=4)  # frames of 16 values
    est = tiny_tvae(sequence_length=1, temporal_window=0, encoder="conv",
                    encoder__channels=(2,), frame_shape=(1, 1, -1)).fit(X)
    assert est.frame_shape_ == (1, 1, 16)
    assert tiny_tvae(sequence_length=1, temporal_window=0, frame_shape=(1, -1, 4)).fit(
        X).frame_shape_ == (1, 4, 4)
    with pytest.raises(ValueError, match=r"not a multiple of 3, so -1 cannot be inferred"):
        tiny_tvae(sequence_length=1, temporal_window=0, frame_shape=(3, -1, 1)).fit(X)
    with pytest.raises(ValueError, match="one of which may be -1"):
        tiny_tvae(sequence_length=1, temporal_window=0, frame_shape=(-1, -1, 4)).fit(X)


@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_a_conv_model_does_everything_an_mlp_one_does(make, tmp_path):
    X = SequenceTransformer(sequence_length=4, image_shape=(8, 8),
                            random_state=0).fit_transform(images())
    est = make(encoder="conv", encoder__channels=(4, 8)).fit(X)  # frame shape from X
    assert est.frame_shape_ == (1, 8, 8)
    assert isinstance(est.net_.module_.encoder_z.net, ConvEncoder)
    assert isinstance(est.net_.module_.decoder, ConvDecoder)  # "mirror"
    n = est._n_latent
    assert est.transform(X).shape == (24, 4 * n)
    assert np.isfinite(est.score_samples(X)).all()
    assert est.inverse_transform(est.transform(X[:2])).shape == (2, X.shape[1])
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    again = make(encoder="conv", encoder__channels=(4, 8), frame_shape=(1, 8, 8)).fit(
        np.asarray(X))  # a plain array: the shape given
    np.testing.assert_allclose(again.transform(X), est.transform(X), rtol=1e-5, atol=1e-6)
    # the measures, forecasts, plots and skorch's own persistence read it as any model
    capsules = dict(capsule_shape=(2, 2)) if make is tiny_vae else {}
    assert 0 <= roll_prediction_accuracy(est, X, **capsules) <= 1
    assert np.isfinite(equivariance_error(est, X, center=True, **capsules))
    assert forecast_error(est, X, n_observed=2).mse.shape == (2,)
    display = plot_capsule_roll(est, X, (8, 8), n_sequences=1) if make is tiny_tvae \
        else plot_forecast(est, X, (8, 8), n_observed=2, n_sequences=1)
    assert display.predicted.shape[-1] == 64
    params = tmp_path / "conv.pt"
    est.net_.save_params(f_params=params)
    fresh = make(encoder="conv", encoder__channels=(4, 8), max_epochs=0).fit(X[:2])
    fresh.net_.load_params(f_params=params)
    np.testing.assert_array_equal(fresh.transform(X), est.transform(X))
    search = GridSearchCV(make(encoder="conv", max_epochs=1),
                          {"encoder__channels": [(2,), (4, 8)]}, cv=2).fit(X)
    assert search.best_params_["encoder__channels"] in [(2,), (4, 8)]
    with pytest.raises(ValueError, match=r"encoder__channels=\(4, 16\), but the fitted "
                                         r"model was built with encoder__channels=\(4, 8\)"):
        est.set_params(encoder__channels=(4, 16)).transform(X)


class TinyResNet(nn.Module):
    """A user's encoder: the contract's constructor and a residual block."""

    def __init__(self, n_features, n_outputs, frame_shape, width=16):
        super().__init__()
        self.frame_shape = frame_shape
        self.inp = nn.Linear(n_features, width)
        self.block = nn.Sequential(nn.ReLU(), nn.Linear(width, width))
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + self.block(h))


def test_a_custom_encoder_class_gets_the_documented_arguments(X):
    tvae = tiny_tvae(encoder=TinyResNet, encoder__width=12).fit(X)
    net = tvae.net_.module_.encoder_z.net
    assert isinstance(net, TinyResNet) and net.inp.out_features == 12
    assert net.frame_shape is None and net.out.out_features == 2 * tvae._n_latent
    assert tvae.net_.module_.encoder_u.net is not net  # q(u|x) has its own copy
    assert np.isfinite(tvae.score(X))
    # u_mean_init shifts the mean half of the last layer with a bias of 2 n outputs.
    n, biases = tvae._n_latent, []
    for shift in (0.0, 1.0):
        torch.manual_seed(0)
        unfitted = tiny_tvae(encoder=TinyResNet, u_mean_init=shift)
        unfitted.frame_shape_, unfitted.sequence_length_ = None, 4
        module = unfitted._build_module(6)
        biases.append(module.encoder_u.net.out.bias.detach())
    np.testing.assert_allclose((biases[1] - biases[0])[:n], 1.0, rtol=1e-6)
    np.testing.assert_array_equal((biases[1] - biases[0])[n:], 0.0)
    vae = tiny_vae(encoder=TinyResNet, decoder=TinyResNet).fit(X)
    assert isinstance(vae.net_.module_.decoder, TinyResNet)


class WrongShape(nn.Module):
    def __init__(self, n_features, n_outputs, frame_shape):
        super().__init__()
        self.layer = nn.Linear(n_features, n_outputs + 1)

    def forward(self, x):
        return self.layer(x)


def test_bad_networks_and_frame_shapes_are_named(X):
    with pytest.raises(ValueError, match=r"The encoder \(WrongShape\) maps \(2, 6\) to "
                                         r"\(2, 17\); it must return \(2, 16\)"):
        tiny_tvae(encoder=WrongShape).fit(X)
    with pytest.raises(TypeError, match="encoder must be 'mlp', 'conv' or a torch.nn.Module"):
        tiny_tvae(encoder=dict).fit(X)
    with pytest.raises(ValueError, match=r"encoder='conv' .*needs frame_shape"):
        tiny_tvae(encoder="conv").fit(X)
    with pytest.raises(ValueError, match=r"frame_shape=\(1, 2, 2\) has 4 values, but a "
                                         "frame of X has 6"):
        tiny_tvae(frame_shape=(1, 2, 2)).fit(X)
    with pytest.raises(ValueError, match="frame_shape must be \\(channels, height, width\\)"):
        tiny_tvae(frame_shape=(0, 2, 3)).fit(X)
    with pytest.raises(ValueError, match="encoder__width: the MLP encoder takes its sizes"):
        tiny_tvae(encoder__width=3).fit(X)
    seq = SequenceTransformer(sequence_length=4, image_shape=(8, 8), random_state=0)
    with pytest.raises(ValueError, match=r"frame_shape=\(1, 4, 16\), but X holds frames "
                                         r"of shape \(1, 8, 8\)"):
        tiny_tvae(frame_shape=(1, 4, 16)).fit(seq.fit_transform(images()))


def test_a_network_breaking_its_contract_is_told_the_contract(X):
    """A class with the wrong constructor, or one right for two rows only (issue 42)."""
    from torch import nn

    class NoFrameShape(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.lin = nn.Linear(n_in, n_out)

        def forward(self, x):
            return self.lin(x)

    class TwoRowsOnly(nn.Module):
        def __init__(self, n_in, n_out, frame_shape):
            super().__init__()
            self.lin = nn.Linear(n_in, n_out)

        def forward(self, x):
            return self.lin(x)[:2]

    with pytest.raises(TypeError, match=r"encoder=NoFrameShape could not be built .*"
                                        r"called as NoFrameShape\(n_in, n_out, "
                                        r"frame_shape, \*\*params\)"):
        tiny_tvae(encoder=NoFrameShape).fit(X)
    with pytest.raises(ValueError, match=r"maps \(3, 6\) to \(2, 16\); it must return "
                                         r"\(3, 16\) for any number of rows"):
        tiny_tvae(encoder=TwoRowsOnly).fit(X)
    with pytest.raises(ValueError, match="encoder__channels must be a non-empty"):
        tiny_tvae(encoder="conv", frame_shape=(1, 2, 3), encoder__channels=(-4,)).fit(X)
    est = tiny_tvae(optimizer__foreach=True).fit(X)  # foreach turns fusing off
    assert est.net_.optimizer_.defaults["foreach"] and not est.net_.optimizer_.defaults[
        "fused"]
