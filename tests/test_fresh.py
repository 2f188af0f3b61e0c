"""Sequences drawn afresh every epoch: new sequences each epoch, memory of the
images, one fixed draw outside training, Pipelines and grid searches as usual."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from sktvae import FreshSequences, SequenceTransformer
from sktvae.datasets import load_digits_images

from conftest import tiny_tvae

IMAGES = load_digits_images(size=8, return_X_y=True)[0][:60]


def fresh(**params):
    return SequenceTransformer(**{**dict(sequence_length=4, image_shape=(8, 8),
                                         random_state=0, fresh_each_epoch=True),
                                  **params}).fit_transform(IMAGES)


class Batches(Callback):
    """The training batches each epoch."""

    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.epochs[-1].append(batch[0].clone())


def test_every_epoch_trains_on_new_sequences_and_a_seed_repeats_them():
    X = fresh()
    assert isinstance(X, FreshSequences) and X.shape == (60, 4 * 64)
    est = tiny_tvae(max_epochs=3, callbacks=[Batches()],
                    iterator_train__shuffle=False).fit(X)
    epochs = [np.concatenate([b.numpy() for b in e]) for e in
              dict(est.net_.callbacks_)["Batches"].epochs]
    assert all(e.shape == (60, 4, 64) for e in epochs)
    assert not np.allclose(epochs[0], epochs[1]) and not np.allclose(epochs[1], epochs[2])
    # frame 0 of every sequence is the image at another phase; each is a rotation cycle
    again = tiny_tvae(max_epochs=3).fit(X)
    np.testing.assert_array_equal(tiny_tvae(max_epochs=3).fit(X).transform(X),
                                  again.transform(X))


def test_training_renders_a_batch_at_a_time_and_the_rest_sees_one_fixed_draw():
    X = fresh()
    rendered = []
    draw = X.draw
    X.draw = lambda rows, seed: rendered.append(len(rows)) or draw(rows, seed)
    est = tiny_tvae(batch_size=8).fit(X)
    assert max(rendered) == 8  # never the whole set of sequences
    fixed = np.asarray(X)
    np.testing.assert_array_equal(fixed, np.asarray(X))
    assert isinstance(X[5:9], FreshSequences)  # a split stays fresh
    np.testing.assert_array_equal(np.asarray(X[5:9]), fixed[5:9])
    np.testing.assert_array_equal(np.asarray(X[[7, 2]]), fixed[[7, 2]])
    np.testing.assert_array_equal(X[3], fixed[3])
    np.testing.assert_allclose(est.transform(X), est.transform(fixed))
    np.testing.assert_allclose(est.score_samples(X), est.score_samples(fixed))


def test_a_pipeline_and_a_grid_search_draw_afresh_and_name_the_frames_once():
    pipe = Pipeline([("seq", SequenceTransformer(sequence_length=4, image_shape=(8, 8),
                                                 random_state=0, fresh_each_epoch=True)),
                     ("tvae", tiny_tvae())])
    search = GridSearchCV(pipe, {"tvae__lr": [1e-3, 1e-2]}, cv=2).fit(IMAGES)
    assert np.isfinite(search.best_score_)
    assert np.isfinite(search.best_estimator_.score(IMAGES))


def test_a_grid_search_on_fresh_sequences_keeps_them_fresh_in_each_fold():
    from sklearn.model_selection import GridSearchCV

    X = fresh()
    search = GridSearchCV(tiny_tvae(max_epochs=2, callbacks=[Batches()],
                                    iterator_train__shuffle=False),
                          {"lr": [1e-3]}, cv=2).fit(X)
    epochs = dict(search.best_estimator_.net_.callbacks_)["Batches"].epochs
    first, second = (np.concatenate([b.numpy() for b in e]) for e in epochs)
    assert not np.allclose(first, second)


def test_fresh_sequences_are_checked_as_arrays_are():
    X = fresh()
    with pytest.raises(ValueError, match="holds sequences of 4 frames"):
        tiny_tvae(sequence_length=2).fit(X)
    with pytest.raises(ValueError, match="not through a DataLoader"):
        tiny_tvae(iterator_train__num_workers=0).fit(X)
    est = tiny_tvae().fit(X)
    with pytest.raises(ValueError, match="expecting 256 features"):
        est.partial_fit(fresh(image_shape=(4, 16)).__class__(
            X.draw, 60, 4, (1, 4, 4)))
    with pytest.raises(ValueError, match="needs X in \\[0, 1\\]"):
        tiny_tvae().fit(SequenceTransformer(sequence_length=4, image_shape=(8, 8),
                                            fresh_each_epoch=True).fit_transform(IMAGES * 2))
    with pytest.raises(IndexError, match="rows only"):
        X[0, 1]
