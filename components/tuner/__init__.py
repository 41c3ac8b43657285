"""The Tuner: a search over the two-tower model's hyperparameters before the Trainer.

component.py (the TFX component, its spec and executor), search_space.py (what is searched
and how chosen values apply), tuning.py (`tuner_fn`: trials and their oracle), held_out.py
(a trial's score on the eval split), trials.py (the record in ML Metadata).
"""
