"""Journeys (seed 002): authentication trees as data, their nodes as pure functions, the
engine that steps them and the service that performs their effects."""
