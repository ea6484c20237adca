"""Driving load: open-model arrivals on Locust (FastHttpUser), exact latency histograms.

Locust must be imported before anything imports ssl/requests so gevent can monkey-patch them;
importing this package does that first.
"""

import locust  # noqa: F401  (gevent monkey-patching must happen before ssl/requests imports)
