"""A CI-sized run of benchmarks/paper_table.py: the whole pipeline, tiny data, 1 epoch.

It checks only that every model trains and is measured end to end; the paper's claims
are measured by the benchmark itself, not here.
"""

import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from sktvae import TopographicVAE
from sktvae.datasets import load_digits_images

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "studies"))
import paper_table  # noqa: E402


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state: an Accelerator built later would inherit
    this test's bfloat16 setting unless it is reset."""
    yield
    try:
        from accelerate.state import AcceleratorState
    except ImportError:  # the distributed extra is not installed
        return
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_paper_table_pipeline_end_to_end(tmp_path, capsys, fresh_accelerate_state):
    images = load_digits_images(size=28).data.reshape(-1, 28, 28)
    args = paper_table.parse_args(["--epochs", "1", "--hidden", "16", "--batch-size", "8",
                                   "--single-epochs", "1", "--single-models", "VAE,TVAE L=2",
                                   "--precision", "bf16", "--out", str(tmp_path / "table.json")])
    assert paper_table.parse_args([]).single_models == "VAE,TVAE L=S/2"
    results = paper_table.run(images[:12], images[100:104], args)
    single = results.pop("single")
    assert list(results) == ["VAE", "TVAE L=0", "BubbleVAE", "TVAE L=2", "TVAE L=S/2"]
    for name, result in results.items():
        for family in paper_table.FAMILIES:
            check_metrics(result[family])
        assert len(result["held-out ELBO per frame per epoch"]) == 1
    assert list(single) == list(paper_table.SINGLE_FAMILIES)
    for family, by_model in single.items():
        assert list(by_model) == ["VAE", "TVAE L=2"]
        for result in by_model.values():
            assert list(result) == ["fit seconds", "train loss per epoch", family]
            check_metrics(result[family])
    assert (tmp_path / "table.json").exists()
    out = capsys.readouterr().out
    assert "rotation: ll/frame" in out and "trained on hue only" in out

    import figures  # benchmarks/figures.py draws the JSON
    import matplotlib.image

    written = figures.main([str(tmp_path / "table.json"), "--out", str(tmp_path / "png")])
    assert [p.name for p in written] == ["table1_bars.png", "table1_learning_curves.png",
                                         "table1.csv"]
    bars = matplotlib.image.imread(written[0])
    assert bars.shape[0] > 100 and bars[..., :3].std() > 0.05  # something was drawn
    import csv
    rows = list(csv.reader(written[2].open()))
    assert rows[0] == ["model", *paper_table.FAMILIES] and len(rows) == 1 + len(results)
    vae_rotation = results["VAE"]["rotation"]
    assert rows[1][1] == (f"{vae_rotation['ll/frame']:.1f}, 1.000, "
                          f"{vae_rotation['roll acc']:.2f}, {vae_rotation['CapCorr']:.2f}")


@pytest.mark.parametrize("fast_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_precision_auto_trains_in_bf16_only_where_the_hardware_has_it(
        monkeypatch, fast_bf16, expected):
    """Emulated bfloat16 (a CPU without AMX or AVX-512 BF16) is several times slower than
    float32, so the default picks by hardware; an explicit choice is kept."""
    monkeypatch.setattr(paper_table, "has_fast_bf16", lambda device="cpu": fast_bf16)
    assert paper_table.parse_args([]).precision == expected
    assert paper_table.parse_args(["--precision", "bf16"]).precision == "bf16"
    assert paper_table.parse_args(["--precision", "fp32"]).precision == "fp32"


def test_models_share_u_mean_init():
    """Every TVAE of the table starts q(u|x) where --u-mean-init says; 0 reproduces the
    reference's start."""
    for value in (1.0, 0.0):
        args = paper_table.parse_args(["--u-mean-init", str(value)])
        chosen = paper_table.models({}, args.mu_init, u_mean_init=args.u_mean_init)
        assert [m.u_mean_init for k, m in chosen.items() if k != "VAE"] == [value] * 4


def check_metrics(metrics):
    assert set(metrics) == {"ll/frame", "E_eq", "E_eq centred", "roll acc",
                            "roll acc by shift", "CapCorr"}
    assert np.isfinite(metrics["ll/frame"]) and metrics["E_eq"] >= 0
    assert 0 <= metrics["roll acc"] <= 1
    assert len(metrics["roll acc by shift"]) == paper_table.S - 1
    assert np.isclose(np.mean(metrics["roll acc by shift"]), metrics["roll acc"], atol=1e-3)


