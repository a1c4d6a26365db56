"""One host for every process main: the supervisor, the gateway, the memory service, the agents.

What each main used to write for itself is written once here (nameko's
ServiceContainer is the model): the options every process takes
(``args.py``), structlog set-up, the bus client (with the process's own credential),
signal handling with one idiom (``intent.py``: the handler records, the loop
acts, a second signal escalates), the loop, and the ordered, bounded stop
(``runner.py``). A main parses its options, builds its service object (a
:class:`Hosted`) and hands it to :class:`ServiceHost`.
"""

from bus.host.hosted import Hosted
from bus.host.intent import StopIntent
from bus.host.runner import HostSpec, ServiceHost

__all__ = ["Hosted", "HostSpec", "ServiceHost", "StopIntent"]
