"""A small demo clinic for `make run`; refused in production."""
