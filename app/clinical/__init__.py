"""Clinical rules as data: gestational weight gain, glucose, blood pressure, anaemia, the fetal
heart; each firing recorded with its inputs, and what it suggests left to a clinician."""
