"""Hyper-parameter search on a Dask cluster through joblib, as scikit-learn users scale."""

import pytest

distributed = pytest.importorskip(
    "distributed", reason="the distributed extra: pip install -e '.[distributed]'")
import joblib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from conftest import tiny_tvae  # noqa: E402


@pytest.mark.slow
def test_grid_search_on_a_local_dask_cluster_matches_the_local_run():
    X = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    grid = {"coherence": ["shifting", "stationary"], "temporal_window": [0, 1]}
    local = GridSearchCV(tiny_tvae(), grid, cv=2).fit(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.run(torch.set_num_threads, 1)  # one torch thread per worker process
        with joblib.parallel_backend("dask"):
            remote = GridSearchCV(tiny_tvae(), grid, cv=2, n_jobs=-1).fit(X)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-5)
