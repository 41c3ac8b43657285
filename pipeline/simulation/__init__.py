"""Simulated A/B tests of recommendation policies against the simulator's listeners.

This is `crossfade simulate`: each arm serves lists to simulated users, and what they stream is
judged on the simulator's ground truth.
"""
