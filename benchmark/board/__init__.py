"""The leaderboard as a pure function of records: `leaderboard` (rows, ranks, the boards),
`rules` (which records may be compared), `stats` (intervals and paired tests), `calibration`
(the calibration tier's section), `render` and `page` (Markdown, CSV, JSON, HTML), and
`artifacts` (every generated file as a string).

It imports neither torch nor the harness, so the board and `onionbench cite` start in well
under a second. Import the submodule you need.
"""

__all__ = ["artifacts", "calibration", "leaderboard", "page", "render", "rules", "stats"]
