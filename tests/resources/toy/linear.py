"""A toy linear model: TF-IDF + ridge classifier (what a new linear model module holds)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sklearn.linear_model import RidgeClassifier

from textclf.linear.model import LinearSpec, NgramSettings


class TfidfRidgeSettings(NgramSettings):
    sublinear_tf: bool = True
    alpha: float = Field(1.0, gt=0)


def ridge(settings: TfidfRidgeSettings, *, binary: bool, class_weight: str | None, seed: int) -> Any:
    return RidgeClassifier(alpha=settings.alpha, class_weight=class_weight, random_state=seed)


TFIDF_RIDGE = LinearSpec(TfidfRidgeSettings, "tfidf", ridge, calibrated=True)
