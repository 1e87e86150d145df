"""The expert team's feedback: a doctor reviews each final report (interpretation, abnormal items,
advice for the mother, follow-up orders that become her butler's tasks)."""
