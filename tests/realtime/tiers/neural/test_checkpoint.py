"""safetensors checkpoints: models, optimizer state, step, configs and RNG round-trip exactly;
resuming continues bit-for-bit; no pickle anywhere."""
from __future__ import annotations

import json
import struct

import pytest
import torch

from realtime.tiers.neural.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    load_generator,
    read_metadata,
    save_checkpoint,
)
from realtime.tiers.neural.model import NeuralConfig  # noqa: E402
from realtime.train.step import TrainConfig, make_models, make_optimizers, train_step  # noqa: E402

torch.set_num_threads(1)
from tests.realtime.tiers.neural import tiny_config  # noqa: E402


def batch(seed=0, b=2, s=32):
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.rand(b, 1, s, s, generator=gen) > 0.5).float()
    img = lambda: torch.rand(b, 3, s, s, generator=gen) * 2 - 1
    return dict(render=img(), mask=mask, hint=img(), target=img())


def assert_same_state(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), k
        elif isinstance(va, dict):
            assert_same_state(va, vb)
        elif isinstance(va, (list, tuple)):
            assert len(va) == len(vb)
            for x, y in zip(va, vb):
                if isinstance(x, dict):
                    assert_same_state(x, y)
                else:
                    assert x == y, k
        else:
            assert va == vb, k


def test_checkpoint_round_trip_and_exact_resume(tmp_path):
    cfg = tiny_config()
    tcfg = TrainConfig(w_tmp=0.0)
    torch.manual_seed(0)
    models = make_models(cfg)
    opts = make_optimizers(models, tcfg)
    for i in range(2):
        train_step(models, opts, batch(i), tcfg)
    rng_at_save = torch.get_rng_state()
    path = save_checkpoint(tmp_path / "ckpt.safetensors", models, opts, step=2, config=cfg,
                           train_config=tcfg, extra={"note": "unit", "frames": [1, 2]})
    assert not list(tmp_path.glob("*.tmp"))

    torch.manual_seed(123)                 # different init: everything must come from the file
    models2 = make_models(cfg)
    opts2 = make_optimizers(models2, tcfg)
    meta = load_checkpoint(path, models2, opts2, restore_rng=True)
    assert torch.equal(torch.get_rng_state(), rng_at_save)
    assert meta["step"] == 2
    assert NeuralConfig.from_dict(meta["config"]) == cfg
    assert TrainConfig.from_dict(meta["train_config"]) == tcfg
    assert meta["extra"] == {"note": "unit", "frames": [1, 2]}
    for name in ("G", "D"):
        assert_same_state(models[name].state_dict(), models2[name].state_dict())
        assert_same_state(opts[name].state_dict(), opts2[name].state_dict())
    assert isinstance(opts2["G"].param_groups[0]["betas"], tuple)

    # one more step on both: identical losses and weights
    out1 = train_step(models, opts, batch(5), tcfg)
    out2 = train_step(models2, opts2, batch(5), tcfg)
    assert out1 == out2
    for name in ("G", "D"):
        assert_same_state(models[name].state_dict(), models2[name].state_dict())


def test_load_generator_from_file_alone(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(embed_pyramid=False, attention_kv_pool=2)
    models = make_models(cfg)
    train_step(models, make_optimizers(models), batch(), TrainConfig(w_tmp=0.0))  # move BN stats
    path = save_checkpoint(tmp_path / "g.safetensors", {"G": models["G"]})
    g = load_generator(path)
    assert g.cfg == cfg and not g.training
    models["G"].eval()
    b = batch(7)
    with torch.inference_mode():
        assert torch.equal(g(b["render"], b["mask"], b["hint"]), models["G"](b["render"], b["mask"], b["hint"]))


def test_file_is_plain_safetensors(tmp_path):
    torch.manual_seed(0)
    models = make_models(tiny_config())
    opts = make_optimizers(models)
    train_step(models, opts, batch(), TrainConfig(w_tmp=0.0))
    path = save_checkpoint(tmp_path / "c.safetensors", models, opts, step=1)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])                  # safetensors: u64 length + JSON header
    meta = json.loads(header["__metadata__"]["puppeteer.neural"])
    assert meta["format"] == "puppeteer.neural.checkpoint" and meta["step"] == 1
    names = [k for k in header if k != "__metadata__"]
    assert any(k.startswith("model/G/") for k in names)
    assert any(k.startswith("optim/G/") and k.endswith("exp_avg") for k in names)
    assert "rng/torch" in names
    assert b"\x80\x04" not in raw[:8 + n]               # no pickle protocol marker in the header
    assert read_metadata(path)["models"] == ["D", "G"]


def test_weights_with_nan_are_refused_at_load(tmp_path):
    """Before (stop 63's audit): a generator with one NaN weight loaded and drew a black square
    over the face, exit 0."""
    torch.manual_seed(0)
    models = make_models(tiny_config())
    with torch.no_grad():
        next(models["G"].parameters()).view(-1)[0] = float("nan")
    path = save_checkpoint(tmp_path / "g.safetensors", {"G": models["G"]})
    with pytest.raises(CheckpointError, match="holds NaN or infinity.*--restart"):
        load_generator(path)


