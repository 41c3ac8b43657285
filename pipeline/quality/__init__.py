"""The quality benchmark (`crossfade benchmark quality`): metrics, baselines, report.

`SIMULATED` is the one `--dataset` that is not an import format: a folder written by
`crossfade generate`, read as it is (the pipeline's own layout), so the benchmark runs on
simulated listeners as well as on real data.
"""
SIMULATED = "simulated"
