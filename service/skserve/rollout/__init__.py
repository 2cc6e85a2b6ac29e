"""Progressive delivery of model versions: canary and blue-green that judge the model.

`state` (the pure machine), `analysis` (pure verdicts and their PromQL), `routers/` (one
module per traffic router), `store` (state with compare-and-swap and a lease), `controller`
(the loop), `stack` (`skserve up`: the whole thing on one machine) and `cli`.
"""
