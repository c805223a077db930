"""Plain scripts in the source documents' style, for side-by-side timing against the suite."""
