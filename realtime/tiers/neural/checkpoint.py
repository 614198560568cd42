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
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from realtime.tiers.neural.model import NeuralConfig, NeuralGenerator

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "load_generator", "FORMAT", "VERSION"]

FORMAT = "puppeteer.neural.checkpoint"
VERSION = 1
_META_KEY = "puppeteer.neural"


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
    save_file(tensors, str(tmp), metadata={_META_KEY: text})
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a checkpoint (reads only the header)."""
    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path}: not a puppeteer neural checkpoint (no {_META_KEY!r} metadata)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"{path}: checkpoint version {meta['version']} is newer than this code ({VERSION})")
    return meta


def load_checkpoint(path: str | os.PathLike, models: dict[str, torch.nn.Module] | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    device: str | torch.device = "cpu", strict: bool = True,
                    restore_rng: bool = False) -> dict:
    """Load into the given models/optimizers (each must be in the file); return the metadata
    (``step``, ``config``, ``train_config``, ``extra``, …)."""
    meta = read_metadata(path)
    wanted = [f"model/{n}/" for n in (models or {})] + [f"optim/{n}/" for n in (optimizers or {})]
    if restore_rng:
        wanted.append("rng/torch")
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        for k in f.keys():
            if any(k.startswith(w) for w in wanted):
                tensors[k] = f.get_tensor(k)
    for name, m in (models or {}).items():
        pre = f"model/{name}/"
        sd = {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}
        if not sd:
            raise KeyError(f"{path}: no model {name!r} (has {meta['models']})")
        m.load_state_dict(sd, strict=strict)
    for name, opt in (optimizers or {}).items():
        if name not in meta["optimizers"]:
            raise KeyError(f"{path}: no optimizer {name!r} (has {sorted(meta['optimizers'])})")
        entry = meta["optimizers"][name]
        if entry["class"] != type(opt).__name__:
            raise TypeError(f"{path}: optimizer {name!r} is {entry['class']}, not {type(opt).__name__}")
        opt.load_state_dict(_decode(entry["state_dict"], tensors))
    if restore_rng and "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"].to("cpu"))
    return meta


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> NeuralGenerator:
    """Rebuild the generator from a checkpoint's config and load its weights (eval mode)."""
    meta = read_metadata(path)
    if not meta.get("config"):
        raise ValueError(f"{path}: checkpoint has no generator config")
    g = NeuralGenerator(NeuralConfig.from_dict(meta["config"]))
    load_checkpoint(path, {"G": g}, device="cpu")
    return g.to(device).eval()
