"""Driving load: open-model arrivals on Locust (FastHttpUser), exact latency histograms.

Importing this package patches nothing: an entry point that drives load calls
``capacity.load.patching.patch_gevent()`` first (see there for why).
"""
