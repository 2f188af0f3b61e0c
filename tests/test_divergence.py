"""A fit that blows up stops with a clear error and the last good state restored,
whatever the optimizer and likelihood; continued training never loses a good model."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from conftest import tiny_tvae, tiny_vae


@pytest.fixture
def X():
    return np.random.default_rng(0).random((64, 24)).astype(np.float32)


@pytest.mark.parametrize("params", [
    dict(lr=10.0),  # Adam: the encoders' log-variance runs into its clamp, finite
    dict(optimizer="adamw", lr=1e6),
    dict(optimizer=torch.optim.RMSprop, lr=1e6),
    dict(optimizer=torch.optim.LBFGS, lr=1e6),
    dict(optimizer="sgd", lr=1e9),
    dict(optimizer="sgd", lr=1e9, likelihood="gaussian"),
])
@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_a_fit_that_blows_up_raises_and_restores_the_model_it_began_with(X, make, params):
    likelihood = params.get("likelihood", "bernoulli")
    before = make(max_epochs=0, likelihood=likelihood).fit(X)  # the same initial model
    est = make(max_epochs=5, **params)
    with pytest.raises(FloatingPointError, match="restored to the last state checked "
                                                 "good, as it was when this call began"):
        est.fit(X)
    np.testing.assert_allclose(est.transform(X), before.transform(X), rtol=1e-6)
    assert np.isfinite(est.score_samples(X)).all()


def test_continued_training_that_blows_up_keeps_the_good_model(X):
    est = tiny_tvae(max_epochs=5).fit(X)
    good_T, good_score = est.transform(X), est.score(X)
    state = {k: v.clone() for k, v in est.net_.optimizer_.state_dict()["state"][0].items()}
    est.set_params(lr=1e6)
    with pytest.raises(FloatingPointError, match="during epoch 6.*as it was when this "
                                                 "call began.*lr=1000000.0"):
        est.partial_fit(X)
    np.testing.assert_array_equal(est.transform(X), good_T)
    assert est.score(X) == good_score
    for key, value in est.net_.optimizer_.state_dict()["state"][0].items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    est.set_params(lr=1e-3).partial_fit(X)  # and it goes on from there
    assert np.isfinite(est.score(X))


class Snapshot(Callback):
    """The module's state after each training batch."""

    def on_train_begin(self, net, **kwargs):
        self.states = [self.record(net)]

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.states.append(self.record(net))

    @staticmethod
    def record(net):
        return {k: v.clone() for k, v in net.module_.state_dict().items()}


class Poison(Callback):
    """Makes a weight NaN before the fourth training batch."""

    def on_train_begin(self, net, **kwargs):
        self.batches = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        self.batches += training
        if self.batches == 4:
            with torch.no_grad():
                net.module_.decoder[-1].bias[0] = float("nan")


@pytest.mark.parametrize("optimizer, check_every, restored, n_losses", [
    ("adam", 256, "as it was when this call began", 8),
    ("sgd", 256, "as it was when this call began", 8),
    ("adam", 1, "after batch 2 of epoch 1", 4),
    (torch.optim.Adam, 1, "after batch 2 of epoch 1", 3),
    (torch.optim.Adam, 256, "as it was when this call began", 3),
])
def test_the_state_restored_is_the_last_one_checked_good(X, optimizer, check_every,
                                                         restored, n_losses):
    """Batches in order: three train, the fourth meets a NaN weight, four more follow.
    A state counts as good once the batches after it ran clean, so with a check after
    every batch the state after batch 2 is restored (batch 3 ran clean from it);
    otherwise the state the call began with. A fused optimizer's epoch goes on to the
    check (its steps skipped); another optimizer stops before the bad step."""
    est = tiny_tvae(max_epochs=2, callbacks=[Snapshot(), Poison()], optimizer=optimizer,
                    iterator_train__shuffle=False,
                    callbacks__stop_on_non_finite__check_every=check_every)
    with pytest.raises(FloatingPointError, match=f"during epoch 1.*{restored}"):
        est.fit(X)
    assert len(est.history_[-1, "batches", :, "train_loss"]) == n_losses
    assert not hasattr(est.net_.optimizer_, "found_inf")  # the flag is taken back
    states = dict(est.net_.callbacks_)["Snapshot"].states
    assert not torch.equal(states[2]["decoder.0.weight"], states[0]["decoder.0.weight"])
    expected = states[2 if "batch 2" in restored else 0]
    for name, value in est.net_.module_.state_dict().items():
        if name != "checksum":
            torch.testing.assert_close(value, expected[name], rtol=0, atol=0)
    assert np.isfinite(est.transform(X)).all()


