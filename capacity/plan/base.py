"""The strict base model and field types every section of the experiment file shares."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    """Unknown keys are errors and values are immutable: a typo must never silently disable a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