def test_held_out_elbo_callback_leaves_training_unchanged():
    """The per-epoch ELBO is seeded for comparability, but must not reseed training."""
    images = load_digits_images(size=28).data.reshape(-1, 28, 28)
    X = paper_table.sequences(images[:8], paper_table.FAMILIES, "random", seed=0)
    params = dict(n_capsules=2, capsule_dim=paper_table.S, sequence_length=paper_table.S,
                  hidden_layer_sizes=(8,), max_epochs=3, batch_size=4, random_state=0)
    plain = TopographicVAE(**params).fit(X)
    watched = TopographicVAE(**params, callbacks=[paper_table.HeldOutELBO(X[:2])]).fit(X)
    assert watched.history_[:, "train_loss"] == plain.history_[:, "train_loss"]
    assert len(watched.history_[:, "test_elbo_per_frame"]) == 3


def test_held_out_elbo_is_float32_on_a_module_accelerate_prepared_for_bfloat16(
        fresh_accelerate_state, tmp_path):
    """accelerate wraps a prepared module's forward in its autocast, and the per-epoch
    callback runs inside training, where the module is prepared: the ELBO must still be
    float32, as every other measurement is, in one process and in several."""
    import copy

    Accelerator = pytest.importorskip(
        "accelerate", reason="the distributed extra: pip install -e '.[distributed]'"
    ).Accelerator

    images = load_digits_images(size=28).data.reshape(-1, 28, 28)
    X = paper_table.sequences(images[:4], paper_table.FAMILIES, "random", seed=0)
    est = TopographicVAE(2, paper_table.S, paper_table.S, hidden_layer_sizes=(8,),
                         max_epochs=1, random_state=0).fit(X)
    plain = est.net_.module_.eval()
    prepared = Accelerator(cpu=True, mixed_precision="bf16").prepare(copy.deepcopy(plain))
    assert "_original_forward" in vars(prepared)  # the wrapper this test is about
    assert paper_table.elbo_per_frame(prepared, X) == paper_table.elbo_per_frame(plain, X)

    # With several processes accelerate puts DistributedDataParallel around the wrapped
    # module (here a process group of one, which is the same wrapping).
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path}/store",
                                         rank=0, world_size=1)
    try:
        parallel = torch.nn.parallel.DistributedDataParallel(prepared)
        assert paper_table.elbo_per_frame(parallel, X) == paper_table.elbo_per_frame(plain, X)
    finally:
        torch.distributed.destroy_process_group()


def _turns_and_changes_hue(X):
    """Per sequence of ``X`` (3-channel frames): does the digit turn, does its hue change?"""
    frames = X.reshape(len(X), paper_table.S, 3, -1).astype(np.float32)
    brightness = frames.sum(2)  # (sequence, frame, pixel): moves when the digit turns
    moves = np.abs(brightness - brightness[:, :1]).mean((1, 2)) / brightness.mean((1, 2))
    colour = (frames * (brightness[:, :, None] > 0.3)).sum(-1)
    colour /= colour.sum(-1, keepdims=True)  # the share of each channel: moves with hue
    recolours = np.abs(colour - colour[:, :1]).sum(-1).mean(1)
    return moves > 0.3, recolours > 0.5


def test_training_sequences_compose_the_given_share_and_leave_the_rest_one_family():
    """The benchmarks' training set with --compose-fraction: the last share of the
    sequences rotate and change hue at once, the others do one of the two."""
    images = load_digits_images(size=28).data.reshape(-1, 28, 28)[:12]
    X, n_composed = paper_table.training_sequences(
        images, ["rotation", "hue"], "random", compose_fraction=0.5)
    assert X.shape[0] == 12 and n_composed == 6
    turns, changes_hue = _turns_and_changes_hue(X)
    np.testing.assert_array_equal(turns[:6] ^ changes_hue[:6], True)  # one family each
    assert turns[:6].any() and changes_hue[:6].any()
    np.testing.assert_array_equal(turns[6:] & changes_hue[6:], True)  # both at once
    X_all, n_all = paper_table.training_sequences(images[:4], ["rotation", "hue"],
                                                  "random", compose_fraction=1.0)
    assert X_all.shape[0] == 4 and n_all == 4
    with pytest.raises(ValueError, match="compose_fraction"):
        paper_table.training_sequences(images[:4], ["hue"], "random", compose_fraction=1.5)


