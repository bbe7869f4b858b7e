"""`simguard soak`: a bounded run at a steady rate, looking for what only time shows.

Starts its own single-node broker, the API (gunicorn) and a worker on
loopback, and posts the simulator's realistic mix (registrations, then
activations, then network events, chunk after chunk) at a steady rate while
the worker is restarted (SIGTERM, then started again) every minute. Every few
seconds it samples the resident memory of the API and the worker, the
consumer group's lag and the events sent and acknowledged. When the time is
up it waits for the lag to return to zero and checks that nothing was lost:
every event_id the API answered 202 for is in the worker's ledger, and the
regulator topic never carries one (imsi, version) with two contents. The
figures go to the console and to bench/RESULTS.md between the soak markers.

Kafka clients, the broker launcher and the store are imported where they are
used: `simguard` registers this command at start-up, and every other
subcommand must not pay for them.

plan: what a run is asked and what it records; stack: the processes; load:
the paced senders; measure: lag and the final verdict; run: the run itself;
report: its Markdown; command: the CLI.
"""

from tooling.soak.command import soak

__all__ = ["soak"]
