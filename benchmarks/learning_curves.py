"""Thin script: `python benchmarks/learning_curves.py --help`; the library is `benchmark.studies.learning_curves`."""

from benchmark.studies.learning_curves import main

if __name__ == "__main__":
    main()
