"""The training loop: batches drawn by index from one tensor, no batch waiting for the
device, the same seed giving the same model on every path."""

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset, ValidSplit

from sktvae._net import TensorBatches, staged, tensor_batches

from conftest import tiny_tvae


def _rows(batches):
    return torch.cat([b[:, 0] for b, _ in batches]).tolist()


def test_every_row_once_per_epoch_in_a_seeded_order():
    X = torch.arange(10.0)[:, None].repeat(1, 3)
    batches = tensor_batches(Dataset(X), batch_size=4, shuffle=True)
    assert isinstance(batches, TensorBatches) and len(batches) == 3
    torch.manual_seed(0)
    first, second = _rows(batches), _rows(batches)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # reshuffled each epoch
    torch.manual_seed(0)
    assert _rows(batches) == first  # the same seed, the same order
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    assert all(y is None for _, y in batches)  # unsupervised: no targets
    assert _rows(tensor_batches(Dataset(X), batch_size=4)) == list(range(10))


def test_a_validation_subset_yields_its_rows_only_and_float16_stays_float16():
    X = torch.arange(8.0, dtype=torch.float16)[:, None]
    subset = torch.utils.data.Subset(Dataset(X), [1, 5, 6])
    batches = tensor_batches(subset, batch_size=2, shuffle=True)
    assert sorted(_rows(batches)) == [1.0, 5.0, 6.0]
    assert next(iter(batches))[0].dtype == torch.float16


def test_dataloader_options_and_other_datasets_get_a_dataloader():
    X = torch.zeros(6, 2)
    loader = tensor_batches(Dataset(X), batch_size=2, num_workers=0)
    assert isinstance(loader, torch.utils.data.DataLoader)
    labelled = Dataset(X, y=np.zeros(6))
    assert isinstance(tensor_batches(labelled, batch_size=2), torch.utils.data.DataLoader)


def test_data_moves_to_a_gpu_only_when_it_fits(monkeypatch):
    """For a GPU, data up to a quarter of its free memory is moved there whole, larger
    data is pinned (so that each batch's copy is asynchronous); on the CPU nothing."""
    X = torch.zeros(1000, 250)  # 1 MB
    done = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: done.append("pin") or self)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, device, **kw: done.append(
        str(device)) or self)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 10 ** 6, 0))
    staged(X, "cuda")  # 1 MB <= a quarter of 8 MB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * 10 ** 6, 0))
    staged(X, "cuda")
    assert staged(X, "cpu") is X
    assert done == ["cuda", "pin"]


def test_fits_with_index_batches_and_with_a_validation_split(X):
    est = tiny_tvae(max_epochs=3).fit(X)
    assert isinstance(est.net_.get_iterator(est.net_.get_dataset(torch.from_numpy(X)),
                                            training=True), TensorBatches)
    assert len(est.history_[-1, "batches"]) == 3  # 24 sequences in batches of 8
    split = tiny_tvae(max_epochs=2, train_split=ValidSplit(4)).fit(X)
    assert np.isfinite(split.history_[-1, "valid_loss"])
    again = tiny_tvae(max_epochs=3).fit(X)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


@pytest.mark.parametrize("params", [
    dict(iterator_train__num_workers=0),  # skorch's DataLoader
    dict(optimizer=torch.optim.Adam),     # unfused: the non-finite flag read each step
    dict(optimizer="sgd", lr=0.1),        # fused SGD
    dict(train_split=ValidSplit(4)),      # validation batches too
])
def test_every_training_path_is_reproducible(X, params):
    """The same seed gives the same model on each path the training loop can take."""
    a = tiny_tvae(max_epochs=2, **params).fit(X)
    b = tiny_tvae(max_epochs=2, **params).fit(X)
    if "iterator_train__num_workers" in params:
        assert isinstance(a.net_.get_iterator(a.net_.get_dataset(torch.from_numpy(X)),
                                              training=True), torch.utils.data.DataLoader)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]


