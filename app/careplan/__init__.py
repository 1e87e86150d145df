"""Care plans: visit windows and recommended exams, generated from guideline tables (data)."""