def test_training_sequences_compose_only_the_given_families():
    """``composed_families``: the composed share takes only those transformations; the
    one-family share is the same as without it."""
    images = load_digits_images(size=28).data.reshape(-1, 28, 28)[:12]
    X, _ = paper_table.training_sequences(images, ["rotation", "hue"], "random", 0.5)
    X_hue, n_composed = paper_table.training_sequences(
        images, ["rotation", "hue"], "random", 0.5, composed_families=["hue"])
    assert n_composed == 6
    np.testing.assert_array_equal(X_hue[:6], X[:6])
    turns, changes_hue = _turns_and_changes_hue(X_hue[6:])
    np.testing.assert_array_equal(changes_hue & ~turns, True)  # hue alone
    for bad in (["scale"], []):
        with pytest.raises(ValueError, match="composed_families"):
            paper_table.training_sequences(images[:4], ["rotation", "hue"], "random", 0.5,
                                           composed_families=bad)


def test_training_families_says_what_moves_in_each_training_sequence():
    """``training_families`` replays the transformer's choice of family: each one-family
    sequence does what its label says, and the composed share is labelled so."""
    images = load_digits_images(size=28).data.reshape(-1, 28, 28)[:24]
    X, _ = paper_table.training_sequences(images, ["rotation", "hue"], "random", 0.25)
    labels = paper_table.training_families(24, ["rotation", "hue"], "random", 0.25)
    turns, changes_hue = _turns_and_changes_hue(X)
    assert set(labels[:18]) == {"rotation", "hue"}
    np.testing.assert_array_equal(turns[:18], labels[:18] == "rotation")
    np.testing.assert_array_equal(changes_hue[:18], labels[:18] == "hue")
    np.testing.assert_array_equal(labels[18:], "composed")
    only_hue = paper_table.training_families(24, ["rotation", "hue"], "random", 0.25,
                                             composed_families=["hue"])
    np.testing.assert_array_equal(only_hue[18:], "hue")
    np.testing.assert_array_equal(
        paper_table.training_families(4, ["rotation", "hue"], "compose"), "composed")


def test_generalization_benchmark_end_to_end(tmp_path, capsys):
    import json

    import generalization

    images = load_digits_images(size=28).data.reshape(-1, 28, 28)
    args = generalization.parse_args(["--epochs", "1", "--hidden", "16", "--batch-size",
                                      "8", "--precision", "float32",
                                      "--out", str(tmp_path / "g.json")])
    results = generalization.run(images[:9], images[100:103], args)
    assert list(results) == ["VAE", "BubbleVAE", "TVAE L=6", "TVAE causal L=12"]
    for result in results.values():
        assert set(result) >= set(generalization.TEST_SETS)
        composed = result["rotation+hue"]
        assert len(composed["forecast mse from half"]) == paper_table.S // 2
        assert len(composed["forecast mse from one"]) == paper_table.S - 1
        assert np.isfinite(composed["ll/frame"]) and 0 <= composed["roll acc"] <= 1
    assert "Unseen combinations" in capsys.readouterr().out
    saved = json.loads((tmp_path / "g.json").read_text())["results"]
    assert saved["VAE"]["rotation"]["roll acc"] == results["VAE"]["rotation"]["roll acc"]
    rows = dict((name, value) for name, value, _ in generalization.targets(results))
    assert rows["TVAE L=6: worst forecast mse / VAE's (half seen)"] == max(
        a / b for a, b in zip(results["TVAE L=6"]["rotation+hue"]["forecast mse from half"],
                              results["VAE"]["rotation+hue"]["forecast mse from half"]))


@pytest.mark.slow
def test_sprites_table_end_to_end(tmp_path, capsys):
    import json

    import sprites_table

    args = sprites_table.parse_args(["--train", "6", "--test", "2", "--epochs", "1",
                                     "--image-size", "16", "--hidden", "8",
                                     "--batch-size", "4", "--precision", "float32",
                                     "--out", str(tmp_path / "s.json")])
    results = sprites_table.run(args)
    assert list(results) == ["VAE", "TVAE L=0", "BubbleVAE", "TVAE L=2", "TVAE partial",
                             "TVAE L=7"]
    for result in results.values():
        for factor in sprites_table.FACTORS:
            r = result[factor]
            assert np.isfinite(r["ll/frame"]) and -1 <= r["CapCorr"] <= 1
    out = capsys.readouterr().out
    assert "Table 2 at a CPU budget" in out and "orientation: CapCorr" in out
    saved = json.loads((tmp_path / "s.json").read_text())["results"]
    assert saved["VAE"]["x"]["CapCorr"] == results["VAE"]["x"]["CapCorr"]


