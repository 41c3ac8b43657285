"""`crossfade simulate`: the A/B test, the closed loop and off-policy estimates, and the report.

`command` runs one of three experiments on `crossfade.components.simulation`: the A/B test of
policies, the closed loop over rounds of serving and retraining (`closed_loop`), or off-policy
estimates from one exploring policy's logs (`estimate`); `report` writes markdown, JSON and
plots.
"""
