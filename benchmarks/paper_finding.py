"""Thin script: `python benchmarks/paper_finding.py --help`; the library is `benchmark.studies.paper_finding`."""

from benchmark.studies.paper_finding import main

if __name__ == "__main__":
    main()
