"""Static HTML report of a results folder: ``python -m reports build --results DIR --out DIR``.

The report never runs inference: it reads the results table, the run artifacts and the stored
references, draws a few small PNG plots and writes plain HTML with relative links only.
"""
