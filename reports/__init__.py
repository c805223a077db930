"""Static HTML report of a results folder: ``svi-bench report --results DIR --out DIR``.

The report never runs inference: it reads the results table, the run artifacts and the stored
references, draws a few small PNG plots and writes plain HTML with relative links only.
"""
