"""`crossfade status`'s rendering of the read counts and what likes did."""
from crossfade.components.listening_data import play_checks
from crossfade.pipeline.run_summary import RunSummary


def _summary(**counts) -> RunSummary:
    read = {name: 0 for name in play_checks.READ_COUNT_NAMES + play_checks.LIKE_COUNT_NAMES}
    return RunSummary(run_id="r", component_states={}, read_counts={**read, **counts})


def test_likes_are_shown_only_when_the_run_read_some():
    assert "Likes:" not in _summary().render()
    lines = _summary(likes_read=1200, liked_plays_weighted=3000, likes_as_examples=40
                     ).render().splitlines()
    likes = next(line for line in lines if line.startswith("Likes:"))
    assert "1,200 likes read" in likes and "3,000 liked plays weighted" in likes
    inputs = next(line for line in lines if line.startswith("Input:"))
    assert "likes" not in inputs and "0 duplicate plays dropped" in inputs