def _count_host_reads(monkeypatch):
    """Count the calls that read a tensor's value on the host (and so, on a GPU,
    wait for it): ``item``, ``tolist``, ``float()``, ``bool()``, ``int()``."""
    calls = []
    for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
        original = getattr(torch._C.TensorBase, name)

        def counted(self, *args, _original=original, _name=name):
            calls.append(_name)
            return _original(self, *args)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def test_no_batch_waits_for_the_device(X, monkeypatch):
    """Losses stay on the device until the epoch ends and the non-finite check hands
    the fused optimizer a flag: a few host reads per epoch, none per batch."""
    reads = {}
    for batch_size in (24, 1):  # 1 and 24 batches an epoch
        est = tiny_tvae(batch_size=batch_size, max_epochs=3)
        calls = _count_host_reads(monkeypatch)
        est.fit(X)
        monkeypatch.undo()
        reads[batch_size] = calls
    assert len(est.history_[-1, "batches"]) == 24
    assert reads[1] == reads[24] and len(reads[1]) <= 4 * 3, reads
    losses = est.history_[:, "batches", :, "train_loss"]
    assert all(type(v) is float for epoch in losses for v in epoch)  # JSON-ready
    np.testing.assert_allclose(est.history_[-1, "train_loss"], np.mean(losses[-1]),
                               rtol=1e-6)
    assert not hasattr(est.net_.optimizer_, "found_inf")  # no flag left after fit


def test_losses_are_floats_after_an_interrupted_epoch_and_with_a_validation_split(X):
    from skorch.callbacks import Callback
    from skorch.dataset import ValidSplit

    class StopMidEpoch(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training and len(net.history[-1]["batches"]) == 2:
                raise KeyboardInterrupt  # as skorch's callbacks stop a fit

    est = tiny_tvae(max_epochs=2, callbacks=[StopMidEpoch()]).fit(X)
    assert [type(row["train_loss"]) for row in est.history_[-1, "batches"]] == [float] * 2
    split = tiny_tvae(max_epochs=2, train_split=ValidSplit(4)).fit(X)
    batches = split.history_[-1, "batches"]
    assert {type(row.get("valid_loss", row.get("train_loss"))) for row in batches} == {float}
    assert any("valid_loss" in row for row in batches)


def test_the_accelerate_path_keeps_skorchs_epoch():
    from skorch import NeuralNet

    from sktvae._net import AcceleratedTVAENet, TVAENet

    assert AcceleratedTVAENet.run_single_epoch is NeuralNet.run_single_epoch
    assert TVAENet.run_single_epoch is not NeuralNet.run_single_epoch


def test_checkpoints_save_a_json_history_each_epoch(X, tmp_path):
    """skorch's Checkpoint writes the history at each epoch's end, when the epoch's
    losses are floats already; the saved history loads into a fresh model."""
    import json

    from skorch.callbacks import Checkpoint

    checkpoint = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path),
                            f_history="history.json", load_best=False)
    est = tiny_tvae(max_epochs=3, callbacks=[checkpoint]).fit(X)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved) >= 1 and all(type(row["train_loss"]) is float
                                   for epoch in saved for row in epoch["batches"])
    fresh = tiny_tvae(max_epochs=0).fit(X)
    fresh.net_.load_params(f_history=str(tmp_path / "history.json"))
    assert fresh.history_[:, "train_loss"] == est.history_[:len(saved), "train_loss"]


def test_the_batch_order_can_be_kept(X):
    """``iterator_train__shuffle=False`` reaches the iterator (it was a TypeError: the
    estimator passed its own default beside it)."""
    est = tiny_tvae(iterator_train__shuffle=False, max_epochs=1).fit(X)
    batches = est.net_.get_iterator(est.net_.get_dataset(torch.from_numpy(X)), training=True)
    assert isinstance(batches, TensorBatches) and batches.shuffle is False
    assert tiny_tvae(max_epochs=1).fit(X).net_.iterator_train__shuffle is True


def test_the_epoch_log_is_plain_text_in_a_pipe_and_a_progress_bar_shows_numbers(X):
    from skorch.callbacks import ProgressBar

    lines = []
    tiny_tvae(max_epochs=3, verbose=1, callbacks__print_log__sink=lines.append).fit(X)
    assert len(lines) == 5 and not any("\x1b[" in line for line in lines)
    assert "*" in lines[2]  # the best loss, marked without colour

    class Seen(ProgressBar):
        def on_batch_end(self, net, **kwargs):
            self.values = getattr(self, "values", []) + [
                self._get_postfix_dict(net)["train_loss"]]

        def on_epoch_begin(self, net, **kwargs):
            pass

        def on_epoch_end(self, net, **kwargs):
            pass

    est = tiny_tvae(callbacks=[Seen()]).fit(X)
    values = dict(est.net_.callbacks_)["Seen"].values
    assert values and all(type(v) is float for v in values)
