"""The pure core of traffic-stream: schema, cleaning, features, models and batch processing.

Nothing in this package talks to a network service; the adapters in ``producer``,
``consumer``, ``training`` and ``infra`` do, and they all import their domain logic
from here so that training and serving share one definition of every feature.
"""
