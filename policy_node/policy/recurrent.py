"""Recurrent state (an LSTM's h and c, a GRU's h) carried from one step to the next.

A recurrent policy exports its state as extra inputs and outputs; the
description pairs them (``h_in`` <- ``h_out``). The state starts at zero and
goes back to zero at every reset, as in training, where each episode starts
from a fresh hidden state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policy_node.policy.description import PolicyDescriptionError, RecurrentPair

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


class RecurrentState:
    """Zero-initialised state arrays, fed as extra inputs and refreshed from the outputs."""

    def __init__(self, pairs: Sequence[RecurrentPair], shapes: Mapping[str, tuple[int, ...]],
                 dtypes: Mapping[str, Any] | None = None) -> None:
        self.pairs = tuple(pairs)
        self.inputs = {p.input: np.zeros(shapes[p.input], dtype=(dtypes or {}).get(p.input, np.float32))
                       for p in self.pairs}
        self.output_names = [p.output for p in self.pairs]

    def reset(self) -> None:
        for array in self.inputs.values():
            array.fill(0)

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Take the state the model returned as next step's input."""
        for pair in self.pairs:
            np.copyto(self.inputs[pair.input], np.reshape(outputs[pair.output], self.inputs[pair.input].shape),
                      casting="unsafe")

    @classmethod
    def for_session(cls, pairs: Sequence[RecurrentPair], session: Any, source: str) -> RecurrentState:
        """Shapes and dtypes from an onnxruntime session; a named tensor the model lacks is a clear error.

        A symbolic dimension (the batch) is taken as 1.
        """
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        errors = []
        for k, pair in enumerate(pairs):
            if pair.input not in inputs:
                errors.append(f"{source}: recurrent[{k}].input: the model has no input {pair.input!r} "
                              f"(inputs: {', '.join(inputs)})")
            if pair.output not in outputs:
                errors.append(f"{source}: recurrent[{k}].output: the model has no output {pair.output!r} "
                              f"(outputs: {', '.join(sorted(outputs))})")
        if errors:
            raise PolicyDescriptionError(errors)
        shapes = {p.input: tuple(d if isinstance(d, int) and d > 0 else 1 for d in inputs[p.input].shape) for p in pairs}
        dtypes = {p.input: _DTYPES.get(inputs[p.input].type, np.float32) for p in pairs}
        return cls(pairs, shapes, dtypes)
