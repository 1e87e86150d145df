"""Who may call what: the route x role table the authorization and audit tests share.

Each entry names the callers a route lets in; ``tests/test_authorization.py`` checks it against
the running app, and the audit test uses it to know which caller may call a route.
"""

from __future__ import annotations

ANY = "any authenticated"
PUBLIC = "public"
ADMIN = {"admin"}
READ_MOTHERS = {"admin", "frontdesk", "doctor", "butler1"}
STAFF_READ_BUTLERS = {"admin", "frontdesk", "doctor", "butler1"}
DESK = {"admin", "frontdesk"}
CLINICIANS = {"admin", "frontdesk", "doctor"}
READ_VISITS = {"admin", "frontdesk", "doctor", "butler1", "station"}
MOVE_VISITS = {"admin", "frontdesk", "doctor", "station"}
STAFF = {"admin", "frontdesk", "doctor", "station", "butler1"}
STATION_OPS = {"admin", "station"}

EXPECTED: dict[str, str | set[str]] = {
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    # An admin's token, or a scrape address (METRICS_SCRAPE_ADDRESSES; none in tests).
    "GET /metrics": ADMIN,
    "POST /v1/auth/login": PUBLIC,
    "POST /v1/auth/logout": ANY,
    "GET /v1/auth/me": ANY,
    "POST /v1/users": ADMIN,
    "GET /v1/users": ADMIN,
    "GET /v1/users/{user_id}": ADMIN,
    "PATCH /v1/users/{user_id}": ADMIN,
    "POST /v1/users/{user_id}/revoke-tokens": ADMIN,
    "POST /v1/api-clients": ADMIN,
    "GET /v1/api-clients": ADMIN,
    "POST /v1/api-clients/{client_id}/deactivate": ADMIN,
    "POST /v1/api-clients/{client_id}/rotate-signing-secret": ADMIN,
    "POST /v1/mothers": {"admin", "frontdesk"},
    "GET /v1/mothers": READ_MOTHERS,
    # The nutritionist reads her record (national id and phone masked) for her assessment.
    "GET /v1/mothers/{mother_id}": READ_MOTHERS | {"nutritionist"},
    "PATCH /v1/mothers/{mother_id}": {"admin", "frontdesk", "doctor"},
    "GET /v1/mothers/{mother_id}/risk-history": READ_MOTHERS,
    "POST /v1/mothers/{mother_id}/risk-assessments": {"doctor"},
    "POST /v1/butlers": ADMIN,
    "GET /v1/butlers": STAFF_READ_BUTLERS,
    "GET /v1/butlers/me": ANY,
    "GET /v1/butlers/{butler_id}": STAFF_READ_BUTLERS,
    "PATCH /v1/butlers/{butler_id}": ADMIN,
    "PUT /v1/butlers/{butler_id}/roster": ADMIN,
    "GET /v1/audit-events": ADMIN,
    "GET /v1/mothers/{mother_id}/dating-history": READ_MOTHERS,
    "GET /v1/care-plan-guidelines": READ_MOTHERS,
    # Her readings: taken by the clinicians, the stations and her butler (for her); read also
    # by the admin and the desk (it shows her charts). The front desk takes none, and her
    # timeline, which holds lab values, is the clinicians', the stations' and her butler's.
    "POST /v1/mothers/{mother_id}/measurements": {"doctor", "nutritionist", "station", "butler1"},
    "GET /v1/mothers/{mother_id}/measurements": {
        "admin",
        "frontdesk",
        "doctor",
        "nutritionist",
        "station",
        "butler1",
    },
    # The desk corrects the height and pre-pregnancy weight it entered at enrolment (only).
    "POST /v1/measurements/{measurement_id}/corrections": {
        "frontdesk",
        "doctor",
        "nutritionist",
        "station",
        "butler1",
    },
    "GET /v1/mothers/{mother_id}/timeline": {
        "admin",
        "doctor",
        "nutritionist",
        "station",
        "butler1",
    },
    # The clinical rules in force are public to the staff; her findings are clinical: the
    # doctors and the nutritionist read them, her weight gain also the desk and her butler.
    "GET /v1/clinical-rules": {
        "admin",
        "frontdesk",
        "doctor",
        "station",
        "butler1",
        "nutritionist",
    },
    "GET /v1/mothers/{mother_id}/weight-gain": {
        "admin",
        "frontdesk",
        "doctor",
        "butler1",
        "nutritionist",
    },
    "GET /v1/mothers/{mother_id}/rule-firings": {"doctor", "nutritionist"},
    "GET /v1/mothers/{mother_id}/flags": {"doctor", "nutritionist"},
    "POST /v1/rule-firings/{firing_id}/decision": {"doctor"},
    "GET /v1/mothers/{mother_id}/care-plan": READ_MOTHERS,
    # What her plan records is a clinical record: a doctor hears it and signs it.
    "POST /v1/mothers/{mother_id}/care-plan/choices": {"doctor"},
    "POST /v1/mothers/{mother_id}/care-plan/declines": {"doctor"},
    "POST /v1/mothers/{mother_id}/care-plan/outside-results": {"doctor"},
    "POST /v1/mothers/{mother_id}/care-plan/indications": {"doctor"},
    "POST /v1/clinic-sessions": DESK,
    "GET /v1/clinic-sessions": READ_MOTHERS,
    "GET /v1/clinic-sessions/{session_id}/forecast": READ_MOTHERS,
    "POST /v1/visits": DESK,
    "GET /v1/visits/board": CLINICIANS,
    "POST /v1/visits/no-show-sweep": DESK,
    "GET /v1/visits/{visit_id}": READ_VISITS | {"nutritionist"},
    "POST /v1/visits/{visit_id}/reschedule": DESK,
    "POST /v1/visits/{visit_id}/cancel": DESK,
    "POST /v1/visits/{visit_id}/no-show": DESK,
    "POST /v1/visits/{visit_id}/start": MOVE_VISITS,
    # A station no longer completes a visit: that closes her queues at every station.
    "POST /v1/visits/{visit_id}/complete": CLINICIANS,
    "POST /v1/visits/{visit_id}/exam-orders": CLINICIANS,
    "POST /v1/check-ins": DESK,
    # The day's visits: the desk's board, the doctors' and the nutritionist's worklist; a
    # butler, her own mothers'.
    "GET /v1/visits": {"admin", "frontdesk", "doctor", "nutritionist", "butler1"},
    "POST /v1/visits/{visit_id}/her-link": DESK,
    "DELETE /v1/visits/{visit_id}/her-link": DESK,
    # Her own page: no login, the link's secret in a header (tests/visits/test_her_page.py).
    "GET /v1/her/visit": PUBLIC,
    "GET /v1/mothers/{mother_id}/care-team": READ_MOTHERS,
    # Her charts: the nutritionist manages her weight and the vitals station records her
    # readings: both read them too.
    "GET /v1/mothers/{mother_id}/charts/weight-gain.svg": READ_MOTHERS
    | {"nutritionist", "station"},
    "GET /v1/mothers/{mother_id}/charts/weight-gain.png": READ_MOTHERS
    | {"nutritionist", "station"},
    "GET /v1/mothers/{mother_id}/charts/blood-pressure.svg": READ_MOTHERS
    | {"nutritionist", "station"},
    "GET /v1/mothers/{mother_id}/charts/blood-pressure.png": READ_MOTHERS
    | {"nutritionist", "station"},
    # Her health plan: made, changed and signed by a doctor or the nutritionist; read by the
    # clinic staff; her butler reads the signed plan's items due.
    "POST /v1/mothers/{mother_id}/health-plan": {"doctor", "nutritionist"},
    "GET /v1/mothers/{mother_id}/health-plan": CLINICIANS | {"nutritionist"},
    "POST /v1/mothers/{mother_id}/health-plan/versions": {"doctor", "nutritionist"},
    "GET /v1/mothers/{mother_id}/health-plan/versions": CLINICIANS | {"nutritionist"},
    "GET /v1/mothers/{mother_id}/health-plan/versions/{n}": CLINICIANS | {"nutritionist"},
    "POST /v1/mothers/{mother_id}/health-plan/versions/{n}/sign": {"doctor", "nutritionist"},
    "GET /v1/mothers/{mother_id}/health-plan/due": READ_MOTHERS,
    "POST /v1/mothers/{mother_id}/nutrition-assessments": {"doctor", "nutritionist"},
    "GET /v1/mothers/{mother_id}/nutrition-assessments": CLINICIANS | {"nutritionist"},
    "POST /v1/mothers/{mother_id}/primary-butler": DESK,
    "POST /v1/butlers/{butler_id}/release": DESK,
    "POST /v1/butlers/{butler_id}/leaves": DESK,
    "GET /v1/butlers/{butler_id}/leaves": DESK,
    "GET /v1/caseloads": DESK,
    "GET /v1/assignments/flagged": DESK,
    "GET /v1/me/mothers": {"butler1"},
    "POST /v1/integrations/lab/hl7v2": {"lab"},
    "POST /v1/integrations/lab/fhir": {"lab"},
    "GET /v1/integrations/messages": ADMIN,
    "POST /v1/integrations/messages/{message_id}/replay": ADMIN,
    "GET /v1/reports": READ_MOTHERS,
    "GET /v1/reconciliation": DESK,
    "GET /v1/reports/{report_id}": READ_MOTHERS,
    "POST /v1/reports/{report_id}/pick-up": {"admin", "frontdesk", "butler1"},
    "POST /v1/reports/{report_id}/deliver": {"admin", "frontdesk", "butler1"},
    "POST /v1/reports/{report_id}/attach": DESK,
    "POST /v1/reports/{report_id}/detach": DESK,
    "GET /v1/reports/{report_id}/attachments/{attachment_id}": READ_MOTHERS,
    # A doctor reviews a report (the admin reads the doctors' list, as every list); her reviews
    # are read like her reports.
    "GET /v1/reports-to-review": {"admin", "doctor"},
    "POST /v1/reports/{report_id}/review": {"doctor"},
    "GET /v1/reports/{report_id}/reviews": READ_MOTHERS | {"nutritionist"},
    "GET /v1/mothers/{mother_id}/reviews": READ_MOTHERS | {"nutritionist"},
    "GET /v1/worklist": CLINICIANS | {"nutritionist"},
    "POST /v1/worklist/{item_id}/acknowledge": CLINICIANS | {"nutritionist"},
    "GET /v1/alerts": READ_MOTHERS,
    "GET /v1/alerts/indicators": {"admin", "doctor"},
    "POST /v1/alerts/{alert_id}/acknowledge": {"doctor"},
    "POST /v1/alerts/{alert_id}/mother-contacted": READ_MOTHERS,
    "POST /v1/alerts/escalate": ADMIN,
    "GET /v1/notifications": ADMIN,
    "GET /v1/me/assignments": {"butler1"},
    "GET /v1/me/events": {"butler1"},
    "GET /v1/me/events/stream": {"butler1"},
    "POST /v1/mothers/{mother_id}/tasks": {"admin", "frontdesk", "doctor"},
    "POST /v1/me/tasks/{task_id}/complete": {"butler1"},
    "POST /v1/me/covers/{visit_id}/accept": {"butler1"},
    "POST /v1/me/covers/{visit_id}/decline": {"butler1"},
    "GET /v1/stations": STAFF | {"nutritionist"},
    "POST /v1/stations": ADMIN,
    "PATCH /v1/stations/{code}": ADMIN,
    "GET /v1/exam-types": STAFF | {"nutritionist"},
    "PATCH /v1/exam-types/{code}": ADMIN,
    # The nutritionist runs the nutrition station (another station: 403, object level).
    "GET /v1/stations/{code}/queue": MOVE_VISITS | {"nutritionist"},
    "POST /v1/stations/{code}/call-next": STATION_OPS | {"nutritionist"},
    "POST /v1/queue-entries/{entry_id}/recall": STATION_OPS | {"nutritionist"},
    "POST /v1/queue-entries/{entry_id}/start": STATION_OPS | {"nutritionist"},
    "POST /v1/queue-entries/{entry_id}/finish": STATION_OPS | {"nutritionist"},
    "POST /v1/queue-entries/{entry_id}/undo": STATION_OPS | {"nutritionist"},
    "POST /v1/queue-entries/{entry_id}/no-show": STATION_OPS,
    "POST /v1/queue-entries/{entry_id}/glucose-drink": STATION_OPS,
    "POST /v1/queue-entries/{entry_id}/transfer": {"admin", "frontdesk", "station"},
    "POST /v1/exam-orders/{order_id}/cancel": MOVE_VISITS,
    "POST /v1/visits/{visit_id}/urgent": CLINICIANS,
    "GET /v1/visits/{visit_id}/queue": READ_VISITS | {"nutritionist"},
    "POST /v1/mothers/{mother_id}/sms": {"admin", "frontdesk", "butler1"},
    # Waiting-room screens: tickets and masked names only.
    "GET /v1/boards": PUBLIC,  # the waiting-room TV's list of stations: no mother in it
    "GET /v1/stations/{code}/board": PUBLIC,
    "GET /v1/stations/{code}/board.html": PUBLIC,
}
