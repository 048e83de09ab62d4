"""Scoring a method on a model: the method interface (`interface`, `declared`, `forms`),
method folders (`submission`), the cell (`cell`, `protocol`, `context`, `plan`), the tracks
(`tracks`), what a method may keep (`guard`), isolation (`isolation`), executors
(`executors`, `ray_executor`, the registry `backends`), the driver (`runner`), a record's
fields and schema (`record_fields`, `schema`), fitted artifacts (`artifacts`), the shared
training helpers methods may import (`fitting`) and conformance checks (`conformance`).

It sits on the zoo and the ground floor and never imports the board, the applications on
top, or a method folder by name. Nothing is imported here: import the submodule you need.
"""

__all__ = ["artifacts", "backends", "cell", "conformance", "context", "declared", "defaults", "executors",
           "fitting", "forms", "guard", "interface", "isolation", "plan", "protocol", "ray_executor",
           "record_fields", "runner", "schema", "submission", "tracks"]
