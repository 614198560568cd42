"""Checkpoints of the neural tier in one safetensors file — no pickle, no `torch.load`.

Layout of a file:

- tensors ``model/<name>/<state-dict key>`` for each model (``G``, ``D``, …): parameters and
  buffers (BatchNorm running statistics, spectral-norm u/v);
- tensors ``optim/<name>/<path>`` for every tensor inside an optimizer's ``state_dict()``
  (Adam's ``exp_avg``, ``exp_avg_sq``, ``step``); the rest of that state dict (param_groups,
  scalars, the integer keys) goes into the JSON metadata with each tensor replaced by
  ``{"__tensor__": "<tensor name>"}``, tuples by ``{"__tuple__": [...]}`` and dicts whose keys are
  not all strings by ``{"__items__": [[key, value], ...]}``;
- optionally ``rng/torch`` (uint8), the CPU generator state, for bit-exact resumption;
- metadata key ``puppeteer.neural`` = JSON ``{"format", "version", "step", "config",
  "train_config", "models", "optimizers", "extra"}``; ``config`` is a `NeuralConfig` dict, so
  `load_generator` rebuilds the generator from the file alone.

Writes are atomic (temporary file + rename).

Reads are bounded before anything is built: the header is checked by
`realtime.core.tensorfile.read_header` (size, JSON, offsets against the file's real size), the
config against `CONFIG_LIMITS`, and the generator is first built on torch's "meta" device (no
memory) so that its parameter shapes can be compared with the file's before the real one is
made. Every failure is a `CheckpointError` (a `ProfileError`: one line).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.paths import out_of_space
from realtime.core.tensorfile import TensorFileError, read_header
from realtime.tiers.neural.model import NeuralConfig, NeuralGenerator

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "load_generator", "CheckpointWriteError", "FORMAT",
           "VERSION", "CheckpointError", "check_config", "CONFIG_LIMITS"]

FORMAT = "puppeteer.neural.checkpoint"
VERSION = 1
_META_KEY = "puppeteer.neural"
MAX_CHECKPOINT_BYTES = 2 << 30     # tensors of a train state (G, D, Adam moments) at 512²
MAX_GENERATOR_PARAMS = 64_000_000  # the 512² generator has ~10 M
MAX_STEP = 10 ** 9                 # training steps a checkpoint may count (years at 10 steps/s)
MAX_LR = 1.0                       # the largest learning rate an optimizer state may hold (ours: 2e-4)

# Integer fields of a NeuralConfig: (lowest, highest); None allowed where the default is None.
CONFIG_LIMITS = {"resolution": (16, 1024), "width": (1, 64), "max_width": (1, 512),
                 "levels": (1, 10), "embed_width": (1, 64), "embed_max_width": (1, 512),
                 "embed_levels": (0, 10), "bottleneck_blocks": (0, 16), "out_kernel": (1, 7),
                 "attention_resolution": (0, 1024), "attention_kv_pool": (1, 16),
                 "d_scales": (1, 4), "d_width": (1, 128), "d_layers": (1, 6)}


class CheckpointError(ProfileError):
    """A checkpoint that cannot be read, or that does not fit the model it should load into."""


class CheckpointWriteError(PuppeteerError):
    """A checkpoint could not be written (a full disk): the message says where and why."""


def check_config(cfg: Any, what: str) -> NeuralConfig:
    """A NeuralConfig from a checkpoint's JSON, every field's type and range checked first (a
    config asking for width 4096 would build a model of many GB before any weight is read)."""
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{what}: its generator config is not a mapping")
    for key, value in cfg.items():
        if key in CONFIG_LIMITS:
            lo, hi = CONFIG_LIMITS[key]
            if value is None and NeuralConfig.__dataclass_fields__[key].default is None:
                continue
            if type(value) is not int or not lo <= value <= hi:
                raise CheckpointError(f"{what}: config {key}={str(value)[:40]} is outside "
                                      f"{lo}..{hi}; train the profile again")
        elif isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{what}: config {key}={value} is not finite")
    try:
        return NeuralConfig.from_dict(cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{what}: bad generator config: {e}") from None


def _as_dict(cfg) -> dict | None:
    if cfg is None:
        return None
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    if isinstance(cfg, dict):
        return dict(cfg)
    raise TypeError(f"config must be a dataclass with to_dict() or a dict, got {type(cfg).__name__}")


def _encode(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able copy of obj; tensors moved into `tensors` under names starting with prefix."""
    if isinstance(obj, torch.Tensor):
        name = prefix
        if name in tensors:
            raise ValueError(f"checkpoint: duplicate tensor name {name!r}")
        tensors[name] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at {prefix!r}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            name = obj["__tensor__"]
            if name not in tensors:
                raise ValueError(f"checkpoint: metadata names a missing tensor {name!r}")
            return tensors[name]
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if set(obj) == {"__items__"}:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike, models: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None, step: int = 0,
                    config: NeuralConfig | dict | None = None, train_config=None,
                    extra: dict | None = None, save_rng: bool = True) -> Path:
    """Write models (+ optimizers, step, configs, RNG state, JSON-able `extra`) to `path`."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for name, m in models.items():
        if "/" in name:
            raise ValueError(f"checkpoint: model name {name!r} must not contain '/'")
        for k, v in m.state_dict().items():
            tensors[f"model/{name}/{k}"] = v.detach().to("cpu").contiguous().clone()
    optim_meta = {}
    for name, opt in (optimizers or {}).items():
        optim_meta[name] = {"class": type(opt).__name__,
                            "state_dict": _encode(opt.state_dict(), f"optim/{name}", tensors)}
    if save_rng:
        tensors["rng/torch"] = torch.get_rng_state()
    if config is None and "G" in models and hasattr(models["G"], "cfg"):
        config = models["G"].cfg
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "config": _as_dict(config),
        "train_config": _as_dict(train_config),
        "models": sorted(models),
        "optimizers": optim_meta,
        "extra": extra or {},
    }
    text = json.dumps(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={_META_KEY: text})
        os.replace(tmp, path)
    except (SafetensorError, OSError) as e:     # a full disk, a folder gone read-only
        with contextlib.suppress(OSError):
            tmp.unlink()
        why = getattr(e, "strerror", None) or str(e)
        raise CheckpointWriteError(f"cannot write the checkpoint {path}: {why}"
                              + ("; free some space and train again (it resumes from the last checkpoint)"
                                 if out_of_space(e) else "")) from None
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a checkpoint (reads only the header, checked and bounded)."""
    return _read(path)[1]


