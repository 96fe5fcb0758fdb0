"""The person's verdict on the describe outputs: its own module so the CLI can name it without loading the models."""

from __future__ import annotations

from enum import StrEnum


class Judgment(StrEnum):
    BETTER = "better"
    SAME = "same"
    WORSE = "worse"
