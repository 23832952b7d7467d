"""Grow a trained CRNN into a wider one that computes exactly the same function.

The BiLSTM's hidden size is widened: every old unit keeps its weights, the new units get a fresh
random init, and every weight *from* a new unit into something old (old units' recurrent and
next-layer inputs, the output layer) starts at zero. The grown network therefore reads every line
exactly as the trained one did, and training gives the new units work from the first step (the
gradient of a zero outgoing weight is the unit's activation times the error, not zero). This lets a
model trained for many hours on CPU gain capacity without starting again from scratch.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ocrcli.recognition.model import CRNN


def _place_gates(new: torch.Tensor, old: torch.Tensor, old_h: int, new_h: int) -> None:
    """Copy old's 4 gate blocks (i, f, g, o; rows of old_h) to the first old_h rows of new's blocks."""
    for g in range(4):
        new[g * new_h:g * new_h + old_h] = old[g * old_h:(g + 1) * old_h]


def _bidir_columns(old_h: int, new_h: int) -> torch.Tensor:
    """Where the old [forward | backward] features land in the widened concatenation."""
    return torch.cat([torch.arange(old_h), new_h + torch.arange(old_h)])


@torch.no_grad()
def widen_lstm(model: CRNN, hidden: int, seed: int = 0) -> CRNN:
    """Return a CRNN with `hidden` LSTM units each way whose outputs equal `model`'s."""
    old = model.spec
    if hidden < old.hidden:
        raise ValueError(f"cannot shrink the LSTM from {old.hidden} to {hidden} units")
    if hidden == old.hidden:
        grown = CRNN(old)
        grown.load_state_dict(model.state_dict())
        return grown
    with torch.random.fork_rng():  # the new units' init draws from `seed`, not the caller's stream
        torch.manual_seed(seed)
        grown = CRNN(replace(old, hidden=hidden))
    h0, h1 = old.hidden, hidden
    src = model.state_dict()
    dst = grown.state_dict()
    for name, value in src.items():
        if name.startswith("cnn."):
            dst[name].copy_(value)
    # The projection of CNN columns is `hidden` wide too: old features keep their rows, new ones
    # are fresh and feed only the new units.
    dst["proj.0.weight"][:h0] = src["proj.0.weight"]
    dst["proj.0.bias"][:h0] = src["proj.0.bias"]
    cols = _bidir_columns(h0, h1)
    for layer in range(old.layers):
        for sfx in ("", "_reverse"):
            w_ih = dst[f"rnn.weight_ih_l{layer}{sfx}"]
            # Old units ignore new inputs: new projected features (layer 0) or new units below.
            old_ih = torch.zeros(4 * h0, w_ih.shape[1])
            old_ih[:, cols if layer > 0 else torch.arange(h0)] = src[f"rnn.weight_ih_l{layer}{sfx}"]
            _place_gates(w_ih, old_ih, h0, h1)
            w_hh = dst[f"rnn.weight_hh_l{layer}{sfx}"]
            old_hh = torch.zeros(4 * h0, h1)  # old units ignore the new units' state
            old_hh[:, :h0] = src[f"rnn.weight_hh_l{layer}{sfx}"]
            _place_gates(w_hh, old_hh, h0, h1)
            for kind in ("ih", "hh"):
                b = dst[f"rnn.bias_{kind}_l{layer}{sfx}"]
                _place_gates(b, src[f"rnn.bias_{kind}_l{layer}{sfx}"], h0, h1)
    dst["head.1.weight"].zero_()  # the new units' say in the output starts at nothing
    dst["head.1.weight"][:, cols] = src["head.1.weight"]
    dst["head.1.bias"].copy_(src["head.1.bias"])
    grown.load_state_dict(dst)
    return grown
