"""Benchmark: does replay Recall@10 rank models as the simulated listeners do?

    python -m bench.simulation_consistency_bench --data DIR --work DIR [--users N] [--days 1]
                                                 [--variant NAME=SETTING,SETTING ...]

Trains each variant (hyperparameter overrides, e.g. ``dim16=embedding_dim=16,
id_embedding_dim=16``) through the real pipeline on ``--data`` (simulator-made), each in
``<work>/<name>``; reads its replay Recall@10 on the eval split from the Evaluator; then serves
every variant's trained model (the Trainer's export, blessed or not) to the same simulated
listeners side by side (`crossfade.components.simulation.experiment`, long-term effects on) and
measures the simulated stream rate. Prints both per variant, Kendall's tau between the two
rankings (scipy) and every pair of variants the two order differently. Prints figures only.
"""
import argparse
import itertools
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_VARIANTS = (
    "default=",
    "epochs1=epochs=1",
    "dim16=embedding_dim=16,id_embedding_dim=16",
    "no-user-id=use_user_id=false",
    "temperature0.2=temperature=0.2",
    "steps30=max_steps=30",
)


def _variant(text: str):
    name, _, settings = text.partition("=")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    return name, overrides


def _train(data: str, work: str, name: str, overrides: dict):
    from tfx.utils import path_utils

    from crossfade.pipeline import local_runner, run_summary
    from crossfade.pipeline.configs import PipelineConfig
    config = PipelineConfig.for_data(os.path.abspath(data), os.path.join(work, name),
                                     overrides=overrides)
    local_runner.run(config)
    summary = run_summary.latest_run(config)
    model = summary.artifact_uris["CatalogueTrainer/Model"]
    return summary.metrics.get("recall@10", float("nan")), path_utils.serving_model_path(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True, help="one pipeline output per variant")
    parser.add_argument("--users", type=int)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--variant", action="append", metavar="NAME=SETTINGS")
    args = parser.parse_args()
    variants = [_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]

    from scipy.stats import kendalltau

    from crossfade.components.simulation import experiment, metrics, policies
    from crossfade.components.simulation.simulated_data import SimulatedData

    trained = {name: _train(args.data, args.work, name, o) for name, o in variants}
    data = SimulatedData.load(args.data)
    ids = data.world.catalogue.track_id
    served = [policies.ModelPolicy(name, policies.SavedModelBackend(path), {}, ids)
              for name, (_, path) in trained.items()]
    settings = experiment.SimulationSettings(users=args.users, days=args.days)
    arms = experiment.run(data, served, settings, progress=lambda text: None)
    rate = {arm.policy.name: metrics.summarise(data.world, arm.logs)["stream_rate"]
            for arm in arms}
    recall = {name: r for name, (r, _) in trained.items()}
    print(f"{'variant':<16} {'Recall@10 (replay)':>19} {'stream rate (simulated)':>24}")
    for name in trained:
        print(f"{name:<16} {recall[name]:>19.4f} {rate[name]:>24.4f}")
    names = list(trained)
    tau, p = kendalltau([recall[n] for n in names], [rate[n] for n in names])
    print(f"Kendall tau between the rankings: {tau:.3f} (p = {p:.3f}, {len(names)} variants)")
    for a, b in itertools.combinations(names, 2):
        if (recall[a] - recall[b]) * (rate[a] - rate[b]) < 0:
            print(f"  disagree: {a} vs {b}: Recall {recall[a]:.4f} / {recall[b]:.4f}, "
                  f"stream rate {rate[a]:.4f} / {rate[b]:.4f}")


if __name__ == "__main__":
    main()
