"""Thin script: `python benchmarks/long_schedule.py --help`; the library is `benchmark.studies.long_schedule`."""

from benchmark.studies.long_schedule import main

if __name__ == "__main__":
    main()
