"""Mixture specs: which sources, how many rows of each, and how the mix is cleaned.

A mix is a YAML file::

    name: tr-mix
    language: tr
    system_prompt: "Sen yardımsever bir asistansın."
    seed: 42            # shuffling and sampling
    size: 15000         # optional: total rows, shared out by the sources' weights
    heldout: 500        # rows kept out for testing (a count, or a fraction < 1)
    dedup: true         # drop exact duplicates (after normalising whitespace and case)
    sources:
      - name: aya-tur   # a named source (see data/sources.py), loaded from the Hub ...
        path: ./aya.jsonl   # ... or from a local copy (relative to this file)
        cap: 3000       # at most this many rows
        weight: 1.0     # share of ``size``
      - path: more.csv
        schema: alpaca  # or auto (detected from the columns)

Order of work per source: parse every row (bad rows are counted by reason),
drop exact duplicates (against everything kept so far), shuffle with the seed,
then take rows until the cap/share is met, skipping rows that overlap an
evaluation set. The sources are then combined, shuffled, and split into
held-out and training rows.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.files import expand_vars, plain, read_yaml_mapping, resolve_path
from langadapt_train.data.sources import (
    NAMED_SOURCES,
    READERS,
    SCHEMA_COLUMNS,
    SCHEMAS,
    BadRow,
    DataFileError,
    Messages,
    columns,
    detect_schema,
    file_sha256,
    iter_hub,
    read_file,
)
from langadapt_train.decontam import Index, conversation_text

MIX_DIR = Path(__file__).resolve().parent.parent / "mixes"
MIX_KEYS = {"name", "language", "system_prompt", "seed", "size", "heldout", "dedup", "sources"}
SOURCE_KEYS = {"name", "hub", "subset", "split", "path", "schema", "cap", "weight"}


class MixError(ValueError):
    """A mix spec is invalid; the message names the key."""


@dataclass
class SourceEntry:
    name: str
    hub: str | None = None
    subset: str | None = None
    split: str = "train"
    path: Path | None = None
    schema: str = "auto"
    cap: int | None = None
    weight: float | None = None


@dataclass
class MixSpec:
    name: str
    sources: list[SourceEntry]
    language: str | None = None
    system_prompt: str | None = None
    seed: int = 42
    size: int | None = None
    heldout: float = 0
    dedup: bool = True
    file: str | None = None
    sha256: str | None = None


def _source_entry(raw: Any, where: str, base: Path | None) -> SourceEntry:
    if not isinstance(raw, dict):
        raise MixError(f"{where}: each source must be a mapping")
    unknown = set(raw) - SOURCE_KEYS
    if unknown:
        raise MixError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(SOURCE_KEYS)}")
    named = NAMED_SOURCES.get(str(raw.get("name", "")))
    path = raw.get("path")
    if path is not None:
        path = Path(str(path)).expanduser()
        if not path.is_absolute() and base is not None:
            path = (base / path).resolve()
    hub = raw.get("hub") or (named.hub_id if named else None)
    if path is None and hub is None:
        raise MixError(
            f"{where}: needs 'path', 'hub', or the name of a named source "
            f"({', '.join(NAMED_SOURCES)})"
        )
    schema = str(raw.get("schema") or (named.schema if named else "auto"))
    if schema != "auto" and schema not in SCHEMAS:
        raise MixError(
            f"{where}: key 'schema': {schema!r} is not one of auto, {', '.join(SCHEMAS)}"
        )
    cap, weight = raw.get("cap"), raw.get("weight")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise MixError(f"{where}: key 'cap' must be a positive integer (got {cap!r})")
    if weight is not None and (not isinstance(weight, int | float) or weight <= 0):
        raise MixError(f"{where}: key 'weight' must be a positive number (got {weight!r})")
    name = str(raw.get("name") or (path.stem if path else hub))
    return SourceEntry(
        name=name,
        hub=hub,
        subset=raw.get("subset"),
        split=str(raw.get("split") or (named.split if named else "train")),
        path=path,
        schema=schema,
        cap=cap,
        weight=None if weight is None else float(weight),
    )


def parse_spec(data: dict[str, Any], file: Path | None = None) -> MixSpec:
    where = str(file) if file else "mix"
    if not isinstance(data, dict):
        raise MixError(f"{where}: a mix spec must be a mapping")
    unknown = set(data) - MIX_KEYS
    if unknown:
        raise MixError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(MIX_KEYS)}")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise MixError(f"{where}: key 'sources' must be a non-empty list")
    base = file.parent if file else None
    sources = [_source_entry(s, f"{where}: sources[{i}]", base) for i, s in enumerate(raw_sources)]
    for key, kind in (("seed", int), ("size", int)):
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise MixError(f"{where}: key {key!r} must be an integer (got {value!r})")
    heldout = data.get("heldout", 0)
    if not isinstance(heldout, int | float) or isinstance(heldout, bool) or heldout < 0:
        raise MixError(f"{where}: key 'heldout' must be a count or a fraction (got {heldout!r})")
    if data.get("size") is not None and not any(s.weight for s in sources):
        raise MixError(f"{where}: key 'size' needs a 'weight' on at least one source")
    return MixSpec(
        name=str(data.get("name") or (file.stem if file else "mix")),
        sources=sources,
        language=data.get("language"),
        system_prompt=data.get("system_prompt"),
        seed=int(data.get("seed", 42)),
        size=data.get("size"),
        heldout=float(heldout),
        dedup=bool(data.get("dedup", True)),
        file=str(file) if file else None,
        sha256=file_sha256(file) if file else None,
    )


def read_spec(path: Path) -> dict[str, Any]:
    """A mix YAML as read through ``langadapt_tasks.files`` (UTF-8, ``${VAR}``), with each
    source's ``path`` resolved by its rule (relative to the mix file)."""
    path = path.resolve()
    raw = read_yaml_mapping(path, MixError, "a mix spec (a mapping with 'sources')")
    raw = expand_vars(raw, path, MixError)
    sources = raw.get("sources")
    for source in sources if isinstance(sources, list) else []:
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            source["path"] = str(resolve_path(source["path"], path.parent))
    return plain(raw)


