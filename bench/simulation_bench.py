"""Benchmark: one simulated day of `crossfade simulate`, and what its time goes to.

    python -m bench.simulation_bench --data DIR --export DIR [--users 6000] [-k 10]
                                     [--days 1] [--explore 0.1]

Serves ``--users`` listeners (default 6,000, every human of the `default` preset) one list of
``k`` tracks each through the export's ``recommend`` signature in this process (the local
server's `Servable`, requests in blocks of 1,024 rows) and lets the simulated listeners answer
(`ListeningEnvironment.respond`), with long-term effects on; then computes every report
metric. Prints the wall time of each part: loading the data folder and the world, loading the
SavedModel, building requests, model calls, the environment, metrics; and the total of one
day against the target (60 s on 2 cores, retraining excluded). Prints figures only.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET_DAY_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", required=True, help="simulator-made data (the default preset)")
    parser.add_argument("--export", required=True,
                        help="a pushed model (a version folder or a model base path)")
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--explore", type=float, default=0.1,
                        help="the policy's exploration (0 for the plain top-k)")
    args = parser.parse_args()

    from crossfade.components.simulation import experiment, metrics, policies
    from crossfade.components.simulation.simulated_data import SimulatedData

    times = {}
    t0 = time.perf_counter()
    data = SimulatedData.load(args.data)
    times["load data + world"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    backend = policies.SavedModelBackend(policies.latest_export(args.export))
    policy = policies.ModelPolicy("model", backend, {"explore": args.explore},
                                  data.world.catalogue.track_id)
    times["load SavedModel"] = time.perf_counter() - t0
    settings = experiment.SimulationSettings(users=args.users, days=args.days, k=args.k)
    users = experiment.listeners(data, settings)
    arm = experiment.new_arm(data, policy, settings)
    t0 = time.perf_counter()
    for d in range(args.days):
        experiment.requests_for(data, users, data.num_days + d, arm.recent, args.k)
    times["build requests (separately)"] = time.perf_counter() - t0
    day_started = time.perf_counter()
    for d in range(args.days):
        experiment.run_day(data, arm, users, data.num_days + d, args.k)
    times["serve (model calls)"] = arm.serve_seconds
    times["respond (environment)"] = arm.respond_seconds
    t0 = time.perf_counter()
    summary = metrics.summarise(data.world, arm.logs)
    times["metrics"] = time.perf_counter() - t0
    per_day = (time.perf_counter() - day_started) / args.days

    print(f"{len(users):,} listeners x {args.k} tracks, {args.days} day(s), explore "
          f"{args.explore}, export {backend.export_dir}")
    for name, seconds in times.items():
        print(f"  {name:<30} {seconds:8.2f} s")
    print(f"  stream rate {summary['stream_rate']:.3f}, skip rate {summary['skip_rate']:.3f}")
    verdict = "met" if per_day <= TARGET_DAY_SECONDS else "MISSED"
    print(f"One simulated day (serve + respond + metrics): {per_day:.1f} s "
          f"(target <= {TARGET_DAY_SECONDS:.0f} s: {verdict})")


if __name__ == "__main__":
    main()
