"""MMLU's subjects and the four categories lm-eval groups them in.

MMLU (Hendrycks et al., 2021; github.com/hendrycks/test, Hub ``cais/mmlu``) has 57
subjects. lm-eval's ``mmlu`` task has one task per subject in four groups, STEM, Other,
Social Sciences and Humanities (its ``_generate_configs.py``), each the size-weighted
mean of its questions, as the MMLU paper's own evaluation computes its averages.
"""

from __future__ import annotations

# Category keys in lm-eval's group order, with the names lm-eval's table shows.
CATEGORIES: dict[str, str] = {
    "stem": "STEM",
    "other": "Other",
    "social_sciences": "Social Sciences",
    "humanities": "Humanities",
}

# subject -> its category, in lm-eval's order (alphabetical).
SUBJECTS: dict[str, str] = dict(
    [
        ("abstract_algebra", "stem"),
        ("anatomy", "stem"),
        ("astronomy", "stem"),
        ("business_ethics", "other"),
        ("clinical_knowledge", "other"),
        ("college_biology", "stem"),
        ("college_chemistry", "stem"),
        ("college_computer_science", "stem"),
        ("college_mathematics", "stem"),
        ("college_medicine", "other"),
        ("college_physics", "stem"),
        ("computer_security", "stem"),
        ("conceptual_physics", "stem"),
        ("econometrics", "social_sciences"),
        ("electrical_engineering", "stem"),
        ("elementary_mathematics", "stem"),
        ("formal_logic", "humanities"),
        ("global_facts", "other"),
        ("high_school_biology", "stem"),
        ("high_school_chemistry", "stem"),
        ("high_school_computer_science", "stem"),
        ("high_school_european_history", "humanities"),
        ("high_school_geography", "social_sciences"),
        ("high_school_government_and_politics", "social_sciences"),
        ("high_school_macroeconomics", "social_sciences"),
        ("high_school_mathematics", "stem"),
        ("high_school_microeconomics", "social_sciences"),
        ("high_school_physics", "stem"),
        ("high_school_psychology", "social_sciences"),
        ("high_school_statistics", "stem"),
        ("high_school_us_history", "humanities"),
        ("high_school_world_history", "humanities"),
        ("human_aging", "other"),
        ("human_sexuality", "social_sciences"),
        ("international_law", "humanities"),
        ("jurisprudence", "humanities"),
        ("logical_fallacies", "humanities"),
        ("machine_learning", "stem"),
        ("management", "other"),
        ("marketing", "other"),
        ("medical_genetics", "other"),
        ("miscellaneous", "other"),
        ("moral_disputes", "humanities"),
        ("moral_scenarios", "humanities"),
        ("nutrition", "other"),
        ("philosophy", "humanities"),
        ("prehistory", "humanities"),
        ("professional_accounting", "other"),
        ("professional_law", "humanities"),
        ("professional_medicine", "other"),
        ("professional_psychology", "social_sciences"),
        ("public_relations", "social_sciences"),
        ("security_studies", "social_sciences"),
        ("sociology", "social_sciences"),
        ("us_foreign_policy", "social_sciences"),
        ("virology", "other"),
        ("world_religions", "humanities"),
    ]
)

MMLU_GROUP = "mmlu_langadapt"


def mmlu_task_name(subject: str) -> str:
    return f"{MMLU_GROUP}_{subject}"


def description(subject: str) -> str:
    """lm-eval's task description of a subject (the MMLU paper's prompt header)."""
    name = " ".join(subject.split("_"))
    return f"The following are multiple choice questions (with answers) about {name}.\n\n"


def subjects_in(category: str) -> list[str]:
    return [s for s, c in SUBJECTS.items() if c == category]
