"""Reporting: tables, figures and the HTML report, read from run records only."""
