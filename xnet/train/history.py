"""History: what Trainer.fit returns, one record per epoch, readable by epoch or by metric name."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, SupportsIndex, overload

# the columns of a run's history.csv, one row per finished epoch
COLUMNS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "test_loss", "test_accuracy", "lr", "lr_end", "seconds",
)  # fmt: skip


def history_csv(records: Iterable[dict[str, Any]]) -> str:
    """The text of history.csv: a header of COLUMNS and one row per epoch record (other keys left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


class History(list):
    """The per-epoch records of a trainer: a list of dicts (`history[0]["train_loss"]`), and by name.

    `history["val_accuracy"]` is that metric over the epochs (None where an epoch has no value),
    and `history.history` every metric so, as in Keras's `History.history`. The names are the
    record's keys: epoch, train_loss, train_accuracy, val_loss, val_accuracy, test_loss,
    test_accuracy, lr, lr_end, seconds (val and test ones only when fit was given those splits).
    """

    @overload
    def __getitem__(self, key: str) -> list[Any]: ...
    @overload
    def __getitem__(self, key: SupportsIndex) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, key: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.names():
                recorded = ", ".join(self.names()) or "nothing yet (no epoch has finished)"
                raise KeyError(f"History: no metric {key!r}; recorded: {recorded}")
            return [record.get(key) for record in self]
        return super().__getitem__(key)

    def names(self) -> list[str]:
        """The metric names the records hold, in the order they first appear."""
        return list(dict.fromkeys(k for record in self for k in record))

    @property
    def history(self) -> dict[str, list[Any]]:
        """{metric name: its value per epoch}, as Keras's History.history."""
        return {name: self[name] for name in self.names()}
