"""Validate a whole mini-batch at once with the online endpoint's rules.

Per value, the rules are `validation.Rule`'s, the ones the online request model calls;
here they run column by column (`Rule.check_column`), because per-row pydantic would cost
more than the prediction. This module adds what only a file has: unknown and missing
columns, and rows the reader could not split into fields (a malformed CSV record), whose
reason comes from the reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..schema import FeatureSchema
from ..validation import REQUIRED, Rule, short


@dataclass
class Checked:
    """The model's input frame for the good rows, and a reason for every bad one.

    `good` and `reasons` are aligned with the input frame's rows (positions, not labels).
    """

    frame: pd.DataFrame
    good: np.ndarray
    reasons: np.ndarray  # object array: "" for good rows, "field: why" for bad ones

    @property
    def bad_count(self) -> int:
        return int((~self.good).sum())


class _Reasons:
    """Collects per-row reasons cheaply: strings are only built for the rows that are bad."""

    def __init__(self, n: int, preset: np.ndarray | None):
        self.text = np.full(n, "", dtype=object)
        self.bad = np.zeros(n, dtype=bool)
        self.skip = np.zeros(n, dtype=bool)  # rows whose reason is already final
        if preset is not None:
            self.skip = preset != ""
            self.text[self.skip] = preset[self.skip]
            self.bad |= self.skip

    def add(self, mask: np.ndarray, name: str, why: str, values: pd.Series | None = None
            ) -> None:
        """`name: why`, or `name: <value> why` with each row's value from `values`."""
        mask = np.asarray(mask, dtype=bool) & ~self.skip
        for i in np.flatnonzero(mask):
            reason = (f"{name}: {why}" if values is None
                      else f"{name}: {short(values.iloc[i])} {why}")
            self.text[i] = reason if not self.text[i] else f"{self.text[i]}; {reason}"
        self.bad |= mask


def allowed_columns(schema: FeatureSchema, id_column: str | None) -> set[str]:
    """Columns a batch file may carry: the features, the target (historical data usually has
    it; it is ignored) and the chosen id column."""
    return {*schema.names, schema.target, *([id_column] if id_column else [])}


def check_frame(schema: FeatureSchema, frame: pd.DataFrame, id_column: str | None = None, *,
                text: bool = False, read_errors: np.ndarray | None = None) -> Checked:
    """Validate every row of `frame`; return the model input for the good rows and reasons.

    `text`: the frame holds a CSV file's fields as strings (numbers written as text are
    parsed; an empty field is missing). `read_errors`: per row, "" or why the reader could
    not read the row (those rows are bad with that reason alone).
    """
    n = len(frame)
    out = _Reasons(n, read_errors)
    allowed = allowed_columns(schema, id_column)
    everyone = np.ones(n, dtype=bool)
    for name in frame.columns:
        if name not in allowed:
            out.add(everyone, name, "unknown column")
    if id_column and id_column not in frame.columns:
        out.add(everyone, id_column, "missing column (the --id-column)")
    columns: dict[str, object] = {}
    for f in schema.features:
        if f.name not in frame.columns:
            out.add(everyone, f.name, "missing column")
            columns[f.name] = (np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
                               if f.dtype == "datetime" else np.full(n, np.nan))
            continue
        col = frame[f.name].reset_index(drop=True)
        verdict = Rule.of(f).check_column(col, text=text)
        for rows, why in verdict.problems:
            out.add(rows, f.name, why, None if why == REQUIRED else col)
        columns[f.name] = verdict.values
    good = ~out.bad
    model_input = pd.DataFrame(columns)
    if not good.all():
        model_input = model_input.loc[good].reset_index(drop=True)
    return Checked(model_input, good, out.text)
