"""Her measurements: height and pre-pregnancy weight at enrolment; weight, blood pressure, pulse,
fundal height, fetal heart rate and urine protein at visits; corrections keep what they replace."""
