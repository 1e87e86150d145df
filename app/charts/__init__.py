"""Charts of her pregnancy: weight against the band for her BMI group, blood pressure over time,
as SVG and PNG."""
