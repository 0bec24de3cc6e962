"""Foxglove views of a run: derived scene messages (bags, live) and the live server (`hil view`)."""
