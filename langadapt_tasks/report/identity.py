"""What a report row is: which model of the grid, which variant, trained for which language."""

from __future__ import annotations

from dataclasses import dataclass

BASE, INSTRUCT = "base", "instruct"


@dataclass(frozen=True)
class Identity:
    """A report model's place in the study's grid.

    ``label``: the report's model name; ``model``: the grid's model label (``llama3``; "" in a
    one-model study); ``base_model``: the grid's base model (Hub id or path), also for its
    instruct model; ``variant``: ``base``, ``instruct``, a preset (``r16-a48``) or another
    adapter label; ``language``: the adapter's language ("" for base and instruct, evaluated
    on every language).
    """

    label: str
    model: str
    base_model: str
    variant: str
    language: str = ""

    @property
    def is_adapter(self) -> bool:
        return self.variant not in (BASE, INSTRUCT)

    def rank(self) -> int:
        """Row order in a group, as in the study's tables: base, instruct, adapters."""
        return {BASE: 0, INSTRUCT: 1}.get(self.variant, 2)
