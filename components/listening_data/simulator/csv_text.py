"""Vectorised CSV text: quoting and joining whole columns of strings at once."""

import numpy as np


def csv_field(values: np.ndarray) -> np.ndarray:
    """CSV-quote strings that need it (RFC 4180), as an object array."""
    out = np.array(values, dtype=object)
    for i, s in enumerate(out):
        if any(c in s for c in ',"\n\r'):
            out[i] = '"' + s.replace('"', '""') + '"'
    return out


def join_columns(columns: list[np.ndarray]) -> np.ndarray:
    row = columns[0]
    for col in columns[1:]:
        row = row + "," + col
    return row


def format_weight(x: float) -> str:
    s = f"{x:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s

