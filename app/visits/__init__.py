"""Clinic sessions, visit booking, check-in and the visit's status machine."""