def test_an_encoder_variance_at_its_bound_is_a_blow_up(X):
    """A log-variance at the clamp passes no gradient and leaves the loss finite; its
    KL alone (5.7e25) puts the loss past the bound, which counts as a blow-up."""
    est = tiny_vae(max_epochs=0).fit(X)
    with torch.no_grad():
        est.net_.module_.encoder_z.net[-1].bias[4:] = 1e3  # the log-variance half
    with pytest.raises(FloatingPointError, match="An encoder's log-variance reached its "
                                                 "clamp.*; A training loss passed 1e20"):
        est.set_params(max_epochs=1, warm_start=True).fit(X)
    # restored to the state the call began with: the planted bias, no step taken
    assert (est.net_.module_.encoder_z.net[-1].bias[4:] == 1e3).all()


@pytest.mark.parametrize("shift, scale", [(100.0, 1.0), (0.0, 100.0), (-1e3, 1e3)])
def test_unscaled_gaussian_data_trains_as_standardised_data_does(shift, scale):
    """The module standardises what the encoders read and maps the decoder's units
    back: the fit of a * x + b is the fit of x, its log-likelihood lower by the
    Jacobian, sum(log a) per frame."""
    Xg = np.random.default_rng(0).normal(size=(64, 24)).astype(np.float32)
    base = tiny_tvae(likelihood="gaussian", max_epochs=3).fit(Xg)
    moved = tiny_tvae(likelihood="gaussian", max_epochs=3).fit(Xg * scale + shift)
    jacobian = 4 * 6 * np.log(scale)
    np.testing.assert_allclose(moved.score_samples(Xg * scale + shift),
                               base.score_samples(Xg) - jacobian, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(moved.inverse_transform(moved.transform(Xg * scale + shift)),
                               base.inverse_transform(base.transform(Xg)) * scale + shift,
                               rtol=1e-3, atol=1e-3 * scale)


def test_a_float16_gradient_scaler_may_meet_infinite_gradients():
    """With accelerate's float16 scaler, infinite gradients are the scaler's to skip;
    only a non-finite loss stops training. Without it, they stop it before the step."""
    from types import SimpleNamespace

    from sktvae._net import StopOnNonFiniteLoss

    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.tensor([1.0, float("inf"), 0.0])
    plain = SimpleNamespace(history=[{}], lr=0.1)
    scaled = SimpleNamespace(history=[{}], lr=0.1,
                             accelerator=SimpleNamespace(scaler=object()))
    guard = StopOnNonFiniteLoss()
    with pytest.raises(FloatingPointError, match="A gradient became non-finite during "
                                                 "epoch 1.*stopped before that step"):
        guard.on_grad_computed(plain, [("w", param)])
    guard.on_grad_computed(scaled, [("w", param)])
    with pytest.raises(FloatingPointError, match="The loss became inf"):
        guard._fail(scaled, "The loss became inf")


def test_check_every_must_be_a_count(X):
    for bad in ("a", 0, 1.5, True):
        with pytest.raises(ValueError, match="check_every must be a positive int"):
            tiny_tvae(callbacks__stop_on_non_finite__check_every=bad).fit(X)


@pytest.mark.parametrize("amp_devices", [("cpu", "cuda"), ()])
def test_non_finite_values_are_noted_on_the_device_and_stay_noted(amp_devices, monkeypatch):
    """The flag goes to 1 on an inf or a NaN anywhere and stays there; gradients are
    left as they were. ``()``: the per-tensor test other devices get."""
    from sktvae import _net

    monkeypatch.setattr(_net, "_AMP_CHECK_DEVICES", amp_devices)
    found = torch.zeros(())
    grads = [torch.ones(3), torch.arange(4.0).view(2, 2)]
    _net._note_non_finite(grads, found)
    assert found.item() == 0.0
    for bad in (float("nan"), float("inf"), -float("inf")):
        for dtype in (torch.float32, torch.bfloat16):  # a group of each dtype
            found.zero_()
            _net._note_non_finite(grads + [torch.tensor([1.0, bad], dtype=dtype)], found)
            assert found.item() == 1.0
        _net._note_non_finite(grads, found)
        assert found.item() == 1.0  # sticky
    torch.testing.assert_close(grads[1], torch.arange(4.0).view(2, 2), rtol=0, atol=0)
