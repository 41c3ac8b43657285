"""What the simulation gate simulates and how much regression it tolerates.

Only the standard library: `PipelineConfig` holds these settings and the wiring passes them to
the component as execution parameters, without loading the simulator.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class SimulationGateSettings:
    """A short simulated A/B test of the candidate against the latest pushed model.

    The candidate is blessed only if the Evaluator blessed it and its simulated stream rate is
    at least ``(1 - margin)`` times the pushed model's. ``users`` listeners (the first ones of
    the data, humans only) get one list of ``k`` tracks a day for ``days`` days, with the
    simulator's long-term effects on; ``seed`` fixes the listeners' randomness, the same for
    both arms (common random numbers).
    """

    enabled: bool = True
    margin: float = 0.02
    users: int = 1000
    days: int = 1
    k: int = 10
    seed: int = 0

    def __post_init__(self):
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"simulation gate margin must be in [0, 1), got {self.margin}")
        if self.users < 1 or self.days < 1 or not 1 <= self.k <= 100:
            raise ValueError(f"simulation gate needs users >= 1, days >= 1 and k in [1, 100], "
                             f"got {self.users}, {self.days}, {self.k}")