def _read(path: str | os.PathLike):
    try:
        header = read_header(path, MAX_CHECKPOINT_BYTES)
    except TensorFileError as e:
        raise CheckpointError(str(e)) from None
    raw = header.metadata.get(_META_KEY)
    if raw is None:
        raise CheckpointError(f"{path}: not a puppeteer neural checkpoint (no {_META_KEY!r} metadata)")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its {_META_KEY!r} metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {str(meta.get('format'))[:40]!r}")
    version, step = meta.get("version", 0), meta.get("step", 0)
    if type(version) is not int or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {str(version)[:20]} is not one this "
                              f"code reads ({VERSION})")
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{path}: checkpoint step {str(step)[:20]} is not a count")
    if not isinstance(meta.get("models", []), list) or not isinstance(meta.get("optimizers", {}), dict):
        raise CheckpointError(f"{path}: malformed checkpoint metadata (models, optimizers)")
    return header, meta


def _shapes_match(path, header, prefix: str, module: torch.nn.Module) -> None:
    """The file's tensors under `prefix` have exactly the names and shapes of `module`'s state."""
    have = header.shapes(prefix)
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if have != want:
        diff = sorted(set(have) ^ set(want)) or [k for k in want if have[k] != want[k]]
        raise CheckpointError(f"{path}: its {prefix.strip('/')} weights do not fit the model its "
                              f"config describes (first difference: {diff[0][:80]!r})")