def builtin_mixes() -> list[str]:
    return sorted(p.stem for p in MIX_DIR.glob("*.yaml"))


def resolve(data: str) -> MixSpec:
    """``--data``: a shipped mix name, a mix YAML, a data file, or a named source."""
    path = Path(data).expanduser()
    if data in builtin_mixes():
        path = MIX_DIR / f"{data}.yaml"
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise MixError(f"mix spec {path} not found")
        return parse_spec(read_spec(path), path.resolve())
    if path.suffix.lower() in READERS:
        if not path.is_file():
            raise DataFileError(f"{path}: no such data file")
        return parse_spec({"name": path.stem, "sources": [{"path": str(path.resolve())}]})
    if data in NAMED_SOURCES:
        return parse_spec({"name": data, "sources": [{"name": data}]})
    raise MixError(
        f"config key 'data': {data!r} is not a shipped mix ({', '.join(builtin_mixes())})"
        f", a mix YAML, a data file ({', '.join(READERS)}), or a named source "
        f"({', '.join(NAMED_SOURCES)})"
    )


# --- building the mix ------------------------------------------------------------------------


@dataclass
class SourceReport:
    name: str
    origin: str
    schema: str
    sha256: str | None
    rows: int = 0
    bad: Counter = field(default_factory=Counter)
    duplicates: int = 0
    examined: int = 0
    contaminated: int = 0
    selected: int = 0


@dataclass
class Built:
    spec: MixSpec
    train: list[Messages]
    heldout: list[Messages]
    sources: list[SourceReport]
    dropped: list[dict[str, Any]]  # decontamination report rows
    # Training rows left out because a held-out row has the same text (dedup off, or the
    # same conversation in two sources): the held-out rows are never trained on.
    heldout_copies: int = 0


def _rows(entry: SourceEntry) -> Iterator[Any]:
    if entry.path is not None:
        return read_file(entry.path)
    return iter_hub(str(entry.hub), entry.split, entry.subset)


