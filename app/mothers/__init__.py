"""Mothers and their pregnancy episode: identity, dating, risk grade."""
