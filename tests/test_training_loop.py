"""The low-overhead training path: batches drawn by index from one tensor."""

import numpy as np
import torch
from skorch.dataset import Dataset, ValidSplit

from sktvae._net import TensorBatches, tensor_batches

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
    X = torch.zeros(1000, 250)  # 1 MB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 10 ** 6, 0))
    assert TensorBatches._fits(X, "cuda")  # 1 MB <= a quarter of 8 MB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * 10 ** 6, 0))
    assert not TensorBatches._fits(X, "cuda")


def test_fits_with_index_batches_and_with_a_validation_split(X):
    est = tiny_tvae(max_epochs=3).fit(X)
    assert isinstance(est.net_.get_iterator(est.net_.get_dataset(torch.from_numpy(X)),
                                            training=True), TensorBatches)
    assert len(est.history_[-1, "batches"]) == 3  # 24 sequences in batches of 8
    split = tiny_tvae(max_epochs=2, train_split=ValidSplit(4)).fit(X)
    assert np.isfinite(split.history_[-1, "valid_loss"])
    again = tiny_tvae(max_epochs=3).fit(X)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_the_dataloader_path_is_reproducible_too(X):
    """With a DataLoader option the batches come from skorch's loader: the same seed
    still gives the same model."""
    a = tiny_tvae(max_epochs=2, iterator_train__num_workers=0).fit(X)
    b = tiny_tvae(max_epochs=2, iterator_train__num_workers=0).fit(X)
    assert isinstance(a.net_.get_iterator(a.net_.get_dataset(torch.from_numpy(X)),
                                          training=True), torch.utils.data.DataLoader)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
