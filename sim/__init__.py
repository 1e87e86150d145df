"""The clinic-day simulator: drives the service's queue code from outside it (not in the wheel).

Run it with ``python -m sim simulate bench/scenarios/*.json`` (``make simulate``).
"""
