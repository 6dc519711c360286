"""The tokenized training rows, written to disk as they are made and read memory-mapped.

Held as Python lists, a token id costs about 36 bytes (44 with its mask), and an in-memory
Arrow table 8 more per column that TRL's preparation (labels, truncation) copies in memory
again. Here each row goes to an Arrow file as soon as it is encoded, through datasets' own
writer (ids int32, masks int8: 5 bytes a token), and training reads the file memory-mapped;
TRL's ``map`` calls write their cache files beside it, as for a dataset loaded from the Hub.
For 7.9M tokens that is 72 MiB of peak host memory instead of 747
(``bench/train_data_memory.py``). The folder is temporary, in datasets' cache folder
(``HF_DATASETS_CACHE``), and is removed when the run ends.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langadapt_train.outputs import TrainError

FILE = "train.arrow"


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary folder in datasets' cache folder, removed on leaving."""
    from datasets import config

    root = Path(config.HF_DATASETS_CACHE)
    try:
        root.mkdir(parents=True, exist_ok=True)
        # Cleanup errors are ignored: where mapped files cannot be removed (Windows), the
        # folder is left in the cache rather than failing a finished run.
        scratch = tempfile.TemporaryDirectory(
            prefix="langadapt-train-", dir=root, ignore_cleanup_errors=True
        )
    except OSError as err:
        raise TrainError(
            f"cannot write the tokenized rows under {root} (datasets' cache folder): {err}; "
            "set HF_DATASETS_CACHE to a writable folder"
        ) from None
    with scratch as folder:
        yield Path(folder)


class RowWriter:
    """Rows (``input_ids``, and ``assistant_masks`` when the loss is on assistant tokens only)
    appended to ``folder/train.arrow``; ``sha256`` is the digest of the rows as JSON, one
    after the other (the data manifest's ``train_sha256``)."""

    def __init__(self, folder: Path, masks: bool) -> None:
        from datasets import Features, List, Value
        from datasets.arrow_writer import ArrowWriter

        columns = {"input_ids": List(Value("int32"))}
        if masks:
            columns["assistant_masks"] = List(Value("int8"))
        self.path = folder / FILE
        self._writer = ArrowWriter(features=Features(columns), path=str(self.path))
        self._digest = hashlib.sha256()
        self.count = 0  # rows written

    def add(self, row: dict[str, list[int]]) -> None:
        self._writer.write(row)
        self._digest.update(json.dumps(row, separators=(",", ":")).encode())
        self.count += 1

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def finish(self) -> Any:
        """The rows as a memory-mapped ``datasets.Dataset``."""
        from datasets import Dataset

        self._writer.finalize()
        return Dataset.from_file(str(self.path))
