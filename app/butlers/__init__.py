"""Butlers: the staff who accompany mothers, their skills, languages, caseload and roster."""
