"""A finding: one named problem, the evidence for it and what to change.

Every doctor check (data, training monitors, Keras models) returns a list of `Finding`s. Severity
is one of "error" (the model cannot learn properly or its scores cannot be trusted: the doctor
commands exit 1), "warning" (likely costs accuracy) and "info" (worth knowing, nothing to fix).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from textclf.errors import ModelFormatError

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One diagnosis. `code` is stable (tests and scripts match on it); `where` names the file,
    split, layer or epoch it is about; `evidence` holds the numbers behind it."""

    code: str
    severity: Severity
    title: str
    evidence: str
    fix: str
    where: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding {self.code}: severity {self.severity!r}, expected one of {SEVERITIES}")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any], where: str = "findings") -> Finding:
        """Read a finding back from JSON (training.json); a malformed entry is a ModelFormatError."""
        try:
            return cls(**{key: str(value[key]) for key in ("code", "severity", "title", "evidence", "fix")},
                       where=str(value.get("where", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFormatError(
                f"{where}: a finding is malformed ({error}); expected code, severity, title, evidence, fix. "
                "Re-run the training to rewrite it."
            ) from None


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def is_serious(findings: Sequence[Finding]) -> bool:
    """True when any finding is an error: the doctor commands then exit with status 1."""
    return any(f.severity == "error" for f in findings)


def count_by_severity(findings: Sequence[Finding]) -> dict[str, int]:
    return {severity: sum(f.severity == severity for f in findings) for severity in SEVERITIES}


def findings_to_json(findings: Sequence[Finding]) -> list[dict[str, str]]:
    return [f.to_dict() for f in sort_findings(findings)]


def findings_payload(findings: Sequence[Finding], **extra: Any) -> dict[str, Any]:
    """The --json document of the doctor commands: extra keys (source, stats, ...) then findings,
    counts and `serious`."""
    return {**extra, "findings": findings_to_json(findings), "counts": count_by_severity(findings),
            "serious": is_serious(findings)}