@pytest.mark.slow
def test_networks_benchmark_end_to_end(tmp_path, capsys):
    import bench_networks

    images = load_digits_images(size=28).data.reshape(-1, 28, 28)
    args = bench_networks.parse_args(["--budget", "0", "--train", "4", "--test", "2",
                                      "--precision", "float32", "--skip-throughput",
                                      "--out", str(tmp_path / "n.json")])
    results = bench_networks.run(args, images=(images[:4], images[4:6]))
    for data in results.values():
        assert set(data) == {"TVAE mlp", "VAE mlp", "TVAE conv", "VAE conv"}
        for r in data.values():
            assert r["epochs"] == 1 and np.isfinite(r["ll/frame"])  # one batch, then stop
    assert "conv ll - MLP ll" in capsys.readouterr().out
    tvae = TopographicVAE(2, 3, 2, frame_shape=(1, 8, 8), encoder="conv", max_epochs=1,
                          random_state=0).fit(np.random.default_rng(0).random((4, 128)))
    seconds, flops = bench_networks.layers_alone(tvae.net_.module_, 8, 64, 6)
    assert seconds > 0 and flops > 0


@pytest.mark.slow
def test_sprites_protocol_trains_resumes_and_draws(tmp_path, capsys):
    import json

    import sprites_protocol

    argv = ["--model", "tvae_partial", "--frames", "900", "--image-size", "16",
            "--shapes", "heart", "--max-sequences", "32", "--test", "4",
            "--out", str(tmp_path), "--checkpoints", str(tmp_path / "checkpoints")]
    first = sprites_protocol.run(sprites_protocol.parse_args(argv))
    assert first["frames"] == 2 * 32 * 15 and len(first["points"]) == 2
    point = first["points"][-1]
    for factor in sprites_protocol.FACTORS:
        r = point[factor]
        assert -1 <= r["capcorr"] <= 1 and -1 <= r["capcorr_authors"] <= 1
        assert np.isfinite(r["ll_per_frame"]) and 0 <= r["roll_accuracy"] <= 1
    argv[3] = "2000"  # the same command with a larger budget goes on from the checkpoint
    second = sprites_protocol.run(sprites_protocol.parse_args(argv))
    assert second["frames"] == 5 * 32 * 15 and second["points"][:2] == json.loads(
        json.dumps(first["points"]))
    assert "resuming tvae_partial" in capsys.readouterr().out
    assert (tmp_path / "checkpoints" / "tvae_partial.joblib").exists()
    # --null places the saved model's CapCorr against its nulls, one row a factor
    saved = tmp_path / "checkpoints" / "tvae_partial.joblib"
    sprites_protocol.main(["--null", str(saved), "--test", "6", "--image-size", "16"])
    rows = capsys.readouterr().out.splitlines()[2:]
    tests, est = sprites_protocol.held_out(6, 16), joblib.load(saved)
    assert len(rows) == len(tests) == 4
    for row, (factor, (X, factors)) in zip(rows, tests.items()):
        cells = row.strip("| ").split(" | ")
        value, floor = sprites_protocol.authors_capcorr(est, X, factors, factor)
        assert cells[:3] == [factor, f"{value:.2f}", f"{floor:.2f}"]
        assert -1 <= float(cells[3]) <= 1 and 0 <= float(cells[4]) <= 1
    (tmp_path / "checkpoints" / "tvae_partial.joblib").unlink()  # another machine
    with pytest.raises(FileNotFoundError, match="checkpoint .* is missing"):
        sprites_protocol.run(sprites_protocol.parse_args(argv))
    sprites_protocol.plot_curves(tmp_path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_peer_and_fresh_benchmarks_end_to_end(capsys):
    import bench_fresh
    import bench_peers

    digits = load_digits_images(size=28).data
    args = bench_peers.parse_args(["--epochs", "1", "--batches", "1"])
    results = bench_peers.run(args, data=(digits[:256], digits[256:320]))
    assert results["sktvae float32"]["train images/s"] > 0
    assert np.isfinite(results["sktvae float32"]["log p(x)"])
    assert results["reference"]["fit frames/s"] > 0
    out = capsys.readouterr().out
    assert "sktvae against pythae" in out and "reference-style" in out
    ratios = bench_fresh.run(bench_fresh.parse_args(["--train", "32"]),
                             images=(digits[:64] * 255).astype(np.uint8))
    assert ratios["memory ratio"] == pytest.approx(18 * 3 / 2)  # float16 x 3 colours
    assert ratios["speed ratio"] > 0


@pytest.mark.slow
def test_generalization_curves_train_on_fresh_sequences_and_resume(tmp_path, capsys):
    import generalization_curves

    digits = (load_digits_images(size=28).data * 255).astype(np.uint8)
    argv = ["--model", "tvae", "--frames", "500", "--hidden", "16", "--out", str(tmp_path),
            "--checkpoints", str(tmp_path / "checkpoints")]
    curve = generalization_curves.run(generalization_curves.parse_args(argv),
                                      images=(digits[:16], digits[100:104]))
    assert curve["frames"] == 2 * 16 * 18 and len(curve["points"]) == 2
    r = curve["points"][-1]["rotation+hue"]
    assert 0 <= r["roll_sequence"] <= 1 and 0 <= r["roll_alone"] <= 1
    assert r["forecast_to_repeat_last"] > 0 and np.isfinite(r["ll_per_frame"])
    argv[3] = "900"
    again = generalization_curves.run(generalization_curves.parse_args(argv),
                                      images=(digits[:16], digits[100:104]))
    assert again["frames"] == 4 * 16 * 18
    assert "resuming tvae" in capsys.readouterr().out
    assert len(generalization_curves.table(tmp_path).splitlines()) == 2 + len(again["points"])
    generalization_curves.plot_curves(tmp_path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_sprite_study_epochs_arm_repeats_one_draw_and_the_others_redraw():
    import sprite_capsules

    fixed = sprite_capsules.training_data("epochs", 16, max_sequences=40)
    fresh = sprite_capsules.training_data("base", 16, max_sequences=40)
    assert len(fixed) == 10 and len(fresh) == 40
    rows = np.arange(10)
    assert torch.equal(fixed.frames(rows, seed=1), fixed.frames(rows, seed=2))
    assert not torch.equal(fresh.frames(rows, seed=1), fresh.frames(rows, seed=2))
    assert len(sprite_capsules.training_data("base", 16)) == 50625  # the whole grid


@pytest.mark.slow
def test_sprite_study_arm_trains_and_is_measured_per_shape(tmp_path, capsys):
    import sprite_capsules

    argv = ["--arm", "K3", "--frames", "400", "--image-size", "16", "--max-sequences", "24",
            "--test", "4", "--out", str(tmp_path), "--checkpoints", str(tmp_path / "ck")]
    curve = sprite_capsules.run(sprite_capsules.parse_args(argv))
    assert curve["frames"] == 2 * 24 * 15
    assert curve["params"]["capsule_window"] == "3"
    last = curve["points"][-1]
    for shape in sprite_capsules.SHAPES:
        assert set(last[shape]) == {"orientation", "scale"}
        assert all(-1 <= v <= 1 for v in last[shape].values())
    table = sprite_capsules.table(tmp_path)
    assert table.splitlines()[-1].startswith("| K3 | 0.00 M |")
    sprite_capsules.plot_arms(tmp_path, tmp_path / "arms.png")
    assert (tmp_path / "arms.png").stat().st_size > 0
    capsys.readouterr()  # the training's lines
    sprite_capsules.main(["--per-shape", str(tmp_path / "ck" / "K3.joblib"), "--test", "4",
                          "--image-size", "16"])
    report = capsys.readouterr().out.splitlines()
    assert len(report) == 2 + 3 * 3 and report[2].startswith("| square | x | ")


def test_all_frames_ceiling_is_what_an_ideal_code_of_the_frame_scores():
    import sprites_protocol
    from sktvae.metrics import observed_rolls

    base = np.random.RandomState(0).randn(4, 15)  # 4 capsules of 15 units
    for n_values in (5, 15):  # scale's grid repeats every 5 frames; x's does not
        T = np.stack([np.roll(base, k % n_values, axis=-1) for k in range(15)])[None]
        rolls = observed_rolls(T)[0, 1:]
        assert np.corrcoef(np.arange(1, 15), rolls)[0, 1] == pytest.approx(
            sprites_protocol.all_frames_ceiling(n_values))
    assert sprites_protocol.all_frames_ceiling(5) < 0.25
