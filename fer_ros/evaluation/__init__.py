"""``fer-bag evaluate`` and ``compare``: the emotion node run on a bag, its answers matched to the
frames, the node process and its diagnostics, parameter checks, refusal reasons, and the report
(statistics, plots, HTML)."""
