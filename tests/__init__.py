"""Tests of the labpower integration."""
