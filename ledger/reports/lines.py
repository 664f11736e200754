"""A sale's points shared among its lines, for the sale-lines sheets. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def shared_points(rows: Iterable[Sequence[Any]], sale: int, quantity: int, price: int, amount: int, earned: int,
                  redeemed: int, line_no: int) -> Iterator[list[Any]]:
    """Rows of lines in sale order, with the sale's points (at `earned`, `redeemed`)
    replaced by each line's share by Rial: what the sale's points come to up to the
    line's end, less what they came to up to its start, so a sale's lines add up to
    exactly its points. Each row comes out with its line total at `amount`; the
    column at `sale` (the sale's id, for grouping) is dropped."""
    current, running = None, 0
    for row in rows:
        cells = list(row)
        if cells[sale] != current:
            current, running = cells[sale], 0
        total = cells[quantity] * cells[price]
        whole, points, spent = cells[amount], cells[earned], cells[redeemed]
        before, running = running, running + total
        if whole > 0:
            cells[earned] = points * running // whole - points * before // whole
            cells[redeemed] = spent * running // whole - spent * before // whole
        elif not (before == 0 and cells[line_no] == 1):  # nothing to share by: the first line carries them
            cells[earned] = cells[redeemed] = 0
        cells[amount] = total
        del cells[sale]
        yield cells
