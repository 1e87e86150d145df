"""FHIR R4 DiagnosticReport intake (a report, or a Bundle of them) with fhir.resources (R4B)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from app.reports.domain import ParsedObservation, ParsedReport, ReportStatus, StatusReading


class FhirInvalid(Exception):
    def __init__(self, message: str, *, code: str = "invalid", status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome as JSON, validated by the model before it leaves."""
    oo = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
        }
    )
    result: dict[str, Any] = oo.model_dump(mode="json", exclude_none=True)
    return result


def _coding(concept: Any) -> tuple[str | None, str | None, str | None]:
    if concept is None:
        return None, None, None
    for coding in concept.coding or []:
        if coding.code:
            return coding.code, coding.system, coding.display or concept.text
    return None, None, concept.text


def _observation(obs: Observation) -> ParsedObservation:
    code, system, display = _coding(obs.code)
    numeric: float | None = None
    unit = None
    if obs.valueQuantity is not None:
        numeric = float(obs.valueQuantity.value) if obs.valueQuantity.value is not None else None
        unit = obs.valueQuantity.unit or obs.valueQuantity.code
        value = None if numeric is None else f"{numeric:g}"
        value_type = "NM"
    elif obs.valueCodeableConcept is not None:
        c, _, text = _coding(obs.valueCodeableConcept)
        value = f"{text} ({c})" if text and c else text or c
        value_type = "CWE"
    elif obs.valueString is not None:
        value, value_type = obs.valueString, "ST"
    else:
        value, value_type = None, "ST"
    ranges = []
    for rr in obs.referenceRange or []:
        low = rr.low.value if rr.low is not None else None
        high = rr.high.value if rr.high is not None else None
        ranges.append(
            rr.text or f"{'' if low is None else f'{low:g}'}-{'' if high is None else f'{high:g}'}"
        )
    flag = None
    for concept in obs.interpretation or []:
        flag, _, _ = _coding(concept)
        if flag:
            break
    return ParsedObservation(
        code=code or "unknown",
        code_system=system,
        display=display,
        value_type=value_type,
        value=value,
        numeric=numeric,
        unit=unit,
        reference_range="; ".join(ranges) or None,
        flag=flag,
        status=obs.status,
    )


def _identifier_value(reference: Any) -> str | None:
    if reference is None:
        return None
    ident = getattr(reference, "identifier", None)
    return ident.value if ident is not None else None


def _report(dr: DiagnosticReport, observations: dict[str, Observation], index: int) -> ParsedReport:
    try:
        status = ReportStatus(str(dr.status))
    except ValueError as exc:
        raise FhirInvalid(f"DiagnosticReport.status {dr.status!r} is not an R4 status") from exc
    contained = {
        f"#{res.id}": res for res in (dr.contained or []) if isinstance(res, Observation) and res.id
    }
    results = []
    for ref in dr.result or []:
        target = contained.get(ref.reference or "") or observations.get(ref.reference or "")
        if target is None:
            raise FhirInvalid(f"result {ref.reference!r} is neither contained nor in the Bundle")
        results.append(_observation(target))
    code, _, display = _coding(dr.code)
    placer = next((_identifier_value(b) for b in dr.basedOn or [] if _identifier_value(b)), None)
    identifier = next((i.value for i in dr.identifier or [] if i.value), None)
    key = identifier or dr.id or f"{placer}:{code}:{index}"
    effective: datetime | None = (
        dr.effectiveDateTime if isinstance(dr.effectiveDateTime, datetime) else None
    )
    return ParsedReport(
        source_key=str(key),
        placer_order=placer,
        filler_order=identifier,
        patient_mrn=_identifier_value(dr.subject),
        code=code,
        display=display,
        status=StatusReading(status, False, "DiagnosticReport.status"),
        effective_at=effective,
        issued_at=dr.issued,
        conclusion=dr.conclusion,
        observations=results,
    )


def parse_reports(payload: Any) -> tuple[str | None, list[ParsedReport]]:
    """A DiagnosticReport, or a Bundle holding some; returns (bundle or report id, reports)."""
    if not isinstance(payload, dict):
        raise FhirInvalid("The body must be a JSON object (a FHIR resource).", code="structure")
    kind = payload.get("resourceType")
    try:
        if kind == "DiagnosticReport":
            report = DiagnosticReport.model_validate(payload)
            return report.id, [_report(report, {}, 1)]
        if kind == "Bundle":
            bundle = Bundle.model_validate(payload)
        else:
            raise FhirInvalid(
                f"Expected a DiagnosticReport or a Bundle, not {kind or 'no resourceType'}.",
                code="not-supported",
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise FhirInvalid(f"Invalid {kind}: {where}: {first.get('msg')}", code="structure") from exc
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # the model's own refusals
        raise FhirInvalid(f"Invalid {kind}: {str(exc)[:200]}", code="structure") from exc
    observations: dict[str, Observation] = {}
    reports: list[DiagnosticReport] = []
    for entry in bundle.entry or []:
        resource = entry.resource
        if isinstance(resource, Observation):
            for key in filter(
                None, (entry.fullUrl, f"Observation/{resource.id}" if resource.id else None)
            ):
                observations[key] = resource
        elif isinstance(resource, DiagnosticReport):
            reports.append(resource)
    if not reports:
        raise FhirInvalid("The Bundle holds no DiagnosticReport.", code="required")
    bundle_key = (
        bundle.identifier.value if bundle.identifier and bundle.identifier.value else bundle.id
    )
    return bundle_key, [_report(r, observations, i) for i, r in enumerate(reports, start=1)]
