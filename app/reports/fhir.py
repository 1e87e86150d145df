"""FHIR R4 DiagnosticReport intake (a report, or a Bundle of them) with fhir.resources (R4B).

Everything the report needs must come with it, in the Bundle or contained: its results,
the members of a panel result (hasMember), the Patient. This service never fetches a
reference; a result it cannot find is refused, a Patient it cannot find goes to
reconciliation.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from app.reports.domain import (
    CRITICAL_FLAGS,
    NO_ORDER_KEY,
    ParsedAttachment,
    ParsedObservation,
    ParsedReport,
    PatientIdentity,
    ReportStatus,
    StatusReading,
    describe_document,
    person_name,
    split_comparator,
)

UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MAX_PANEL_DEPTH = 5
NOT_FETCHED = (
    "results must be sent in the Bundle (or contained); this service does not fetch references"
)


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


def _code_key(concept: Any) -> str:
    """The report code for its identity: system|code of the first coding with a code."""
    for coding in getattr(concept, "coding", None) or []:
        if coding.code:
            return f"{coding.system or ''}|{coding.code}"
    text = getattr(concept, "text", None)
    return f"text:{text}" if text else ""


# References -------------------------------------------------------------------------------


class _Scope:
    """What references may point to: the Bundle's entries, and one resource's contained."""

    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries

    @staticmethod
    def contained_of(resource: Any) -> dict[str, Any]:
        return {f"#{r.id}": r for r in getattr(resource, "contained", None) or [] if r.id}

    def resolve(self, reference: str | None, contained: dict[str, Any]) -> Any:
        if not reference:
            return None
        if reference.startswith("#"):
            return contained.get(reference)
        plain = reference.split("/_history/")[0]
        return self.entries.get(reference) or self.entries.get(plain)


def _index(bundle: Bundle) -> dict[str, Any]:
    """Bundle entries by fullUrl and by Type/id."""
    entries: dict[str, Any] = {}
    for entry in bundle.entry or []:
        resource = entry.resource
        if resource is None:
            continue
        if entry.fullUrl:
            entries[str(entry.fullUrl)] = resource
        if getattr(resource, "id", None):
            entries[f"{resource.get_resource_type()}/{resource.id}"] = resource
    return entries


# Observations -----------------------------------------------------------------------------

VALUE_FIELDS = (
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)  # R4 has no valueAttachment (R5 does): such an Observation fails validation


def _has_value(obs: Observation) -> bool:
    return any(getattr(obs, name, None) is not None for name in VALUE_FIELDS)


def _decimal(value: Any) -> str:
    return "" if value is None else str(value)


def _attachment(att: Any) -> ParsedAttachment:
    return ParsedAttachment(
        kind="FHIR",
        media_type=att.contentType,
        data=att.data,
        pointer=str(att.url) if att.url else None,
        title=att.title,
    )


def _attachment_value(attachments: list[ParsedAttachment]) -> str:
    return "; ".join(
        describe_document(a.media_type, len(a.data))
        if a.data is not None
        else a.pointer or describe_document(a.media_type, None)
        for a in attachments
    )


def _interpretation(obs: Observation) -> str | None:
    """The interpretation code; a critical one (HH, LL, AA) wins over the others."""
    codes = [
        coding.code
        for concept in obs.interpretation or []
        for coding in concept.coding or []
        if coding.code
    ]
    critical = [c for c in codes if c.upper() in CRITICAL_FLAGS]
    chosen = critical or codes
    return chosen[0] if chosen else None


def _observation(obs: Observation) -> ParsedObservation:
    code, system, display = _coding(obs.code)
    numeric: float | None = None
    comparator = unit = unit_code = None
    value: str | None
    if obs.valueQuantity is not None:
        quantity = obs.valueQuantity
        numeric = float(quantity.value) if quantity.value is not None else None
        comparator = quantity.comparator or None
        unit = quantity.unit or quantity.code
        unit_code = quantity.code if quantity.system == UCUM and quantity.code else None
        value = None if numeric is None else f"{comparator or ''}{_decimal(quantity.value)}"
        value_type = "NM"
    elif obs.valueCodeableConcept is not None:
        c, _, text = _coding(obs.valueCodeableConcept)
        value = f"{text} ({c})" if text and c else text or c
        value_type = "CWE"
    elif obs.valueString is not None:
        value, value_type = obs.valueString, "ST"
        comparator, numeric = split_comparator(obs.valueString)
    elif obs.valueInteger is not None:
        value, value_type, numeric = str(obs.valueInteger), "NM", float(obs.valueInteger)
    elif obs.valueBoolean is not None:
        value, value_type = ("true" if obs.valueBoolean else "false"), "ST"
    elif obs.valueRange is not None:
        low = obs.valueRange.low.value if obs.valueRange.low is not None else None
        high = obs.valueRange.high.value if obs.valueRange.high is not None else None
        value, value_type = f"{_decimal(low)}-{_decimal(high)}", "SN"
        if obs.valueRange.low is not None:
            unit = obs.valueRange.low.unit or obs.valueRange.low.code
    elif obs.valueRatio is not None:
        num = obs.valueRatio.numerator.value if obs.valueRatio.numerator is not None else None
        den = obs.valueRatio.denominator.value if obs.valueRatio.denominator is not None else None
        value, value_type = f"{_decimal(num)}:{_decimal(den)}", "SN"
    elif obs.valueDateTime is not None or obs.valueTime is not None:
        value, value_type = str(obs.valueDateTime or obs.valueTime), "ST"
    elif obs.valuePeriod is not None:
        start, end = obs.valuePeriod.start, obs.valuePeriod.end
        value, value_type = f"{start or ''} - {end or ''}", "ST"
    else:
        value, value_type = None, "ST"
    ranges = []
    for rr in obs.referenceRange or []:
        low = rr.low.value if rr.low is not None else None
        high = rr.high.value if rr.high is not None else None
        ranges.append(
            rr.text or f"{'' if low is None else f'{low:g}'}-{'' if high is None else f'{high:g}'}"
        )
    notes = [n.text for n in obs.note or [] if n.text and n.text.strip()]
    return ParsedObservation(
        code=code or "unknown",
        code_system=system,
        display=display,
        value_type=value_type,
        value=value,
        numeric=numeric,
        unit=unit,
        reference_range="; ".join(ranges) or None,
        flag=_interpretation(obs),
        status=obs.status,
        comparator=comparator,
        unit_code=unit_code,
        comments="\n".join(notes) or None,
    )


def _same_subject(report: Any, observation: Any) -> bool:
    """An Observation that names a subject must name the report's (by reference, or by
    identifier system and value); one that names none belongs to its report."""
    if observation is None or report is None:
        return True
    if observation.reference and report.reference:
        return bool(observation.reference == report.reference)
    mine, theirs = observation.identifier, report.identifier
    if mine is not None and theirs is not None and mine.value and theirs.value:
        return bool((mine.system, mine.value) == (theirs.system, theirs.value))
    return True  # named in different ways: the report's subject decides the match


def _results(dr: DiagnosticReport, scope: _Scope) -> list[ParsedObservation]:
    """DiagnosticReport.result, a panel followed to its members (hasMember), in order."""
    contained = scope.contained_of(dr)
    found: list[ParsedObservation] = []
    seen: set[int] = set()

    def follow(reference: str | None, where: str, inside: dict[str, Any], depth: int) -> None:
        target = scope.resolve(reference, inside)
        if target is None:
            raise FhirInvalid(
                f"{where} {reference!r} is neither in the Bundle nor contained: {NOT_FETCHED}."
            )
        if not isinstance(target, Observation):
            kind = target.get_resource_type()
            raise FhirInvalid(f"{where} {reference!r} is a {kind}, not an Observation.")
        if id(target) in seen:  # a panel listed twice, or a cycle of hasMember
            return
        seen.add(id(target))
        if not _same_subject(dr.subject, target.subject):
            raise FhirInvalid(
                f"{where} {reference!r} is about another subject than its DiagnosticReport; "
                "a report carries one patient's results only."
            )
        members = target.hasMember or []
        if not members or _has_value(target):
            found.append(_observation(target))
        if not members:
            return
        if depth >= MAX_PANEL_DEPTH:
            raise FhirInvalid(
                f"Observation {reference!r}: panels nest deeper than {MAX_PANEL_DEPTH} levels."
            )
        # "#id" inside a contained panel points into the report's contained; inside a Bundle
        # entry, into that Observation's own contained.
        member_scope = inside if (reference or "").startswith("#") else scope.contained_of(target)
        for member in members:
            follow(member.reference, f"hasMember of {reference!r}", member_scope, depth + 1)

    for ref in dr.result or []:
        follow(ref.reference, "result", contained, 0)
    return found


# The patient ------------------------------------------------------------------------------


def _is_mrn(identifier: Any) -> bool:
    for coding in getattr(identifier.type, "coding", None) or []:
        if coding.code == "MR" and coding.system in (None, V2_0203):
            return True
    return False


def _human_name(patient: Patient) -> str | None:
    names = patient.name or []
    name = next((n for n in names if n.use == "official"), None) or next(iter(names), None)
    if name is None:
        return None
    if name.text and name.text.strip():
        return name.text.strip()
    return person_name(name.family, *(name.given or []))


def _patient(dr: DiagnosticReport, scope: _Scope) -> PatientIdentity | None:
    subject = dr.subject
    if subject is None:
        return None
    logical = subject.identifier.value if subject.identifier is not None else None
    target = scope.resolve(subject.reference, scope.contained_of(dr))
    if not isinstance(target, Patient):  # not supplied: reconciliation finds her
        if logical is None and subject.display is None:
            return None
        return PatientIdentity(mrn=logical, name=subject.display)
    identifiers = [i for i in target.identifier or [] if i.value]
    mrn = next((i.value for i in identifiers if _is_mrn(i)), None)
    mrn = mrn or logical or next((i.value for i in identifiers), None)
    birth = target.birthDate if isinstance(target.birthDate, date) else None
    return PatientIdentity(
        mrn=mrn,
        name=_human_name(target) or subject.display,
        birth_date=birth,
        sex=target.gender,
    )


# Reports ----------------------------------------------------------------------------------


def _identifier_value(reference: Any) -> str | None:
    if reference is None:
        return None
    ident = getattr(reference, "identifier", None)
    return ident.value if ident is not None else None


def _presented_form(dr: DiagnosticReport) -> ParsedObservation | None:
    """DiagnosticReport.presentedForm (the report as a PDF, say), as one more result."""
    attachments = [_attachment(a) for a in dr.presentedForm or []]
    if not attachments:
        return None
    return ParsedObservation(
        code="presentedForm",
        code_system=None,
        display=next((a.title for a in attachments if a.title), None) or "Report document",
        value_type="ED",
        value=_attachment_value(attachments),
        numeric=None,
        unit=None,
        reference_range=None,
        flag=None,
        status=str(dr.status),
        attachments=tuple(attachments),
    )


def _report(dr: DiagnosticReport, scope: _Scope, index: int) -> ParsedReport:
    try:
        status = ReportStatus(str(dr.status))
    except ValueError as exc:
        raise FhirInvalid(f"DiagnosticReport.status {dr.status!r} is not an R4 status") from exc
    results = _results(dr, scope)
    form = _presented_form(dr)
    if form is not None:
        results.append(form)
    code, _, display = _coding(dr.code)
    placer = next((_identifier_value(b) for b in dr.basedOn or [] if _identifier_value(b)), None)
    identifier = next((i for i in dr.identifier or [] if i.value), None)
    # The lab's identity of the report: an identifier is only unique within its system, and a
    # lab may number the reports of each test apart, so both system and code are in the key.
    if identifier is not None:
        key = f"id:{identifier.system or ''}|{identifier.value}:{_code_key(dr.code)}"
    elif dr.id:
        key = f"res:{dr.id}:{_code_key(dr.code)}"
    else:
        key = f"{NO_ORDER_KEY}#{index}:{placer}:{code}"  # this message's own, see intake
    effective: datetime | None = (
        dr.effectiveDateTime if isinstance(dr.effectiveDateTime, datetime) else None
    )
    if effective is None and dr.effectivePeriod is not None:
        start = dr.effectivePeriod.start
        effective = start if isinstance(start, datetime) else None
    conclusion = dr.conclusion or (
        "; ".join(t for t in (_coding(c)[2] or _coding(c)[0] for c in dr.conclusionCode or []) if t)
        or None
    )
    patient = _patient(dr, scope)
    return ParsedReport(
        source_key=key,
        placer_order=placer,
        filler_order=identifier.value if identifier is not None else None,
        patient_mrn=patient.mrn if patient is not None else None,
        code=code,
        display=display,
        status=StatusReading(status, False, "DiagnosticReport.status"),
        effective_at=effective,
        issued_at=dr.issued,
        conclusion=conclusion,
        observations=results,
        patient=patient,
        comments=None,  # an R4 DiagnosticReport has no note; its conclusion is kept
    )


def parse_reports(payload: Any) -> tuple[str | None, list[ParsedReport]]:
    """A DiagnosticReport, or a Bundle holding some; returns (bundle or report id, reports)."""
    if not isinstance(payload, dict):
        raise FhirInvalid("The body must be a JSON object (a FHIR resource).", code="structure")
    kind = payload.get("resourceType")
    try:
        if kind == "DiagnosticReport":
            report = DiagnosticReport.model_validate(payload)
            return report.id, [_report(report, _Scope({}), 1)]
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
    scope = _Scope(_index(bundle))
    reports = [e.resource for e in bundle.entry or [] if isinstance(e.resource, DiagnosticReport)]
    if not reports:
        raise FhirInvalid("The Bundle holds no DiagnosticReport.", code="required")
    bundle_key = (
        bundle.identifier.value if bundle.identifier and bundle.identifier.value else bundle.id
    )
    return bundle_key, [_report(r, scope, i) for i, r in enumerate(reports, start=1)]
