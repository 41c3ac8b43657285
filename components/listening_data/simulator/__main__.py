"""``python -m crossfade.components.listening_data.simulator --preset NAME OUT``."""

from crossfade.components.listening_data.simulator.generator import main

main()
