"""Printing findings in the terminal, and the JSON the doctor commands print with --json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from textclf.doctor.findings import Finding, count_by_severity, findings_to_json, is_serious, sort_findings

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_findings(console: Console, findings: Sequence[Finding], *, title: str = "doctor") -> None:
    """One block per finding (errors first): severity, code, where, title; evidence; fix."""
    findings = sort_findings(findings)
    counts = count_by_severity(findings)
    if not findings:
        console.print(f"[bold]{escape(title)}[/]: [green]no problems found[/]")
        return
    summary = ", ".join(f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items() if n)
    console.print(f"[bold]{escape(title)}[/]: {summary}")
    for finding in findings:
        style = _STYLE[finding.severity]
        where = f" [dim]({escape(finding.where)})[/]" if finding.where else ""
        console.print(f"[{style}]{finding.severity:>7}[/] [bold]{finding.code}[/]{where}: {escape(finding.title)}",
                      highlight=False)
        console.print(f"         {escape(finding.evidence)}", highlight=False)
        console.print(f"         [green]fix:[/] {escape(finding.fix)}", highlight=False)


def findings_payload(findings: Sequence[Finding], **extra: Any) -> dict[str, Any]:
    """The --json document: extra keys (source, stats, ...) then findings, counts and `serious`."""
    return {**extra, "findings": findings_to_json(findings), "counts": count_by_severity(findings),
            "serious": is_serious(findings)}


def print_training_findings(console: Console, training: dict[str, Any]) -> None:
    """The monitors' findings stored in a run's training.json, at the end of `textclf train`."""
    if "findings" not in training:
        return
    findings = [Finding.from_dict(item) for item in training["findings"]]
    print_findings(console, findings, title="doctor (textclf doctor run MODEL_DIR shows this again)")
