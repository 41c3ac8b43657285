"""Simulated A/B tests: policies serve the simulator's listeners (the truth) and are measured.

`simulated_data` reads a simulator-made folder back as its world; `policies` are what serves
(exported models through their signatures, a chart, random lists); `experiment` runs arms side by
side over simulated days; `metrics` (with `consumption`, diversity on the true vectors) says
how each did; `off_policy` holds the IPS/SNIPS estimators. The simulation gate of the pipeline
(`crossfade.components.simulation_gate`) and `crossfade simulate`
(`crossfade.pipeline.simulation`) are built on them.
"""
