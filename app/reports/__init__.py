"""Lab results: HL7 v2 and FHIR intake, matching, the report lifecycle and critical values."""