def _fingerprint(messages: Messages) -> str:
    canon = [(m["role"], " ".join(m["content"].split()).casefold()) for m in messages]
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode()).hexdigest()


def _quotas(spec: MixSpec) -> list[int | None]:
    total_weight = sum(s.weight or 0 for s in spec.sources)
    quotas: list[int | None] = []
    for s in spec.sources:
        quota = s.cap
        if spec.size is not None and s.weight:
            share = round(spec.size * s.weight / total_weight)
            quota = share if quota is None else min(quota, share)
        quotas.append(quota)
    return quotas


def build(
    spec: MixSpec,
    index: Index | None,
    system_prompt: str | None = None,
    max_rows: int | None = None,
    heldout: float | None = None,
) -> Built:
    """Load, clean, sample and split the mix. ``system_prompt`` overrides the spec's."""
    seen: set[str] = set()
    reports: list[SourceReport] = []
    dropped: list[dict[str, Any]] = []
    mixed: list[Messages] = []
    for entry, quota in zip(spec.sources, _quotas(spec), strict=True):
        origin = str(entry.path) if entry.path else f"hf://{entry.hub}@{entry.split}"
        report = SourceReport(
            entry.name, origin, entry.schema, file_sha256(entry.path) if entry.path else None
        )
        kept: list[Messages] = []
        adapt = None
        found: set[str] = set()  # columns seen, for the error when no row is usable
        usable = 0
        for raw in _rows(entry):
            report.rows += 1
            if len(found) < 100:
                found.update(columns(raw))
            if adapt is None:
                if entry.schema == "auto":
                    report.schema = detect_schema(raw, f"{origin}, row {report.rows}")
                adapt = SCHEMAS[report.schema]
            try:
                messages = adapt(raw)
            except BadRow as err:
                report.bad[str(err)] += 1
                continue
            usable += 1
            if spec.dedup:
                key = _fingerprint(messages)
                if key in seen:
                    report.duplicates += 1
                    continue
                seen.add(key)
            kept.append(messages)
        if report.rows == 0:
            raise DataFileError(f"{origin}: no rows")
        if usable == 0:
            raise DataFileError(
                f"source {entry.name!r} ({origin}): 0 usable rows of {report.rows} with schema "
                f"{report.schema!r}; columns found: {sorted(found)}; columns expected: "
                f"{list(SCHEMA_COLUMNS[report.schema])}; rows refused: {dict(report.bad)}. "
                f"Set 'schema:' for this source in the mix (one of auto, {', '.join(SCHEMAS)})"
            )
        random.Random(f"{spec.seed}:{entry.name}").shuffle(kept)
        for messages in kept:
            if quota is not None and report.selected >= quota:
                break
            report.examined += 1
            hit = index.match(conversation_text(messages)) if index else None
            if hit:
                report.contaminated += 1
                dropped.append(
                    {"source": entry.name, "eval_item": hit[0], "overlap": hit[1], "row": messages}
                )
                continue
            report.selected += 1
            mixed.append(messages)
        reports.append(report)

    random.Random(spec.seed).shuffle(mixed)
    if max_rows is not None:
        mixed = mixed[:max_rows]
    held = spec.heldout if heldout is None else heldout
    n_held = round(len(mixed) * held) if 0 < held < 1 else int(held)
    if n_held >= len(mixed):
        raise MixError(f"heldout={held:g} leaves no training rows out of {len(mixed)}")
    held_keys = {_fingerprint(m) for m in mixed[:n_held]}
    train = [m for m in mixed[n_held:] if _fingerprint(m) not in held_keys]
    copies = len(mixed) - n_held - len(train)
    if not train:
        raise MixError(f"every training row repeats a held-out row (heldout={held:g})")
    prompt = spec.system_prompt if system_prompt is None else system_prompt
    if prompt:
        system = [{"role": "system", "content": prompt}]
        train, held_rows = (
            [m if m[0]["role"] == "system" else [*system, *m] for m in rows]
            for rows in (train, mixed[:n_held])
        )
    else:
        held_rows = mixed[:n_held]
    return Built(spec, train, held_rows, reports, dropped, copies)
