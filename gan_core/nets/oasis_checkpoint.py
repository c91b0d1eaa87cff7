"""Load OASIS state dicts, including the released checkpoints (reference notes §1.8: plain
``torch.save(state_dict)`` files ``{iter|latest|best}_{G,D,EMA}.pth``; no "module." prefix)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import DataError, MissingResourceError

# Prefixes a whole-model or DataParallel save may carry; stripped when ALL keys share one.
_PREFIXES = ("module.", "netG.", "netEMA.", "netD.", "model.")


def strip_prefixes(state: Mapping[str, torch.Tensor], submodule: str | None = None) -> dict[str, torch.Tensor]:
    """Remove "module."-style prefixes shared by every key. ``submodule`` (e.g. "netEMA") first keeps only
    the keys under that name (for a file holding several networks)."""
    state = dict(state)
    if submodule:
        for lead in ("", "module."):
            pre = f"{lead}{submodule}."
            picked = {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}
            if picked:
                state = picked
                break
    changed = True
    while changed and state:
        changed = False
        for pre in _PREFIXES:
            if all(k.startswith(pre) for k in state):
                state = {k[len(pre):]: v for k, v in state.items()}
                changed = True
    return state


def load_oasis_state(path: str | Path, model: nn.Module, submodule: str | None = None) -> nn.Module:
    """Load ``path`` into ``model`` strictly (torch.load(weights_only=True) on CPU); key or shape mismatches
    raise DataError naming the file. Returns ``model``."""
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError("OASIS checkpoint", path,
                                   hint="Download the released weights (reference notes §1.8) or train a model.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(path, f"not a loadable weights-only torch file ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "expected a state dict (mapping of names to tensors)")
    state = strip_prefixes(state, submodule)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise DataError(path, f"state dict does not match {type(model).__name__}: "
                              f"{len(missing)} missing key(s) {missing[:5]}, "
                              f"{len(unexpected)} unexpected key(s) {unexpected[:5]}")
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
           for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        raise DataError(path, f"shape mismatch for {len(bad)} tensor(s): {bad[:5]} "
                              "(check semantic_nc / no_3dnoise / ch_G of the config)")
    model.load_state_dict(state, strict=True)
    return model
