"""Load tester: headless bots in several processes, latency percentiles from both ends.

Run ``python -m clients.loadtest --url ws://127.0.0.1:9001/ --bots 200 --duration 60``
(``--help`` lists every option). Modules: ``cli`` (options, exit codes),
``runner`` (worker processes, server sampling, merging), ``worker`` (one
process's bots under trio), ``metrics`` (mergeable HDR histograms + counters),
``server`` (/healthz and psutil), ``report`` (JSON document, tables, live view).
The bots themselves are ``clients.bots``.
"""
