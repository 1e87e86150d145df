"""Users, login tokens, integration clients and role checks."""
