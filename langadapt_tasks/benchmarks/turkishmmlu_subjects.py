"""TurkishMMLU's subjects and the four categories of its paper.

TurkishMMLU (Yüksel et al., 2024; github.com/ArdaYueksel/TurkishMMLU, Hub
``AYueksel/TurkishMMLU``) has nine subjects of the Turkish high-school curriculum
in four categories: Natural Sciences, Mathematics, Language (Turkish Language and
Literature), and Social Sciences and Humanities. The paper's table reports each
category as the mean of its subjects and the average as the mean of the nine.
"""

from __future__ import annotations

from dataclasses import dataclass

# Category keys in the paper's column order. "math" and "language" are not named
# after their only subject: a group and a task cannot share a name in lm-eval.
CATEGORIES: dict[str, str] = {
    "natural_sciences": "Natural Sciences",
    "math": "Mathematics",
    "language": "Turkish Language and Literature",
    "social_sciences_and_humanities": "Social Sciences and Humanities",
}


@dataclass(frozen=True)
class Subject:
    name: str  # task suffix, e.g. "religion_and_ethics"
    title: str  # as in the repository's file names: "Religion and Ethics"
    category: str

    @property
    def file_name(self) -> str:
        """``TurkishMMLU_<title>.json`` under ``dev/`` and ``test/`` (spaces kept)."""
        return f"TurkishMMLU_{self.title}.json"

    @property
    def hub_config(self) -> str:
        """The Hub dataset's config name, e.g. ``Religion_and_Ethics``."""
        return self.title.replace(" ", "_")


_TABLE: tuple[tuple[str, str], ...] = (
    ("Biology", "natural_sciences"),
    ("Chemistry", "natural_sciences"),
    ("Physics", "natural_sciences"),
    ("Mathematics", "math"),
    ("Turkish Language and Literature", "language"),
    ("Geography", "social_sciences_and_humanities"),
    ("History", "social_sciences_and_humanities"),
    ("Philosophy", "social_sciences_and_humanities"),
    ("Religion and Ethics", "social_sciences_and_humanities"),
)

SUBJECTS: dict[str, Subject] = {
    (name := title.lower().replace(" ", "_")): Subject(name, title, category)
    for title, category in _TABLE
}

TURKISHMMLU_GROUP = "turkishmmlu_langadapt"


def subjects_in(category: str) -> list[str]:
    """Subjects of one category, in table order."""
    if category not in CATEGORIES:
        raise KeyError(
            f"unknown TurkishMMLU category {category!r}; expected one of {list(CATEGORIES)}"
        )
    return [s.name for s in SUBJECTS.values() if s.category == category]


def turkishmmlu_task_name(subject: str) -> str:
    return f"{TURKISHMMLU_GROUP}_{subject}"
