"""Performance measurements: `make bench` (python -m benchmarks) runs every benchmark here."""
