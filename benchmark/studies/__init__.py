"""Research on top of the harness, run by hand and committed as data with generated figures:
`learning_curves` (each default against its curve), `long_schedule` (the paper's 60,000-step
schedule, resumable), `paper_finding` (docs/PAPER_FINDING.md), `bigram` (the paper's bigram
test) and `onion_form` (the onion's per-position scale profile). `benchmarks/*.py` of the
same names are thin scripts. Neither the harness nor the board imports this package.
"""

__all__ = ["bigram", "learning_curves", "long_schedule", "onion_form", "paper_finding"]
