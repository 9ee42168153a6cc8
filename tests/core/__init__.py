"""Tests of the domain core (no Home Assistant)."""
