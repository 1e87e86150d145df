"""Pregnancy Butler: the VIP prenatal clinic service."""
