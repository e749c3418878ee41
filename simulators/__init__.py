"""Simulators of the vendors the elements call: tools beside the platform (tests, benchmarks,
the demo), never imported by its code and never shipped in its image."""
