"""Temporal activities: the pathway's only I/O. Each is a method of a small class that
receives its clients when the worker starts."""
