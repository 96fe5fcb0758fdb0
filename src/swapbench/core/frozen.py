"""The base of every value core computes and every record swapbench writes: frozen (a result never changes
after it is made) and strict about its fields (a misspelt field is an error, never silently dropped)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
