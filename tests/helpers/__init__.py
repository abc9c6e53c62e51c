"""Helpers shared by the tests: `from tests.helpers.NAME import ...` is the one import style."""