def load_checkpoint(path: str | os.PathLike, models: dict[str, torch.nn.Module] | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    device: str | torch.device = "cpu", strict: bool = True,
                    restore_rng: bool = False) -> dict:
    """Load into the given models/optimizers (each must be in the file); return the metadata
    (``step``, ``config``, ``train_config``, ``extra``, …)."""
    header, meta = _read(path)
    if strict:
        for name, m in (models or {}).items():
            if any(k.startswith(f"model/{name}/") for k in header.tensors):
                _shapes_match(path, header, f"model/{name}/", m)
    wanted = [f"model/{n}/" for n in (models or {})] + [f"optim/{n}/" for n in (optimizers or {})]
    if restore_rng:
        wanted.append("rng/torch")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for k in f.keys():
                if any(k.startswith(w) for w in wanted):
                    tensors[k] = f.get_tensor(k)
        for name, m in (models or {}).items():
            pre = f"model/{name}/"
            sd = {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}
            if not sd:
                raise CheckpointError(f"{path}: no model {name!r} (has {str(meta.get('models'))[:80]})")
            bad = next((k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
                       None)
            if bad is not None:     # a diverged training, or a damaged file: a black face, not an error
                raise CheckpointError(f"{path}: its {name} weight {bad[:80]!r} holds NaN or infinity "
                                      f"(a training that diverged?); train it again with --restart")
            m.load_state_dict(sd, strict=strict)
        for name, opt in (optimizers or {}).items():
            entry = meta["optimizers"].get(name)
            if not isinstance(entry, dict):
                raise CheckpointError(f"{path}: no optimizer {name!r} (has {sorted(meta['optimizers'])[:8]})")
            if entry.get("class") != type(opt).__name__:
                raise CheckpointError(f"{path}: optimizer {name!r} is {str(entry.get('class'))[:40]}, "
                                      f"not {type(opt).__name__}")
            opt.load_state_dict(_decode(entry["state_dict"], tensors))
            _check_optimizer(path, name, opt)
        if restore_rng and "rng/torch" in tensors:     # a state of another size or type: said
            torch.set_rng_state(tensors["rng/torch"].to("cpu"))
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot load it ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160] if str(e) else 'malformed'})") from None
    return meta


def _check_optimizer(path, name: str, opt: torch.optim.Optimizer) -> None:
    """CheckpointError unless the optimizer state just loaded is one a training could have left:
    every hyperparameter a flag, None or a finite number (the learning rate in (0, MAX_LR]), and
    every state tensor of its parameter's shape (a scalar step aside). `load_state_dict` takes
    any of them, and a string learning rate or a moment of another shape failed only at the
    first step, as a traceback (security review)."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: its {name} optimizer state {why}; pass --restart to train from scratch "
                               f"without it")

    for group in opt.param_groups:
        for key, value in group.items():
            if key == "params":
                continue
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if not (v is None or isinstance(v, bool)
                        or (isinstance(v, (int, float)) and math.isfinite(v))):
                    raise bad(f"has {key} = {str(v)[:40]!r}, not a finite number")
        lr = group.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and not 0.0 < lr <= MAX_LR:
            raise bad(f"has a learning rate of {lr:g}, outside (0, {MAX_LR:g}]")
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if not torch.is_tensor(value):
                    continue
                if value.dim() and tuple(value.shape) != tuple(p.shape):
                    raise bad(f"holds {key} of shape {tuple(value.shape)} for a parameter of shape {tuple(p.shape)}")
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise bad(f"holds NaN or infinity in {key}")


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> NeuralGenerator:
    """Rebuild the generator from a checkpoint's config and load its weights (eval mode)."""
    header, meta = _read(path)
    if not meta.get("config"):
        raise CheckpointError(f"{path}: checkpoint has no generator config")
    cfg = check_config(meta["config"], str(path))
    with torch.device("meta"):      # no memory: only the shapes, checked against the file's
        shell = NeuralGenerator(cfg)
    if sum(p.numel() for p in shell.parameters()) > MAX_GENERATOR_PARAMS:
        raise CheckpointError(f"{path}: its config describes a generator of more than "
                              f"{MAX_GENERATOR_PARAMS // 1_000_000} M parameters")
    _shapes_match(path, header, "model/G/", shell)
    g = NeuralGenerator(cfg)
    load_checkpoint(path, {"G": g}, device="cpu")
    return g.to(device).eval()
