"""Her health-management plan (nutrition, weight, fetal monitoring, follow-ups), generated from
tables and her data, signed by a doctor or the nutritionist; and the nutrition assessment."""