def test_a_checkpoint_that_cannot_be_written_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    """Before (stop 63's audit): a full disk during `train` was safetensors' traceback."""
    import errno

    from realtime.tiers.neural import checkpoint

    def full(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    models = make_models(tiny_config())
    with pytest.raises(CheckpointWriteError, match="No space left on device; free some space"):
        save_checkpoint(tmp_path / "g.safetensors", {"G": models["G"]})
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_past_the_file_size_limit_says_what_to_do(tmp_path):
    """Before (helper 127): safetensors reports a write refused for its size as a SafetensorError
    ("I/O error: File too large (os error 27)", no errno), and only "No space left" in it got the
    hint: a file-size limit (EFBIG) said nothing of what to do. Now the code in the message
    counts (`realtime.core.paths.out_of_space`), and nothing is left."""
    from tests.bench.helpers import disk_full_after

    models = make_models(tiny_config())
    path = tmp_path / "g.safetensors"
    with disk_full_after(2000), pytest.raises(CheckpointWriteError) as info:
        save_checkpoint(path, {"G": models["G"]})
    assert str(info.value) == (f"cannot write the checkpoint {path}: Error while serializing: I/O error: File too "
                               f"large (os error 27); free some space and train again (it resumes from the last "
                               f"checkpoint)")
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    models = make_models(tiny_config())
    path = save_checkpoint(tmp_path / "g.safetensors", {"G": models["G"]})
    with pytest.raises(CheckpointError, match="no model 'D'"):
        load_checkpoint(path, {"D": models["D"]})
    with pytest.raises(CheckpointError, match="no optimizer 'G'"):
        load_checkpoint(path, optimizers=make_optimizers(models))
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other))
    with pytest.raises(CheckpointError, match="not a puppeteer neural checkpoint"):
        read_metadata(other)
    wrong = make_models(tiny_config(width=4))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, {"G": wrong["G"]})


def test_a_random_state_that_does_not_fit_is_a_checkpoint_error(tmp_path, monkeypatch):
    """Before (stop 60's review): `set_rng_state` ran outside the loader's checks, so a state of
    another size (another torch's, a damaged file) was a RuntimeError traceback in `train`."""
    cfg = tiny_config()
    models = make_models(cfg)
    monkeypatch.setattr(torch, "get_rng_state", lambda: torch.zeros(7, dtype=torch.uint8))
    path = save_checkpoint(tmp_path / "ckpt.safetensors", models, step=1, config=cfg)
    monkeypatch.undo()
    fresh = make_models(cfg)
    before = torch.get_rng_state()
    with pytest.raises(CheckpointError, match="cannot load it"):
        load_checkpoint(path, fresh, restore_rng=True)
    assert torch.equal(torch.get_rng_state(), before)
    load_checkpoint(path, make_models(cfg))              # without the state it loads


@pytest.mark.parametrize("spoil, words", [
    (lambda opt: opt.param_groups[0].__setitem__("lr", "fast"), "has lr = 'fast', not a finite number"),
    (lambda opt: opt.param_groups[0].__setitem__("lr", 1e30), "has a learning rate of 1e+30, outside (0, 1]"),
    (lambda opt: opt.param_groups[0].__setitem__("betas", (0.5, float("nan"))), "has betas = 'nan'"),
    (lambda opt: opt.state[opt.param_groups[0]["params"][0]].__setitem__("exp_avg", torch.zeros(3)),
     "holds exp_avg of shape (3,) for a parameter of shape"),
])
def test_an_optimizer_state_no_training_leaves_is_refused_at_load(tmp_path, spoil, words):
    """Before (security review): a string learning rate or a moment of another shape loaded, and
    `train` failed at its first step with a traceback (a TypeError, a RuntimeError)."""
    torch.manual_seed(0)
    models = make_models(tiny_config())
    opts = make_optimizers(models, TrainConfig(w_tmp=0.0))
    train_step(models, opts, batch(0), TrainConfig(w_tmp=0.0))
    spoil(opts["G"])
    path = save_checkpoint(tmp_path / "state.safetensors", models, opts, step=1)
    fresh = make_models(tiny_config())
    with pytest.raises(CheckpointError, match=r"its G optimizer state .*pass --restart") as e:
        load_checkpoint(path, fresh, make_optimizers(fresh, TrainConfig(w_tmp=0.0)))
    assert words in str(e.value)


def test_a_step_count_no_training_reaches_is_refused(tmp_path):
    models = make_models(tiny_config())
    path = save_checkpoint(tmp_path / "g.safetensors", {"G": models["G"]}, step=10 ** 18)
    with pytest.raises(CheckpointError, match="step 1000000000000000000 is not a count"):
        read_metadata(path)
