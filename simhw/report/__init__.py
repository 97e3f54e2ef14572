"""Rendering: terminal tables, JSON/CSV, Chrome traces, plots, PDF reports. Human units live here only."""
